// Test plugin the verifier rejects: a hash map value is used without the
// NULL check (an array lookup with a constant in-range key would pass).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u64));
} values SEC(".maps");

SEC("tp_btf/sched_switch")
int unchecked(u64 *ctx)
{
	u32 cpu = bpf_get_smp_processor_id();

	return *(u64 *)bpf_map_lookup_elem(&values, &cpu);
}

char LICENSE[] SEC("license") = "GPL";
