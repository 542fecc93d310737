/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * noisy-neighbor BPF SDK: map helpers, compatible with the helper of the same
 * name in libbpf-bootstrap's maps.bpf.h (written for this project).
 */
#ifndef __NN_SDK_MAPS_BPF_H
#define __NN_SDK_MAPS_BPF_H

#include <bpf/bpf_helpers.h>

#ifndef EEXIST
#define EEXIST 17
#endif

/*
 * The value under `key`, inserted as a copy of `init` if absent. Returns NULL
 * only if the map is full (or the update fails otherwise): callers should
 * count that, since the event is then lost.
 */
static __always_inline void *bpf_map_lookup_or_try_init(void *map, const void *key,
							 const void *init)
{
	void *value = bpf_map_lookup_elem(map, key);
	long err;

	if (value)
		return value;
	err = bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	/* EEXIST: another CPU inserted it between our lookup and update. */
	if (err && err != -EEXIST)
		return 0;
	return bpf_map_lookup_elem(map, key);
}

#endif /* __NN_SDK_MAPS_BPF_H */
