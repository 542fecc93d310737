// Benchmark plugin: writes `count` records shaped like the run-queue probe's
// `struct runq_event` into a ring buffer, as fast as the kernel can, when run
// on demand (the reader polls: no wakeups). Measures the host's generic path (BTF-decoded raw records) against
// the run-queue probe's typed one.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "nn.bpf.h"

struct burst_event {
	u64 ts_ns;
	u32 cpu;
	u32 pid;
	u32 tgid;
	u32 prev_pid;
	u64 cgroup_id;
	u64 prev_cgroup_id;
	u64 latency_ns;
	u8 preempted;
};

struct burst_args {
	u64 count;
};

NN_RECORD(events, struct burst_event);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

u64 lost = 0;

/* The same work per record as the run-queue probe's synthetic source
 * (emit_synthetic in src/bpf/runq.bpf.c), so only user space differs. */
static long write_one(u64 index, void *ctx)
{
	struct burst_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&lost, 1);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->latency_ns = index;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("syscall")
int burst(struct burst_args *args)
{
	bpf_loop(args->count, write_one, NULL, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
