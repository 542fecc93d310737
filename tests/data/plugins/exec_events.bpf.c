// Test plugin: one ring-buffer record per exec, and exec counts per cgroup.
// `target_cgroup` (0: all) filters by the exec'ing task's cgroup v2 id.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "nn.bpf.h"

enum exec_kind { EXEC_FIRST = 1, EXEC_AGAIN = 2 };

struct exec_event {
	u64 cgroup_id;
	u32 pid;
	char comm[16];
	bool in_target;
	enum exec_kind kind;
	u16 marks[2];
};

NN_RECORD(events, struct exec_event);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u64);
} counts SEC(".maps");

const volatile u64 target_cgroup = 0;

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p)
{
	u64 cgroup_id = bpf_get_current_cgroup_id();
	u64 one = 1, *count;
	struct exec_event *e;

	if (target_cgroup && cgroup_id != target_cgroup)
		return 0;
	count = bpf_map_lookup_elem(&counts, &cgroup_id);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &cgroup_id, &one, BPF_NOEXIST);

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->cgroup_id = cgroup_id;
	e->pid = p->pid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->in_target = target_cgroup != 0;
	e->kind = count ? EXEC_AGAIN : EXEC_FIRST;
	e->marks[0] = 7;
	e->marks[1] = 9;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
