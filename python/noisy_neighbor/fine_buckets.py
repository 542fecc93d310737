"""Fine buckets of nanoseconds, as the run-queue probe counts them in the
kernel (``src/bpf/runq.h``): the boundaries of Prometheus native histograms at
schema 3 and of OpenTelemetry exponential histograms at scale 3, ``2**(i/8)``,
with each power of two split once more so that the log2 table is their exact
sum.

Bucket 0 counts waits of 0 ns. A wait ``v >= 1`` with ``2**e <= v < 2**(e+1)``,
``e < 52``, is in bucket ``1 + 9*e + k``:

- ``k = 0``: ``v == 2**e``
- ``k = 1..7``: ``2**(e+(k-1)/8) < v <= 2**(e+k/8)``
- ``k = 8``: ``2**(e+7/8) < v < 2**(e+1)``

So Prometheus' bucket ``8*e + k`` (upper bound ``2**((8*e+k)/8)``, lower
bound excluded) is bucket ``1 + 9*e + k``, plus, for ``k = 8``, the next
power's ``k = 0`` bucket; and log2 slot ``e`` is the sum of the nine buckets
of power ``e``. The last bucket, :data:`OVERFLOW`, counts waits of ``2**52``
ns (52 days) or more, so that no wait is dropped while a map entry stays in
the kernel's 4 KiB slab. A percentile read from these buckets is within half
a bucket (``2**(1/16) - 1``, 4.4%) of the exact one.
"""

from __future__ import annotations

import numpy as np

from .log2 import ranked_bucket

__all__ = [
    "BUCKETS",
    "BUCKETS_PER_POWER",
    "LOG2_SLOTS",
    "OVERFLOW",
    "POWERS",
    "SUB_BOUNDS",
    "bucket_bounds",
    "bucket_of",
    "from_sparse",
    "log2_slots",
    "percentile",
    "prometheus_buckets",
    "to_sparse",
]

#: Buckets per power of two (8 of schema 3, one of them split at the power).
BUCKETS_PER_POWER = 9
#: Powers of two with fine buckets; longer waits go to OVERFLOW.
POWERS = 52
#: The bucket of waits of 2**POWERS ns or more.
OVERFLOW = 1 + POWERS * BUCKETS_PER_POWER
BUCKETS = OVERFLOW + 1
#: Slots of the log2 table: one per power of two of a u64 (slot POWERS also
#: holds OVERFLOW, the later ones stay empty).
LOG2_SLOTS = 64


