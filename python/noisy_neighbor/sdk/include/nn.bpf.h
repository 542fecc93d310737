/* SPDX-License-Identifier: GPL-2.0-only */
/* noisy-neighbor plugin conventions that the host reads from BTF. */
#ifndef __NN_BPF_H
#define __NN_BPF_H

/*
 * NN_RECORD(events, struct event): the ring buffer `events` carries records
 * of type `struct event`, which the host decodes into one column per field.
 *
 * clang writes a struct's BTF only when a global, map or function signature
 * uses it, and a ring buffer's definition names no value type; this global
 * (one pointer in .bss, never read) both makes the type visible and names
 * the map it belongs to.
 */
#define NN_RECORD(map, type) type *__nn_record_##map __attribute__((unused))

#endif /* __NN_BPF_H */
