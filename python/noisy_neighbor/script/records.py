"""The records of a script's event rings, split by site: every record has
the rings' one fixed size and starts with its site's id; the records of one
site are decoded together by that site's BTF layout (one numpy column per
field), and their order is kept for the text output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..host.layout import Layout, RecordDecoder
from .program_info import Site

__all__ = ["RecordBatch", "RecordSplitter"]


@dataclass
class RecordBatch:
    """One drained batch: ``order`` is each record's site id in arrival
    order; ``columns[site_id]`` that site's records as columns, and
    ``rows[site_id]`` their positions in ``order``."""

    order: np.ndarray
    columns: dict[int, dict[str, np.ndarray]]

    def __len__(self) -> int:
        return len(self.order)


class RecordSplitter:
    def __init__(self, record_size: int, sites: list[Site], layouts: dict[int, Layout]) -> None:
        self.record_size = record_size
        self.sites = {site.id: site for site in sites}
        self.decoders = {site_id: RecordDecoder(layout) for site_id, layout in layouts.items()}
        self.sizes = {site_id: layout.size for site_id, layout in layouts.items()}
        self.unknown = 0

    def split(self, raw: np.ndarray) -> RecordBatch:
        size = self.record_size
        records = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1, size)
        ids = records[:, :4].copy().view(np.uint32).reshape(-1)
        columns: dict[int, dict[str, np.ndarray]] = {}
        # set(), not np.unique: its first call imports numpy.ma (20 ms of start-up)
        for site_id in sorted(set(ids.tolist())):
            decoder = self.decoders.get(site_id)
            if decoder is None:
                self.unknown += int((ids == site_id).sum())
                continue
            rows = records[ids == site_id, : self.sizes[site_id]]
            columns[site_id] = decoder(np.ascontiguousarray(rows).reshape(-1))
        return RecordBatch(ids, columns)
