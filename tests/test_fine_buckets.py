"""Fine buckets (pure logic, no kernel): the kernel's integer rule against
Prometheus' schema 3 formula, the log2 table summed from them, percentiles
within half a bucket, and the JSON form."""

from __future__ import annotations

import bisect
import math
from decimal import Decimal, getcontext

import numpy as np
import pytest

from noisy_neighbor import fine_buckets as fb
from noisy_neighbor.runq.histogram import CgroupHistogram

#: client_golang's nativeHistogramBounds[3]: 2**(i/8) / 2, the mantissa
#: bounds of schema 3 (frexp gives a mantissa in [0.5, 1)).
SCHEMA_3_BOUNDS = [2 ** (i / 8) / 2 for i in range(8)]


def prometheus_key(v: int) -> int:
    """Prometheus' bucket index of a positive value at schema 3, as
    client_golang computes it: bucket i holds (2**((i-1)/8), 2**(i/8)]."""
    frac, exp = math.frexp(v)
    return bisect.bisect_left(SCHEMA_3_BOUNDS, frac) + (exp - 1) * 8


def our_prometheus_key(bucket: int) -> int:
    e, k = divmod(bucket - 1, fb.BUCKETS_PER_POWER)
    return 8 * e + k


def boundary_neighbours(max_power: int) -> np.ndarray:
    """Integers on both sides of every schema 3 bound up to 2**max_power:
    where a wrong comparison would show."""
    values: set[int] = set()
    for i in range(8 * max_power):
        bound = 2 ** (i / 8)
        for v in (math.floor(bound) - 1, math.floor(bound), math.floor(bound) + 1):
            if v >= 1:
                values.add(v)
    return np.array(sorted(values), dtype=np.uint64)


def test_the_bpf_constants_are_the_floors_of_the_bounds() -> None:
    getcontext().prec = 60
    for j, bound in enumerate(fb.SUB_BOUNDS, start=1):
        exact = Decimal(2) ** (Decimal(63) + Decimal(j) / 8)
        assert bound == int(exact)  # floor, since it is positive


@pytest.mark.parametrize(
    "values",
    [
        np.arange(1, 1 << 16, dtype=np.uint64),
        boundary_neighbours(50),
        np.random.default_rng(3).integers(1, 1 << 50, 200_000, dtype=np.uint64),
    ],
    ids=["every value below 2**16", "both sides of every bound", "random below 2**50"],
)
def test_buckets_have_prometheus_schema_3_boundaries(values: np.ndarray) -> None:
    ours = fb.bucket_of(values)
    theirs = [prometheus_key(int(v)) for v in values]
    assert [our_prometheus_key(int(b)) for b in ours] == theirs


def test_each_power_of_two_has_its_own_bucket_and_zero_is_bucket_0() -> None:
    powers = np.array([1 << e for e in range(52)], dtype=np.uint64)
    assert fb.bucket_of(powers).tolist() == [1 + 9 * e for e in range(52)]
    assert fb.bucket_of(np.array([0], dtype=np.uint64)).tolist() == [0]


def test_waits_of_52_days_or_more_are_kept_in_the_overflow_bucket() -> None:
    longest = np.array([2**52 - 1, 2**52, 2**63, 2**64 - 1], dtype=np.uint64)
    assert fb.bucket_of(longest).tolist() == [fb.OVERFLOW - 1] + [fb.OVERFLOW] * 3
    buckets = np.bincount(fb.bucket_of(longest), minlength=fb.BUCKETS).astype(np.uint64)
    slots = fb.log2_slots(buckets)
    assert slots[51] == 1 and slots[52] == 3 and slots.sum() == 4
    assert fb.prometheus_buckets(buckets) == {8 * 51 + 8: 1, 512: 3}
    lower, upper = fb.bucket_bounds()
    assert (lower[fb.OVERFLOW], upper[fb.OVERFLOW]) == (2.0**52, 2.0**64)


def test_every_wait_lies_within_its_bucket_bounds() -> None:
    values = np.concatenate([boundary_neighbours(40), np.array([0], dtype=np.uint64)])
    lower, upper = fb.bucket_bounds()
    b = fb.bucket_of(values)
    exact = lower[b] == upper[b]
    v = values.astype(np.float64)
    assert np.all(v[exact] == upper[b][exact])
    assert np.all((v[~exact] > lower[b][~exact]) & (v[~exact] <= upper[b][~exact] * (1 + 1e-15)))


