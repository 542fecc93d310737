/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Wire types of the run-queue latency probe: the single definition shared by
 * runq.bpf.c and the Rust host (which uses the skeleton's generated types).
 */
#ifndef __NN_RUNQ_H
#define __NN_RUNQ_H

/* log2 buckets of nanoseconds: slot i counts waits in [2^i, 2^(i+1)), slot 0
 * also counts 0. 64 slots cover every u64, so no wait is ever clipped. */
#define RUNQ_MAX_SLOTS 64
#define RUNQ_COMM_LEN 16
/* Long enough for `docker-<64 hex>.scope` and `kubepods-besteffort-pod<uid>.slice`. */
#define RUNQ_CGROUP_NAME_LEN 128

/* Value of the per-cgroup map: everything a switch updates is in one value, so a
 * measured wait costs a single hash lookup. */
struct runq_hist {
	__u64 slots[RUNQ_MAX_SLOTS];
	__u64 count;
	__u64 total_ns;
	__u64 max_ns;
	/* comm of the last task of this cgroup that waited */
	char comm[RUNQ_COMM_LEN];
	/* kernfs name of the cgroup (last path component), read when first seen */
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
	__u64 latency_ns;     /* the wait */
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
	__u64 failed_task_storage; /* per-task state could not be created */
	__u64 events;              /* records submitted to the ring buffer */
	__u64 dropped_ringbuf;     /* ring buffer full: record not streamed */
	__u64 rate_limited;        /* record skipped by the per-cgroup rate limit */
	__u64 failed_attribution;  /* runq_blame or switch_outs full: not attributed */
};

#endif /* __NN_RUNQ_H */
