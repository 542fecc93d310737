// Test plugin whose first program attaches and whose second cannot (no such
// tracepoint): the first must not stay attached after the error.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tp_btf/sched_switch")
int attaches_first(u64 *ctx)
{
	return 0;
}

SEC("tp/no_such_group/no_such_event")
int never_attaches(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
