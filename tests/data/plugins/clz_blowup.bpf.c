// Test plugin that Debian 12's clang 14 cannot compile at -O0: BPF has no
// count-leading-zeros instruction, and the backend's expansion of
// __builtin_clz grows without limit (2.3 GiB after 8 s, 4.5 GiB after 15 s)
// until an allocation fails. At -O2 the same clang crashes instead
// (SIGSEGV in the DAG legalizer). tests/test_compile.py bounds it.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

u64 leading_zeros;

SEC("tp_btf/sched_switch")
int on_switch(u64 *ctx)
{
	leading_zeros = __builtin_clz((u32)bpf_ktime_get_ns());
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