def test_the_log2_table_is_the_exact_sum_of_the_buckets() -> None:
    rng = np.random.default_rng(11)
    waits = np.concatenate(
        [rng.integers(0, 1 << 40, 50_000, dtype=np.uint64), boundary_neighbours(40)]
    )
    buckets = np.bincount(fb.bucket_of(waits), minlength=fb.BUCKETS).astype(np.uint64)
    slots = np.zeros(64, dtype=np.uint64)
    bits = np.array([max(int(w).bit_length() - 1, 0) for w in waits])
    np.add.at(slots, bits, 1)
    np.testing.assert_array_equal(fb.log2_slots(buckets), slots)


def test_prometheus_buckets_merge_the_split_power() -> None:
    waits = boundary_neighbours(30)
    buckets = np.bincount(fb.bucket_of(waits), minlength=fb.BUCKETS).astype(np.uint64)
    expected: dict[int, int] = {}
    for w in waits:
        key = prometheus_key(int(w))
        expected[key] = expected.get(key, 0) + 1
    assert fb.prometheus_buckets(buckets) == expected


@pytest.mark.parametrize("q", [1, 10, 50, 90, 99, 99.9])
def test_percentiles_are_within_half_a_bucket(q: float) -> None:
    # The documented bound, 2**(1/16) - 1, against exact percentiles of a
    # skewed sample.
    rng = np.random.default_rng(7)
    waits = rng.lognormal(mean=9, sigma=2, size=20_000).astype(np.uint64) + 1
    buckets = np.bincount(fb.bucket_of(waits), minlength=fb.BUCKETS)
    estimate = fb.percentile(buckets, q, max_ns=int(waits.max()))
    exact = float(np.percentile(waits, q, method="inverted_cdf"))
    assert abs(estimate / exact - 1) <= 2 ** (1 / 16) - 1 + 1e-12


def test_percentile_of_nothing_is_nan_and_bad_q_raises() -> None:
    assert math.isnan(fb.percentile(np.zeros(fb.BUCKETS), 50))
    with pytest.raises(ValueError, match="between 0 and 100"):
        fb.percentile(np.ones(fb.BUCKETS), 101)


def test_sparse_form_round_trips_and_rejects_a_bad_index() -> None:
    buckets = np.zeros(fb.BUCKETS, dtype=np.uint64)
    buckets[[0, 91, 469]] = [3, 5, 1]
    sparse = fb.to_sparse(buckets)
    assert sparse == {"0": 3, "91": 5, "469": 1}
    restored = fb.from_sparse(sparse)
    assert restored is not None
    np.testing.assert_array_equal(restored, buckets)
    assert fb.to_sparse(None) is None and fb.from_sparse(None) is None
    with pytest.raises(ValueError, match="out of range"):
        fb.from_sparse({str(fb.BUCKETS): 1})


def test_a_histogram_from_buckets_reads_percentiles_from_them() -> None:
    waits = np.full(1000, 5000, dtype=np.uint64)  # one bucket: (4871, 5312]
    buckets = np.bincount(fb.bucket_of(waits), minlength=fb.BUCKETS).astype(np.uint64)
    hist = CgroupHistogram.from_buckets(
        1, buckets, count=1000, total_ns=5_000_000, wall_ns=5_000_000, max_ns=5000
    )
    assert hist.slots[12] == 1000  # [4096, 8192)
    assert hist.percentile(50) == pytest.approx(5000, rel=2 ** (1 / 16) - 1)
    earlier = CgroupHistogram.from_buckets(
        1, buckets // 2, count=500, total_ns=2_500_000, wall_ns=2_500_000, max_ns=5000
    )
    delta = hist - earlier
    assert delta.count == 500 and delta.wall_ns == 2_500_000
    assert delta.buckets is not None and int(delta.buckets.sum()) == 500
    assert hist.to_dict()["buckets"] == {str(int(fb.bucket_of(waits[:1])[0])): 1000}