def _iroot(n: int, k: int) -> int:
    """floor(n ** (1/k)) of an integer, exactly."""
    lo, hi = 0, 1 << (n.bit_length() // k + 1)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid**k <= n:
            lo = mid
        else:
            hi = mid - 1
    return lo


#: floor(2**(63 + j/8)) for j = 1..7, the BPF program's constants: a wait
#: whose top bit is shifted to bit 63 exceeds 2**(e + j/8) exactly when it
#: exceeds these (an integer never equals an irrational bound).
SUB_BOUNDS: tuple[int, ...] = tuple(_iroot(2 ** (504 + j), 8) for j in range(1, 8))


def bucket_of(waits: np.ndarray) -> np.ndarray:
    """The bucket of each wait (ns, unsigned integers), by the kernel's exact
    integer rule."""
    v = np.asarray(waits, dtype=np.uint64)
    buckets = np.zeros(v.shape, dtype=np.int64)
    nonzero = v > 0
    x = v[nonzero]
    e = np.zeros(x.shape, dtype=np.int64)
    for shift in (32, 16, 8, 4, 2, 1):  # highest set bit, as the BPF program finds it
        top = (x >> (e + shift).astype(np.uint64)) > 0
        e += np.where(top, shift, 0)
    m = x << (63 - e).astype(np.uint64)
    k = (m > np.uint64(1 << 63)).astype(np.int64)
    for bound in SUB_BOUNDS:
        k += m > np.uint64(bound)
    buckets[nonzero] = np.where(e < POWERS, 1 + BUCKETS_PER_POWER * e + k, OVERFLOW)
    return buckets


def bucket_bounds() -> tuple[np.ndarray, np.ndarray]:
    """``(lower, upper)`` of every bucket in ns (floats): bucket ``i`` holds
    waits ``v`` with ``lower[i] < v <= upper[i]``, except the exact buckets
    (0 and each power of two), where ``lower == upper == v``, and OVERFLOW,
    which holds ``2**52 <= v < 2**64``."""
    e = np.repeat(np.arange(POWERS, dtype=np.float64), BUCKETS_PER_POWER)
    k = np.tile(np.arange(BUCKETS_PER_POWER, dtype=np.float64), POWERS)
    upper = np.exp2(e + np.minimum(k, 8) / 8)
    lower = np.exp2(e + np.maximum(k - 1, 0) / 8)
    lower[k == 0] = upper[k == 0]
    return (
        np.concatenate([[0.0], lower, [2.0**POWERS]]),
        np.concatenate([[0.0], upper, [2.0**LOG2_SLOTS]]),
    )


_LOWER, _UPPER = bucket_bounds()


def log2_slots(buckets: np.ndarray) -> np.ndarray:
    """The log2 table (slot ``e``: ``[2**e, 2**(e+1))``, slot 0 also 0 ns,
    slot 52 every longer wait), summed exactly from fine buckets; works on a
    stack of histograms too."""
    b = np.asarray(buckets, dtype=np.uint64)
    slots = np.zeros((*b.shape[:-1], LOG2_SLOTS), dtype=np.uint64)
    fine = b[..., 1:OVERFLOW].reshape(*b.shape[:-1], POWERS, BUCKETS_PER_POWER)
    slots[..., :POWERS] = fine.sum(axis=-1)
    slots[..., 0] += b[..., 0]
    slots[..., POWERS] += b[..., OVERFLOW]
    return slots


def prometheus_buckets(buckets: np.ndarray) -> dict[int, int]:
    """The waits of at least 1 ns by Prometheus schema 3 bucket index
    (bucket ``i``: ``(2**((i-1)/8), 2**(i/8)]``), non-empty buckets only.
    Waits of 0 ns, ``buckets[0]``, are Prometheus' zero bucket. OVERFLOW's
    waits go to bucket 512, whose upper bound, 2**64 ns, holds them all."""
    b = np.asarray(buckets, dtype=np.uint64)
    counts: dict[int, int] = {}
    for i in np.flatnonzero(b[1:]):
        e, k = divmod(int(i), BUCKETS_PER_POWER)
        index = 8 * e + k if 1 + i != OVERFLOW else 8 * LOG2_SLOTS
        counts[index] = counts.get(index, 0) + int(b[1 + i])
    return dict(sorted(counts.items()))


def percentile(buckets: np.ndarray, q: float, max_ns: int | None = None) -> float:
    """The q-th percentile (0-100) in ns: the geometric middle of the bucket
    that holds the ranked wait (the exact value for the zero and
    power-of-two buckets), never above ``max_ns``. So it is within half a
    bucket, ``2**(1/16) - 1`` (4.4%), of the exact percentile of the same
    waits. NaN when the buckets are empty."""
    ranked = ranked_bucket(buckets, q)
    if ranked is None:
        return float("nan")
    i, _ = ranked
    value = float(np.sqrt(_LOWER[i] * _UPPER[i]))
    return value if max_ns is None else min(value, float(max_ns))


def to_sparse(buckets: np.ndarray | None) -> dict[str, int] | None:
    """Fine buckets for JSON: the non-empty ones by index (as strings)."""
    if buckets is None:
        return None
    return {str(i): int(buckets[i]) for i in np.flatnonzero(buckets)}


def from_sparse(sparse: dict[str, int] | None) -> np.ndarray | None:
    """The buckets :func:`to_sparse` wrote; raises ValueError for an index
    out of range."""
    if sparse is None:
        return None
    buckets = np.zeros(BUCKETS, dtype=np.uint64)
    for index, count in sparse.items():
        i = int(index)
        if not 0 <= i < BUCKETS:
            raise ValueError(f"fine bucket {i} is out of range (0 to {BUCKETS - 1})")
        buckets[i] = count
    return buckets
