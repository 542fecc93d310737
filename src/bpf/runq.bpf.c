// SPDX-License-Identifier: GPL-2.0
/*
 * Run-queue latency per cgroup: how long each task waited between becoming
 * runnable and getting a CPU, aggregated in the kernel per cgroup v2 id of the
 * task that waited.
 *
 * Two methods, chosen by the host (only one set of programs is loaded):
 *
 * sched_info (default): the kernel already stamps every enqueue in
 *   task->sched_info.last_queued (run-queue clock) and adds
 *   rq->clock - last_queued to the task's run_delay when it gets the CPU, just
 *   after the sched_switch tracepoint. Reading the same two values here gives
 *   exactly the wait /proc/<pid>/schedstat reports, preemption included, with no
 *   wakeup hook. When a waiting task migrates, the kernel adds the wait so far to
 *   run_delay and restarts last_queued on the new CPU; per-task storage keeps the
 *   run_delay seen at the last switch-in so that part is added back.
 *   Wall clock: after a wakeup that preempts the running task, the kernel
 *   skips the next clock update (rq_clock_skip_update), so by rq->clock the
 *   woken task waited 0-1 ns. The buckets, max and streamed waits are
 *   therefore wall-clock: rq->clock corrected by this CPU's calibrated lag
 *   behind bpf_ktime_get_ns() (struct runq_cpu_clock), at both ends of the
 *   wait. total_ns stays the kernel's own account, exact against schedstat;
 *   wall_ns sums the wall-clock waits beside it.
 *
 * wakeup (fallback for kernels without CONFIG_SCHED_INFO): stamp
 *   bpf_ktime_get_ns() in task storage at sched_wakeup / sched_wakeup_new and
 *   when a preempted task is put back (prev still TASK_RUNNING), and measure at
 *   sched_switch. Wall-clock waits; costs three hooks instead of one.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "nn.bpf.h"
#include "core_fixes.bpf.h"
#include "runq.h"

#define TASK_RUNNING 0
/* Default capacity; the host resizes it before load (RunqProbe(max_cgroups=)). */
#define RUNQ_DEFAULT_MAX_CGROUPS 10240

char LICENSE[] SEC("license") = "GPL";

/* Set by the host before load: only record waits of cgroups in cgroup_filter. */
const volatile bool filter_cgroups = false;
/* Stream one runq_event per wait into `events` (histograms count regardless). */
const volatile bool stream_events = false;
/* At most one event per cgroup per CPU per this many ns (0: no limit). */
const volatile __u64 rate_limit_ns = 0;
/* Split each wait by the cgroup that had the CPU, and count switch-outs by cause. */
const volatile bool attribute_waits = false;
/* Cgroup id of /system.slice (0: none): its subtree counts as "system". */
const volatile __u64 system_slice_id = 0;
/* Wake the reader only once this much data is waiting: a wakeup per record
 * costs more than the record itself, and the reader also polls on a timer. */
const volatile __u64 wakeup_bytes = 0;
/* ... checked once per (this mask + 1) events of a CPU: the check reads the
 * consumer's position, a cache line the reader's CPU writes, so checking on
 * every event costs a cache miss per event. The host picks the mask so that a
 * ring's quarter holds many checks. */
const volatile __u64 wakeup_check_mask = 0;
/* How the program walks task->cgroups->dfl_cgrp: under the RCU kfuncs (Linux
 * 6.2 and later, which require them for that walk), or with CO-RE probe reads
 * (older kernels, which have no such kfuncs). Set by the host from the
 * kernel's BTF; the verifier drops the branch not taken, so the kfuncs, weak,
 * need not exist. */
const volatile bool use_rcu_kfuncs = true;

/* Histograms (see struct runq_hist_key): one shared entry per cgroup, and
 * one per cgroup per CPU it waited on. Allocated as used (NO_PREALLOC): an
 * entry takes 4 KiB, so memory follows the cgroups and CPUs that
 * actually wait, and the host sizes both maps. */
