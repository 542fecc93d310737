/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Wire types of the run-queue latency probe: the single definition shared by
 * runq.bpf.c and the Rust host (which uses the skeleton's generated types).
 */
#ifndef __NN_RUNQ_H
#define __NN_RUNQ_H

/* Fine buckets of nanoseconds: the boundaries of Prometheus native histograms
 * at schema 3 and OpenTelemetry exponential histograms at scale 3, 2^(i/8),
 * with each power of two split once more so that the log2 table (slot e:
 * [2^e, 2^(e+1))) is their exact sum. Bucket 0 counts waits of 0 ns; for a
 * wait v >= 1 with 2^e <= v < 2^(e+1), e < 52, bucket 1 + 9e + k holds it:
 *   k = 0:     v == 2^e
 *   k = 1..7:  2^(e+(k-1)/8) < v <= 2^(e+k/8)
 *   k = 8:     2^(e+7/8) < v < 2^(e+1)
 * so Prometheus' bucket 8e+k (upper bound 2^((8e+k)/8)) is bucket 1+9e+k,
 * plus, for k = 8, the next power's k = 0 bucket. The last bucket counts
 * waits of 2^52 ns (52 days) or more: none is ever dropped, and the value
 * stays under 4 KiB, so the kernel allocates each map entry from its 4 KiB
 * slab instead of the 8 KiB one (measured: 4.0 KiB per entry, against 8.0
 * KiB with all 64 powers). */
#define RUNQ_FINE_POWERS 52
#define RUNQ_BUCKETS_PER_POWER 9
#define RUNQ_OVERFLOW_BUCKET (1 + RUNQ_FINE_POWERS * RUNQ_BUCKETS_PER_POWER)
#define RUNQ_HIST_BUCKETS (RUNQ_OVERFLOW_BUCKET + 1)
#define RUNQ_COMM_LEN 16
/* Long enough for `docker-<64 hex>.scope` and `kubepods-besteffort-pod<uid>.slice`. */
#define RUNQ_CGROUP_NAME_LEN 128
/* `cpu` of a cgroup's shared histogram (see runq_hist_key). */
#define RUNQ_ANY_CPU 0xffffffffU

/* Key of the histogram maps. Each CPU counts a cgroup's waits in its own
 * entry (cpu = that CPU, in `runq_cpu_hists`), written by that CPU only, with
 * plain adds: no cache line is shared between CPUs on the per-switch path.
 * Every cgroup also has one shared entry (cpu = RUNQ_ANY_CPU, in
 * `runq_hists`) that holds its name, and its waits from CPUs that found
 * `runq_cpu_hists` full, counted there with atomic adds. A reading sums them. */
struct runq_hist_key {
	__u64 cgroup_id; /* cgroup v2 id of the task that waited */
	__u32 cpu;
	__u32 pad;
};

/* Value of both histogram maps: everything a switch updates is in one value,
 * so a measured wait costs a single hash lookup. */
struct runq_hist {
	__u64 buckets[RUNQ_HIST_BUCKETS]; /* wall-clock waits, fine buckets (above) */
	__u64 count;
	/* The kernel's own account of these waits (what run_delay in
	 * /proc/<pid>/schedstat adds up): exact against schedstat. */
	__u64 total_ns;
	/* The same waits by the wall clock, as the buckets count them (see
	 * "sched_info" in runq.bpf.c for when the two differ). */
	__u64 wall_ns;
	__u64 max_ns;  /* longest wall-clock wait */
	__u64 last_ns; /* bpf_ktime_get_ns() of the last wait: whose comm is newest */
	/* comm of the last task of this cgroup that waited */
	char comm[RUNQ_COMM_LEN];
	/* kernfs name of the cgroup (last path component), read when first seen;
	 * in shared entries only */
	char cgroup_name[RUNQ_CGROUP_NAME_LEN];
};

/* One measured wait, streamed through the `events` ring buffer. The host
 * reads this layout from BTF: each field becomes a numpy column of that name. */
struct runq_event {
	__u64 ts_ns;          /* bpf_ktime_get_ns() when the wait ended (CLOCK_MONOTONIC) */
	__u32 cpu;            /* the CPU the task got */
	__u32 pid;            /* thread id of the task that waited */
	__u32 tgid;           /* its process id */
	__u32 prev_pid;       /* thread id of the task that had the CPU (0: idle) */
	__u64 cgroup_id;      /* cgroup v2 id of the task that waited */
	__u64 prev_cgroup_id; /* cgroup v2 id of the task that had the CPU */
	__u64 latency_ns;     /* the wait, by the wall clock */
	/* latency_ns minus the kernel's account of the wait: latency_ns -
	 * clock_correction_ns is what run_delay in /proc/<pid>/schedstat adds */
	__s32 clock_correction_ns;
	bool preempted;       /* true: it was preempted while running; false: woken (or new) */
};

/* Culprit of wait time during which the CPU was idle: no one to blame (no
 * cgroup has id 0). On current kernels a cgroup throttled by its own quota
 * waits like that. */
#define RUNQ_IDLE_CULPRIT 0
/* Culprit of wait time the probe cannot split: spent on another CPU before a
 * migration, or older than the last RUNQ_SLICES slices of this CPU. */
#define RUNQ_UNTRACKED_CULPRIT 0xffffffffffffffffULL
/* CPU slices remembered per CPU to split a wait among the cgroups that ran. */
#define RUNQ_SLICES 16

/* Key of `runq_blame`: whose wait, and which cgroup held the CPU meanwhile.
 * A wait is split over every slice of CPU time that ran while it waited, so
 * each part goes to the cgroup that actually had the CPU then. */
struct runq_blame_key {
	__u64 cgroup_id;
	__u64 culprit_cgroup_id;
};

struct runq_blame {
	__u64 count;    /* waits that spent some time behind this culprit */
	__u64 total_ns; /* the time */
};

/* Per CPU, sched_info method: how far this CPU's run-queue clock lags the
 * wall clock (bpf_ktime_get_ns()) at a switch where the kernel re-read it.
 * The lag at such a switch is a constant offset plus the scheduler's own few
 * hundred ns; a stale clock only adds to it. So the offset is the smallest lag
 * seen, over this and the previous epoch, which also follows the slow drift
 * between the two clocks (about 50 ns/s measured on the reference VM). */
struct runq_cpu_clock {
	__s64 min_lag;      /* smallest ktime - rq->clock this epoch */
	__s64 prev_min_lag; /* ... the previous epoch */
	__u64 epoch_start;  /* ktime when this epoch began (0: never calibrated) */
};

/* Per CPU: the last RUNQ_SLICES stretches of CPU time and whose they were. */
struct runq_cpu_slices {
	__u64 end[RUNQ_SLICES];    /* clock at the end of the slice */
	__u64 cgroup[RUNQ_SLICES]; /* cgroup of the task that ran it (0: idle) */
	__u32 head;                /* newest slice */
};

/* Value of `switch_outs`: why tasks of a cgroup left the CPU. */
struct runq_switch_outs {
	__u64 voluntary;        /* slept or blocked */
	__u64 preempted_same;   /* still runnable; the CPU went to the same cgroup */
	__u64 preempted_other;  /* ... to another cgroup */
	__u64 preempted_system; /* ... to a kernel thread, the root cgroup or system.slice */
};

/* Value of the single-entry per-CPU `counters` array: every loss has its own
 * counter, summed over CPUs by the host. */
struct runq_counters {
	__u64 switches;            /* sched_switch runs seen */
	__u64 waits;               /* waits measured (before the cgroup filter) */
	__u64 filtered;            /* waits of cgroups outside the filter */
	__u64 failed_updates;      /* histogram map full: wait not recorded */
	/* runq_cpu_hists full: the wait went to the cgroup's shared entry, with
	 * atomic adds (nothing lost; a cost, not a loss) */
	__u64 shared_updates;
	__u64 failed_task_storage; /* per-task state could not be created */
	__u64 events;              /* records submitted to the ring buffer */
	__u64 dropped_ringbuf;     /* ring buffer full: record not streamed */
	__u64 rate_limited;        /* record skipped by the per-cgroup rate limit */
	__u64 failed_attribution;  /* runq_blame or switch_outs full: not attributed */
};

#endif /* __NN_RUNQ_H */
