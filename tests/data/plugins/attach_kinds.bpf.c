// Test plugin: one program per kind of hook the host attaches by section
// name, all on the path of clock_nanosleep; each counts its hits in its own
// slot of `hits`, in the order of `enum hook`.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

enum hook { FENTRY, FEXIT, KPROBE, KRETPROBE, KSYSCALL, RAW_TP, TP_BTF, TP, HOOKS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HOOKS);
	__type(key, u32);
	__type(value, u64);
} hits SEC(".maps");

const volatile u32 tgid = 0;

static int hit(enum hook hook)
{
	u32 key = hook;
	u64 *count;

	if ((bpf_get_current_pid_tgid() >> 32) != tgid)
		return 0;
	count = bpf_map_lookup_elem(&hits, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

SEC("fentry/hrtimer_nanosleep")
int BPF_PROG(on_fentry) { return hit(FENTRY); }

SEC("fexit/hrtimer_nanosleep")
int BPF_PROG(on_fexit) { return hit(FEXIT); }

SEC("kprobe/hrtimer_nanosleep")
int BPF_KPROBE(on_kprobe) { return hit(KPROBE); }

SEC("kretprobe/hrtimer_nanosleep")
int BPF_KRETPROBE(on_kretprobe) { return hit(KRETPROBE); }

SEC("ksyscall/clock_nanosleep")
int BPF_KSYSCALL(on_ksyscall) { return hit(KSYSCALL); }

SEC("raw_tp/sys_enter")
int BPF_PROG(on_raw_tp) { return hit(RAW_TP); }

SEC("tp_btf/sys_enter")
int BPF_PROG(on_tp_btf) { return hit(TP_BTF); }

SEC("tp/syscalls/sys_enter_clock_nanosleep")
int on_tp(void *ctx) { return hit(TP); }

char LICENSE[] SEC("license") = "GPL";