struct runq_hist_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, RUNQ_DEFAULT_MAX_CGROUPS);
	__type(key, struct runq_hist_key);
	__type(value, struct runq_hist);
};

struct runq_hist_map runq_hists SEC(".maps");
struct runq_hist_map runq_cpu_hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RUNQ_DEFAULT_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} cgroup_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct runq_counters);
} counters SEC(".maps");

/* The stream: one ring buffer per CPU, each CPU writing to its own. Two CPUs
 * reserving in one ring paid twice per event (its lock and cache lines:
 * BENCHMARKS.md). The host sizes the rings and creates one per possible CPU
 * (src/host/cpu_rings.rs); the reader drains them all into one stream. */
struct events_ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096); /* the host sizes it: ring_buffer_bytes / CPUs */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1); /* the host sets one per possible CPU */
	__type(key, __u32);
	__array(values, struct events_ring);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4 * RUNQ_DEFAULT_MAX_CGROUPS); /* pairs; the host resizes it */
	__type(key, struct runq_blame_key);
	__type(value, struct runq_blame);
} runq_blame SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RUNQ_DEFAULT_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct runq_switch_outs);
} switch_outs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct runq_cpu_slices);
} cpu_slices SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct runq_cpu_clock);
} cpu_clock SEC(".maps");

/* Records of `events` are struct runq_event (only referenced through sizeof(),
 * which emits no type information): this puts the type into BTF and tells the
 * host which ring it belongs to. */
NN_RECORD(events, struct runq_event);

/* Culprit ids that are not cgroups, as globals so that the host reads them
 * from the object instead of declaring them a second time. */
const volatile __u64 idle_culprit = RUNQ_IDLE_CULPRIT;
const volatile __u64 untracked_culprit = RUNQ_UNTRACKED_CULPRIT;

/* Time of the last streamed event per cgroup on this CPU, for the rate limit.
 * LRU, so a host with more cgroups than entries forgets the oldest instead of
 * failing. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, RUNQ_DEFAULT_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, __u64);
} last_event_ns SEC(".maps");

/* Per-task state, freed by the kernel when the task exits: no pid-keyed table
 * to fill up, no ghosts after pid reuse. */
struct task_wait {
	__u64 enqueued_ns;    /* wakeup method: when it became runnable, 0 if not queued */
	__u64 run_delay_seen; /* sched_info method: run_delay after its last switch-in */
	/* sched_info method: how far the clock lagged when the kernel stamped
	 * last_queued at the switch that put this task back (preempted) */
	__u64 queued_lag_ns;
	__u8 seen;            /* run_delay_seen is valid */
	__u8 preempted;       /* queued because it was preempted (not woken) */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_wait);
} task_waits SEC(".maps");

/* Zeroed templates for new entries (the histogram is too big for the stack). */
static struct runq_hist zero_hist;
static struct runq_blame zero_blame;
static struct runq_switch_outs zero_switch_outs;

void bpf_rcu_read_lock(void) __ksym __weak;
void bpf_rcu_read_unlock(void) __ksym __weak;

/* This CPU's counters. Tracepoints run with preemption off, so plain
 * increments are safe. The lookup of a one-entry per-CPU array cannot fail;
 * the fallback only satisfies the verifier. */
static struct runq_counters discarded_counters;

static __always_inline struct runq_counters *cpu_counters(void)
{
	__u32 zero = 0;
	struct runq_counters *counters_p = bpf_map_lookup_elem(&counters, &zero);

	return counters_p ? counters_p : &discarded_counters;
}

static __always_inline __u64 task_cgroup_id(struct task_struct *task)
{
	__u64 id;

	if (!use_rcu_kfuncs)
		return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	bpf_rcu_read_lock();
	id = task->cgroups->dfl_cgrp->kn->id;
	bpf_rcu_read_unlock();
	return id;
}

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 slot = 0;

	/* Branch-free binary search for the highest set bit. */
	if (v >> 32) { v >>= 32; slot += 32; }
	if (v >> 16) { v >>= 16; slot += 16; }
	if (v >> 8) { v >>= 8; slot += 8; }
	if (v >> 4) { v >>= 4; slot += 4; }
	if (v >> 2) { v >>= 2; slot += 2; }
	if (v >> 1) { slot += 1; }
	return slot;
}

