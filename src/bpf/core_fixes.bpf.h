/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel-version differences, each in one place with the reason it exists.
 * The `___suffix` flavours let CO-RE relocate against whichever layout the
 * running kernel has.
 */
#ifndef __NN_CORE_FIXES_BPF_H
#define __NN_CORE_FIXES_BPF_H

#include <vmlinux.h>
#include <bpf/bpf_core_read.h>

/*
 * Kernel commit 2f064a59a11f ("sched: Change task_struct::state", v5.14) renamed
 * task_struct::state to __state and made it unsigned int.
 */
struct task_struct___o {
	volatile long int state;
} __attribute__((preserve_access_index));

struct task_struct___x {
	unsigned int __state;
} __attribute__((preserve_access_index));

static __always_inline __s64 get_task_state(void *task)
{
	struct task_struct___x *t = task;

	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___o *)task, state);
}

/*
 * This CPU's struct rq. The per-CPU `runqueues` variable is the natural way, but
 * some kernels (this project's reference VM among them) have it in BTF and not
 * in kallsyms, and the verifier then rejects any program that uses it ("ldimm64
 * failed to find the address for kernel symbol"). So the host loads the
 * `runqueues` flavour of a program only when kallsyms lists the symbol, and
 * otherwise the flavour that follows the task's CFS run queue back to its
 * struct rq, which at sched_switch is this CPU's for `next` (this needs
 * CONFIG_FAIR_GROUP_SCHED, which cgroup CPU control is built on).
 * Weak, so that a kernel without it in BTF does not fail the whole object.
 */
extern struct rq runqueues __ksym __weak;

static __always_inline struct rq *this_rq_percpu(void)
{
	return bpf_this_cpu_ptr(&runqueues);
}

static __always_inline struct rq *this_rq_from_task(struct task_struct *next)
{
	if (bpf_core_field_exists(next->se.cfs_rq))
		return next->se.cfs_rq->rq;
	return NULL;
}

#endif /* __NN_CORE_FIXES_BPF_H */
