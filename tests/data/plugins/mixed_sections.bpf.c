// Test plugin with a program the host cannot attach (XDP needs an interface)
// next to one it can.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} switches SEC(".maps");

SEC("xdp")
int pass_all(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tp_btf/sched_switch")
int count_switches(u64 *ctx)
{
	u32 zero = 0;
	u64 *count = bpf_map_lookup_elem(&switches, &zero);

	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