/* floor(2^(63 + j/8)) for j = 1..7: with v's top bit shifted to bit 63, v
 * exceeds 2^(e + j/8) exactly when the shifted value exceeds this (an integer
 * cannot equal an irrational bound). Computed by integer 8th roots; the
 * Python side checks them against Prometheus' schema 3 formula. */
#define SUB_BOUND_1 0x8b95c1e3ea8bd6e6ULL
#define SUB_BOUND_2 0x9837f0518db8a96fULL
#define SUB_BOUND_3 0xa5fed6a9b15138eaULL
#define SUB_BOUND_4 0xb504f333f9de6484ULL
#define SUB_BOUND_5 0xc5672a115506daddULL
#define SUB_BOUND_6 0xd744fccad69d6af4ULL
#define SUB_BOUND_7 0xeac0c6e7dd24392eULL

/* 1 if m > bound, else 0, for m and bound both in [2^63, 2^64): their
 * difference fits in 63 bits, so its sign bit is the answer. Arithmetic, not
 * a comparison: a branch per bound would multiply the verifier's paths. */
static __always_inline __u64 above(__u64 m, __u64 bound)
{
	__u64 diff = bound - m;

	asm volatile("" : "+r"(diff)); /* keep clang from turning it back into a branch */
	return diff >> 63;
}

/* The fine bucket of a wait (see runq.h): its log2 slot plus eight
 * comparisons of the mantissa, no loop and no table. */
static __always_inline __u32 fine_bucket(__u64 v)
{
	__u32 e;
	__u64 m, k;

	if (!v)
		return 0;
	if (v >> RUNQ_FINE_POWERS)
		return RUNQ_OVERFLOW_BUCKET;
	e = log2_slot(v);
	m = v << (63 - e);
	k = above(m, 1ULL << 63) + above(m, SUB_BOUND_1) + above(m, SUB_BOUND_2) +
	    above(m, SUB_BOUND_3) + above(m, SUB_BOUND_4) + above(m, SUB_BOUND_5) +
	    above(m, SUB_BOUND_6) + above(m, SUB_BOUND_7);
	return 1 + RUNQ_BUCKETS_PER_POWER * e + k;
}

/* The value under `key`, created zeroed if absent; NULL (counted) if the map
 * is full. */
static __always_inline void *lookup_or_init(void *map, const void *key, const void *zero)
{
	void *value = bpf_map_lookup_elem(map, key);
	long err;

	if (value)
		return value;
	err = bpf_map_update_elem(map, key, zero, BPF_NOEXIST);
	if (err && err != -17 /* EEXIST: another CPU created it first */)
		return NULL;
	return bpf_map_lookup_elem(map, key);
}

/* Attribution: is_system_task, note_switch, blame_wait. */
#include "runq_attribution.bpf.h"

/* The cgroup's shared entry, created (with its name) when the cgroup is first
 * seen; NULL (counted) if the map is full. */
static __always_inline struct runq_hist *shared_hist(__u64 cgroup_id, struct task_struct *task)
{
	struct runq_hist_key key = { .cgroup_id = cgroup_id, .cpu = RUNQ_ANY_CPU };
	struct runq_hist *hist = bpf_map_lookup_elem(&runq_hists, &key);
	const char *name;

	if (hist)
		return hist;
	hist = lookup_or_init(&runq_hists, &key, &zero_hist);
	if (!hist) {
		cpu_counters()->failed_updates++;
		return NULL;
	}
	/* The name is read once, when the cgroup is first seen, not on every switch. */
	if (use_rcu_kfuncs) {
		bpf_rcu_read_lock();
		name = task->cgroups->dfl_cgrp->kn->name;
		bpf_rcu_read_unlock();
	} else {
		name = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, name);
	}
	bpf_probe_read_kernel_str(hist->cgroup_name, sizeof(hist->cgroup_name), name);
	return hist;
}

