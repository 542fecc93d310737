// Test plugin: perf_event programs that count their runs, for the tests of
// per-program perf events (tests/test_perf_events.py).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

enum run_counter { TICK_RUNS, SAMPLE_RUNS, RUN_COUNTERS };

/* Runs of on_tick and on_sample, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RUN_COUNTERS);
	__type(key, u32);
	__type(value, u64);
} runs SEC(".maps");

/* Runs of on_event by the thread that was current (the one switched out,
 * for context-switches), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, u64);
} by_thread SEC(".maps");

static void count(u32 counter)
{
	u64 *runs_here = bpf_map_lookup_elem(&runs, &counter);

	if (runs_here)
		*runs_here += 1;
}

SEC("perf_event")
int on_tick(void *ctx)
{
	count(TICK_RUNS);
	return 0;
}

SEC("perf_event")
int on_sample(void *ctx)
{
	count(SAMPLE_RUNS);
	return 0;
}

SEC("perf_event")
int on_event(void *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 one = 1, *seen = bpf_map_lookup_elem(&by_thread, &tid);

	if (seen)
		*seen += 1;
	else
		bpf_map_update_elem(&by_thread, &tid, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
