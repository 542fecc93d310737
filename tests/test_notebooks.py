"""Every notebook runs top to bottom on the real kernel, and is kept in git
without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from noisy_neighbor.testing import remove_leftover_cgroups

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_the_five_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01-quickstart.ipynb",
        "02-noisy-neighbor-experiment.ipynb",
        "03-events-with-pandas.ipynb",
        "04-your-own-probe.ipynb",
        "05-bpftrace-questions.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebooks_are_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.needs_bpf
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_clean(path: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    try:
        # Raises CellExecutionError, with the cell and traceback, on any error.
        NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        ).execute()
    finally:
        # A failed cell leaves the kernel's cleanup unrun: never leave its
        # cgroups and workloads behind. After a clean run there are none.
        leftovers = remove_leftover_cgroups("nn-notebook-")
    assert not leftovers, f"{path.name} left cgroups behind"
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, "the notebook drew no plot"