/* Counts one wait in this CPU's entry of the cgroup: only this CPU writes it
 * (tracepoints run with preemption off, and sched_switch does not nest), so
 * plain adds suffice. If runq_cpu_hists is full, the shared entry takes the
 * wait with atomic adds. */
static __always_inline void count_wait(struct runq_counters *cnt, __u64 cgroup_id,
				       struct task_struct *waiter, __u64 kernel_ns, __u64 wall_ns,
				       __u64 now_ns)
{
	struct runq_hist_key key = { .cgroup_id = cgroup_id, .cpu = bpf_get_smp_processor_id() };
	__u32 bucket = fine_bucket(wall_ns);
	struct runq_hist *hist = bpf_map_lookup_elem(&runq_cpu_hists, &key);
	__u64 max;

	/* The compiler knows the bucket is in range and would drop a check; the
	 * verifier must see one. */
	asm volatile("" : "+r"(bucket));
	if (bucket >= RUNQ_HIST_BUCKETS)
		bucket = RUNQ_HIST_BUCKETS - 1;

	if (!hist) {
		/* First wait of this cgroup on this CPU: make sure it has its shared
		 * entry (and name), then its own. */
		struct runq_hist *shared = shared_hist(cgroup_id, waiter);

		if (!shared)
			return;
		if (bpf_map_update_elem(&runq_cpu_hists, &key, &zero_hist, BPF_NOEXIST) == 0)
			hist = bpf_map_lookup_elem(&runq_cpu_hists, &key);
		if (!hist) {
			cnt->shared_updates++;
			__sync_fetch_and_add(&shared->buckets[bucket], 1);
			__sync_fetch_and_add(&shared->count, 1);
			__sync_fetch_and_add(&shared->total_ns, kernel_ns);
			__sync_fetch_and_add(&shared->wall_ns, wall_ns);
			/* Lock-free max; a few retries suffice, as only other CPUs race us. */
			max = shared->max_ns;
			for (int i = 0; i < 8 && wall_ns > max; i++) {
				__u64 seen = __sync_val_compare_and_swap(&shared->max_ns, max, wall_ns);

				if (seen == max)
					break;
				max = seen;
			}
			shared->last_ns = now_ns;
			__builtin_memcpy(shared->comm, waiter->comm, sizeof(shared->comm));
			return;
		}
	}
	hist->buckets[bucket]++;
	hist->count++;
	hist->total_ns += kernel_ns;
	hist->wall_ns += wall_ns;
	if (wall_ns > hist->max_ns)
		hist->max_ns = wall_ns;
	hist->last_ns = now_ns;
	__builtin_memcpy(hist->comm, waiter->comm, sizeof(hist->comm));
}

static __always_inline __s32 clamp_s32(__s64 v)
{
	return v > 0x7fffffffLL ? 0x7fffffff : v < -0x80000000LL ? -0x80000000LL : (__s32)v;
}

