// Benchmark plugin: writes `count` run-queue events (`struct runq_event`, the
// probe's own record from src/bpf/runq.h: compile with -I src/bpf) into a ring
// buffer, as fast as the kernel can, when run on demand (the reader polls: no
// wakeups). The host drains them exactly as it drains the run-queue probe's
// stream, so this measures the stream's capacity into Python.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "nn.bpf.h"
#include "runq.h"

struct burst_args {
	u64 count;
};

NN_RECORD(events, struct runq_event);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

u64 lost = 0;

static long write_one(u64 index, void *ctx)
{
	struct runq_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

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
