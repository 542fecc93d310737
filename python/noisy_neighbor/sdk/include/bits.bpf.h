/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * noisy-neighbor BPF SDK: integer log2 for histogram slots, compatible with
 * libbpf-bootstrap's bits.bpf.h (written for this project).
 */
#ifndef __NN_SDK_BITS_BPF_H
#define __NN_SDK_BITS_BPF_H

/* floor(log2(v)) for v > 0, and 0 for 0: the index of the highest set bit,
 * found by halving the search width (no loops, so the verifier is happy). */
static __always_inline __u64 log2(__u32 v)
{
	__u32 shift, r;

	r = (v > 0xFFFF) << 4;
	v >>= r;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

/* floor(log2(v)) of a 64-bit value. */
static __always_inline __u64 log2l(__u64 v)
{
	__u32 hi = v >> 32;

	return hi ? log2(hi) + 32 : log2((__u32)v);
}

#endif /* __NN_SDK_BITS_BPF_H */