/* Streams one wait, unless rate-limited or the ring buffer is full (both counted). */
static __always_inline void emit_event(struct runq_counters *cnt, struct task_struct *waiter,
				       struct task_struct *prev, __u64 cgroup_id, __u64 kernel_ns,
				       __u64 wall_ns, __u64 now, bool preempted)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct runq_event *event;
	void *ring;
	__u64 flags;

	if (rate_limit_ns) {
		__u64 *last = bpf_map_lookup_elem(&last_event_ns, &cgroup_id);

		if (last && now - *last < rate_limit_ns) {
			cnt->rate_limited++;
			return;
		}
		if (last)
			*last = now;
		else if (bpf_map_update_elem(&last_event_ns, &cgroup_id, &now, BPF_ANY))
			cnt->failed_updates++; /* the event still goes out */
	}
	ring = bpf_map_lookup_elem(&events, &cpu);
	event = ring ? bpf_ringbuf_reserve(ring, sizeof(*event), 0) : NULL;
	if (!event) {
		cnt->dropped_ringbuf++;
		return;
	}
	event->ts_ns = now;
	event->cgroup_id = cgroup_id;
	event->prev_cgroup_id = task_cgroup_id(prev);
	event->latency_ns = wall_ns;
	event->clock_correction_ns = clamp_s32((__s64)(wall_ns - kernel_ns));
	event->pid = waiter->pid;
	event->tgid = waiter->tgid;
	event->prev_pid = prev->pid;
	event->cpu = cpu;
	event->preempted = preempted;
	flags = BPF_RB_NO_WAKEUP;
	if (!(cnt->events & wakeup_check_mask) &&
	    bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(event, flags);
	cnt->events++;
}

/* Books one wait of `waiter`: `kernel_ns` by the kernel's account, `wall_ns`
 * by the wall clock, of which the last `here_ns` (up to `now`, in the clock
 * of `note_switch`) were spent queued on this CPU; `ktime` is
 * bpf_ktime_get_ns() now. To its histogram, attribution and stream. */
static __always_inline void record_wait(struct task_struct *waiter, struct task_struct *prev,
					__u64 kernel_ns, __u64 wall_ns, __u64 here_ns, __u64 now,
					__u64 ktime, bool preempted)
{
	__u64 cgroup_id = task_cgroup_id(waiter);
	struct runq_counters *cnt = cpu_counters();

	cnt->waits++;
	if (filter_cgroups && !bpf_map_lookup_elem(&cgroup_filter, &cgroup_id)) {
		cnt->filtered++;
		return;
	}
	count_wait(cnt, cgroup_id, waiter, kernel_ns, wall_ns, ktime);
	if (attribute_waits)
		blame_wait(cnt, cgroup_id, kernel_ns, here_ns, now);
	if (stream_events)
		emit_event(cnt, waiter, prev, cgroup_id, kernel_ns, wall_ns, ktime, preempted);
}

/* --- sched_info method ------------------------------------------------------ */

#define CLOCK_EPOCH_NS 250000000ULL /* drift over two epochs: ~25 ns here */

/* How far this CPU's run-queue clock lags the wall clock now: the lag beyond
 * the calibrated offset (see struct runq_cpu_clock), 0 if uncalibrated. */
static __always_inline __u64 clock_lag(__u64 ktime, __u64 rq_clock)
{
	__s64 lag = (__s64)(ktime - rq_clock), offset;
	struct runq_cpu_clock *clk;
	__u32 zero = 0;

	clk = bpf_map_lookup_elem(&cpu_clock, &zero);
	if (!clk)
		return 0;
	if (!clk->epoch_start) {
		clk->min_lag = clk->prev_min_lag = lag;
		clk->epoch_start = ktime;
	} else if (ktime - clk->epoch_start > CLOCK_EPOCH_NS) {
		clk->prev_min_lag = clk->min_lag;
		clk->min_lag = lag;
		clk->epoch_start = ktime;
	} else if (lag < clk->min_lag) {
		clk->min_lag = lag;
	}
	offset = clk->min_lag < clk->prev_min_lag ? clk->min_lag : clk->prev_min_lag;
	return lag > offset ? lag - offset : 0;
}

static __always_inline void switch_sched_info(struct task_struct *prev, struct task_struct *next,
					      struct rq *rq)
{
	__u64 last_queued, run_delay, here_ns, migrated_ns = 0, queued_lag = 0, now, ktime, lag;
	__s64 wall_ns;
	struct task_wait *state;
	bool preempted = false, prev_runnable;

