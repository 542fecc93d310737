/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Wait attribution of the run-queue probe: who had the CPU while a task
 * waited. Each CPU keeps its last RUNQ_SLICES slices of CPU time and whose
 * they were; a wait is split over the slices that ran while it was queued, so
 * every part goes to the cgroup that really had the CPU then. Switch-outs are
 * counted by cause on the way.
 *
 * Included by runq.bpf.c after its maps (runq_blame, switch_outs, cpu_slices)
 * and helpers (task_cgroup_id, lookup_or_init), which this part uses.
 */
#ifndef __NN_RUNQ_ATTRIBUTION_BPF_H
#define __NN_RUNQ_ATTRIBUTION_BPF_H

#define PF_KTHREAD 0x00200000 /* include/linux/sched.h */

/* Kernel threads, the root cgroup and the system.slice subtree: "system". */
static __always_inline bool is_system_task(struct task_struct *task, __u64 cgroup_id)
{
	struct cgroup *cgrp;
	bool system = false;

	if (!task->pid || (task->flags & PF_KTHREAD) || cgroup_id == 1)
		return true;
	if (!system_slice_id || !bpf_core_field_exists(cgrp->ancestors))
		return false;
	if (!use_rcu_kfuncs) {
		struct cgroup *ancestor;

		cgrp = BPF_CORE_READ(task, cgroups, dfl_cgrp);
		if (BPF_CORE_READ(cgrp, level) < 1)
			return false;
		if (bpf_core_read(&ancestor, sizeof(ancestor), &cgrp->ancestors[1]))
			return false;
		return BPF_CORE_READ(ancestor, kn, id) == system_slice_id;
	}
	bpf_rcu_read_lock();
	cgrp = task->cgroups->dfl_cgrp;
	if (cgrp->level >= 1)
		system = cgrp->ancestors[1]->kn->id == system_slice_id;
	bpf_rcu_read_unlock();
	return system;
}

/* At every switch (with attribution on): closes prev's slice of CPU time on
 * this CPU's ring, and books why prev left the CPU to prev's cgroup. `now` is
 * in the clock the method measures waits with. */
static __always_inline void note_switch(struct runq_counters *cnt, struct task_struct *prev,
					struct task_struct *next, bool prev_runnable, __u64 now)
{
	__u32 zero = 0;
	struct runq_cpu_slices *slices = bpf_map_lookup_elem(&cpu_slices, &zero);
	__u64 prev_cgroup_id = prev->pid ? task_cgroup_id(prev) : RUNQ_IDLE_CULPRIT;
	struct runq_switch_outs *outs;
	__u64 next_cgroup_id;

	if (slices) {
		__u32 head = (slices->head + 1) & (RUNQ_SLICES - 1);

		slices->end[head] = now;
		slices->cgroup[head] = prev_cgroup_id;
		slices->head = head;
	}
	if (!prev->pid) /* the idle task leaving is not a switch-out */
		return;
	outs = lookup_or_init(&switch_outs, &prev_cgroup_id, &zero_switch_outs);
	if (!outs) {
		cnt->failed_attribution++;
		return;
	}
	if (!prev_runnable) {
		__sync_fetch_and_add(&outs->voluntary, 1);
		return;
	}
	next_cgroup_id = next->pid ? task_cgroup_id(next) : 1;
	if (next_cgroup_id == prev_cgroup_id)
		__sync_fetch_and_add(&outs->preempted_same, 1);
	else if (is_system_task(next, next_cgroup_id))
		__sync_fetch_and_add(&outs->preempted_system, 1);
	else
		__sync_fetch_and_add(&outs->preempted_other, 1);
}

#define BLAME_SLOTS 4 /* distinct culprits split per wait; the rest is untracked */

static __always_inline void add_blame(struct runq_counters *cnt, __u64 cgroup_id, __u64 culprit,
				      __u64 ns)
{
	struct runq_blame_key key = { .cgroup_id = cgroup_id, .culprit_cgroup_id = culprit };
	struct runq_blame *blame = lookup_or_init(&runq_blame, &key, &zero_blame);

	if (!blame) {
		cnt->failed_attribution++;
		return;
	}
	__sync_fetch_and_add(&blame->count, 1);
	__sync_fetch_and_add(&blame->total_ns, ns);
}

/* Splits a wait of `wait_ns`, of which the last `here_ns` were spent queued on
 * this CPU (up to `now`), over the slices of CPU time that ran meanwhile. */
static __always_inline void blame_wait(struct runq_counters *cnt, __u64 cgroup_id, __u64 wait_ns,
				       __u64 here_ns, __u64 now)
{
	__u64 culprits[BLAME_SLOTS] = {}, parts[BLAME_SLOTS] = {};
	__u64 start = now - here_ns, end = now, untracked = wait_ns - here_ns;
	struct runq_cpu_slices *slices;
	__u32 zero = 0, head;
	int used = 0;

	slices = bpf_map_lookup_elem(&cpu_slices, &zero);
	if (!slices)
		return;
	head = slices->head;
	for (int i = 0; i < RUNQ_SLICES - 1 && end > start; i++) {
		__u32 idx = (head - i) & (RUNQ_SLICES - 1);
		__u64 slice_start = slices->end[(head - i - 1) & (RUNQ_SLICES - 1)];
		__u64 culprit = slices->cgroup[idx];
		__u64 part;
		int slot = -1;

		if (!slice_start) /* ring not filled yet */
			break;
		if (slice_start < start)
			slice_start = start;
		part = end > slice_start ? end - slice_start : 0;
		end = slice_start;
		for (int j = 0; j < BLAME_SLOTS; j++) {
			if (j < used && culprits[j] == culprit) {
				slot = j;
				break;
			}
		}
		if (slot < 0 && used < BLAME_SLOTS) {
			slot = used++;
			culprits[slot] = culprit;
		}
		if (slot >= 0 && slot < BLAME_SLOTS)
			parts[slot] += part;
		else
			untracked += part;
	}
	untracked += end - start; /* older than the ring */
	for (int j = 0; j < BLAME_SLOTS; j++) {
		if (j < used && parts[j])
			add_blame(cnt, cgroup_id, culprits[j], parts[j]);
	}
	if (untracked)
		add_blame(cnt, cgroup_id, RUNQ_UNTRACKED_CULPRIT, untracked);
}

#endif /* __NN_RUNQ_ATTRIBUTION_BPF_H */
