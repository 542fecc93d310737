// Benchmark plugin: one ring-buffer record per context switch, the way an
// analyst would stream sched_switch into a notebook. bench/switch_stream.py
// runs it side by side with the same stream printed by bpftrace.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "nn.bpf.h"

struct switch_event {
	u64 ts_ns;
	u32 cpu;
	u32 prev_pid;
	u32 next_pid;
	u32 prev_state;
};

NN_RECORD(events, struct switch_event);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

/* Records the ring had no room for. */
u64 lost = 0;

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct switch_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&lost, 1);
		return 0;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->cpu = bpf_get_smp_processor_id();
	e->prev_pid = prev->pid;
	e->next_pid = next->pid;
	e->prev_state = prev->__state;
	/* No wakeup per record: the host polls its rings every 10 ms anyway, and
	 * waking the reader for each switch would itself cause switches. */
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
