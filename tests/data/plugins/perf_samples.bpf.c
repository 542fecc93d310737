// Test plugin: counts CPU-clock samples per CPU (a perf_event program).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} samples SEC(".maps");

SEC("perf_event")
int on_sample(void *ctx)
{
	u32 zero = 0;
	u64 *count = bpf_map_lookup_elem(&samples, &zero);

	if (count)
		*count += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
