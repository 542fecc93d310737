// Test object (inspected, never loaded): a record with every kind of field
// the BTF flattener handles.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "nn.bpf.h"

enum big : u64 { BIG_SMALL = 1, BIG_LARGE = 0x80000000 };

struct inner {
	u16 port;
	s8 delta;
};

struct layout_record {
	u64 id;
	struct inner peer;          /* flattened: peer.port, peer.delta */
	u32 grid[2][3];             /* one field of shape [2, 3] */
	struct inner pairs[2];      /* array of structs: opaque bytes */
	union { u32 word; u8 bytes[4]; } either;  /* opaque */
	u32 low : 3, high : 5;      /* bitfields: opaque storage */
	enum big size;
	unsigned __int128 wide;     /* no numpy integer: opaque */
	char tail[];                /* flexible array: a zero-length string */
};

NN_RECORD(events, struct layout_record);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("tp_btf/sched_switch")
int touch(u64 *ctx)
{
	struct layout_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (r)
		bpf_ringbuf_discard(r, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