	cpu_counters()->switches++;
	if (!rq)
		return;
	now = rq->clock;
	ktime = bpf_ktime_get_ns();
	lag = clock_lag(ktime, now);
	prev_runnable = prev->pid && get_task_state(prev) == TASK_RUNNING;
	if (attribute_waits)
		note_switch(cpu_counters(), prev, next, prev_runnable, now);
	if (prev_runnable) {
		/* prev goes back on the run queue, stamped by the kernel with this
		 * clock: remember how far it lags, to take it off that wait. */
		state = bpf_task_storage_get(&task_waits, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (state) {
			state->queued_lag_ns = lag;
			state->preempted = 1;
		} else {
			cpu_counters()->failed_task_storage++;
		}
	}
	/* Not queued (e.g. the idle task): the kernel counts no wait either. */
	last_queued = next->sched_info.last_queued;
	if (!last_queued)
		return;
	here_ns = now - last_queued;

	run_delay = next->sched_info.run_delay;
	state = bpf_task_storage_get(&task_waits, next, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (state) {
		/* Growth since the last switch-in is wait the kernel booked when the
		 * task migrated while queued; it is part of this wait. The stamp on
		 * the new CPU came with a fresh clock. */
		if (state->seen && run_delay > state->run_delay_seen)
			migrated_ns = run_delay - state->run_delay_seen;
		queued_lag = state->queued_lag_ns;
		/* The kernel adds this wait to run_delay right after the tracepoint. */
		state->run_delay_seen = run_delay + here_ns;
		state->seen = 1;
		preempted = state->preempted;
		state->preempted = 0;
		state->queued_lag_ns = 0;
	} else {
		cpu_counters()->failed_task_storage++;
	}
	/* By the wall clock: both ends corrected by their clock's lag. */
	wall_ns = (__s64)(here_ns + migrated_ns + lag - queued_lag);
	record_wait(next, prev, here_ns + migrated_ns, wall_ns > 0 ? wall_ns : 0, here_ns, now, ktime,
		    preempted);
}

/* Two flavours that differ only in how they find this CPU's run queue; the host
 * loads one (see core_fixes.bpf.h). */
SEC("tp_btf/sched_switch")
int BPF_PROG(nn_switch_si, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	switch_sched_info(prev, next, this_rq_from_task(next));
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(nn_switch_si_pc, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	switch_sched_info(prev, next, this_rq_percpu());
	return 0;
}

/* --- wakeup method ---------------------------------------------------------- */

static __always_inline void stamp_enqueue(struct task_struct *task, __u64 now, bool preempted)
{
	struct task_wait *state;

	if (!task->pid) /* the idle task is never queued */
		return;
	state = bpf_task_storage_get(&task_waits, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!state) {
		cpu_counters()->failed_task_storage++;
		return;
	}
	state->enqueued_ns = now;
	state->preempted = preempted;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(nn_wakeup, struct task_struct *task)
{
	stamp_enqueue(task, bpf_ktime_get_ns(), false);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(nn_wakeup_new, struct task_struct *task)
{
	stamp_enqueue(task, bpf_ktime_get_ns(), false);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(nn_switch_wk, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns();
	struct task_wait *state;
	bool prev_runnable;
	__u64 wait_ns;

	cpu_counters()->switches++;
	/* A preempted task goes straight back on the run queue. The `preempt`
	 * argument is rarely set on current kernels; the state is what tells. */
	prev_runnable = preempt || get_task_state(prev) == TASK_RUNNING;
	if (prev_runnable)
		stamp_enqueue(prev, now, true);
	if (attribute_waits)
		note_switch(cpu_counters(), prev, next, prev_runnable && prev->pid, now);

	if (!next->pid)
		return 0;
	state = bpf_task_storage_get(&task_waits, next, 0, 0);
	if (!state || !state->enqueued_ns)
		return 0;
	wait_ns = now - state->enqueued_ns;
	state->enqueued_ns = 0;
	/* Stamped at wakeup, possibly on another CPU: the split assumes this one.
	 * The wall clock is this method's only clock: both accounts agree. */
	record_wait(next, prev, wait_ns, wait_ns, wait_ns, now, now, state->preempted);
	return 0;
}
