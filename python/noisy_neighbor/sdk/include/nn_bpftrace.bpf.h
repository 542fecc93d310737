/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Helpers for programs generated from bpftrace-language scripts
 * (noisy_neighbor.script): map updates that count their failures, the
 * bucket of hist() and lhist() as bpftrace numbers them, string comparison.
 */
#ifndef __NN_BPFTRACE_BPF_H
#define __NN_BPFTRACE_BPF_H

#include <bpf/bpf_helpers.h>

#ifndef EEXIST
#define EEXIST 17
#endif

/* The including program defines, before including this header,
 *   __u64 nn_map_errors[<maps>];  every failed map update (a full map, mostly), per map
 * which the runtime reads and reports. */

static __always_inline void nn_map_error(__u32 map)
{
	__sync_fetch_and_add(&nn_map_errors[map], 1);
}

/*
 * hist()'s bucket, as bpftrace 0.17 numbers them: 0 holds negative values,
 * 1 holds 0, and bucket k >= 2 holds [2^(k-2), 2^(k-1)). By halving, not
 * __builtin_clzll: BPF has no clz instruction, and clang's expansion of it
 * has been seen to take the compiler's memory.
 */
static __always_inline __u64 nn_log2_bucket(__s64 value)
{
	__u64 n = value, bucket = 2;

	if (value < 0)
		return 0;
	if (value == 0)
		return 1;
	if (n >> 32) { n >>= 32; bucket += 32; }
	if (n >> 16) { n >>= 16; bucket += 16; }
	if (n >> 8) { n >>= 8; bucket += 8; }
	if (n >> 4) { n >>= 4; bucket += 4; }
	if (n >> 2) { n >>= 2; bucket += 2; }
	if (n >> 1) { bucket += 1; }
	return bucket;
}

/* lhist()'s bucket: 0 below min, one per step, the last at or above max. */
static __always_inline __u64 nn_linear_bucket(__s64 value, __s64 min, __s64 max, __u64 step)
{
	if (value < min)
		return 0;
	if (value >= max)
		return (__u64)(max - min) / step + 1;
	return (__u64)(value - min) / step + 1;
}

/* Adds delta to the value under key (count, sum, a hist bucket), creating
 * it if absent. On per-CPU maps each CPU adds to its own copy. */
static __always_inline void nn_map_add(void *map, const void *key, __s64 delta, __u32 map_id)
{
	__s64 *value = bpf_map_lookup_elem(map, key);
	long err;

	if (value) {
		*value += delta;
		return;
	}
	err = bpf_map_update_elem(map, key, &delta, BPF_NOEXIST);
	if (err == -EEXIST) {
		value = bpf_map_lookup_elem(map, key);
		if (value) {
			*value += delta;
			return;
		}
	}
	if (err)
		nn_map_error(map_id);
}

/* An atomic add on a map shared by all CPUs (@x++, @x += n); returns the
 * value before the add. */
static __always_inline __s64 nn_map_fetch_add(void *map, const void *key, __s64 delta,
					      __u32 map_id)
{
	__s64 *value = bpf_map_lookup_elem(map, key);
	long err;

	if (value)
		return __sync_fetch_and_add(value, delta);
	err = bpf_map_update_elem(map, key, &delta, BPF_NOEXIST);
	if (err == -EEXIST) {
		value = bpf_map_lookup_elem(map, key);
		if (value)
			return __sync_fetch_and_add(value, delta);
	}
	if (err)
		nn_map_error(map_id);
	return 0;
}

struct nn_minmax {
	__s64 value;
	__u64 set; /* this CPU has seen a value */
};

static __always_inline void nn_map_minmax(void *map, const void *key, __s64 v, int want_max,
					  __u32 map_id)
{
	struct nn_minmax *value = bpf_map_lookup_elem(map, key);
	struct nn_minmax init = { v, 1 };

	if (value) {
		if (!value->set || (want_max ? v > value->value : v < value->value))
			value->value = v;
		value->set = 1;
		return;
	}
	if (bpf_map_update_elem(map, key, &init, BPF_NOEXIST)) {
		value = bpf_map_lookup_elem(map, key);
		if (!value) {
			nn_map_error(map_id);
			return;
		}
		if (!value->set || (want_max ? v > value->value : v < value->value))
			value->value = v;
		value->set = 1;
	}
}

struct nn_stats {
	__s64 total;
	__u64 count;
};

static __always_inline void nn_map_stats(void *map, const void *key, __s64 v, __u32 map_id)
{
	struct nn_stats *value = bpf_map_lookup_elem(map, key);
	struct nn_stats init = { v, 1 };

	if (value) {
		value->total += v;
		value->count += 1;
		return;
	}
	if (bpf_map_update_elem(map, key, &init, BPF_NOEXIST)) {
		value = bpf_map_lookup_elem(map, key);
		if (!value) {
			nn_map_error(map_id);
			return;
		}
		value->total += v;
		value->count += 1;
	}
}

/* Compares two strings of at most n bytes as C does, stopping at a NUL:
 * 0 if they are equal. */
static __always_inline int nn_strncmp(const char *a, const char *b, __u32 n)
{
	for (__u32 i = 0; i < n && i < 1024; i++) {
		if (a[i] != b[i])
			return 1;
		if (!a[i])
			return 0;
	}
	return 0;
}

/* strcontains(): whether the needle occurs in the haystack (both strings of
 * at most hn and nn bytes, cut at their NUL); an empty needle always does. */
static __always_inline int nn_strcontains(const char *h, __u32 hn, const char *n, __u32 nn)
{
	if (!nn || !n[0])
		return 1;
	for (__u32 i = 0; i < hn && i < 256; i++) {
		if (!h[i])
			return 0;
		for (__u32 j = 0; j < nn && j < 256; j++) {
			if (!n[j])
				return 1;
			if (i + j >= hn || h[(i + j) & 255] != n[j])
				break;
			if (j + 1 == nn)
				return 1;
		}
	}
	return 0;
}

#endif /* __NN_BPFTRACE_BPF_H */
