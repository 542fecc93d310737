// Test plugin: maps of each writable kind, written from Python while it runs
// (tests/test_map_writes.py), and a program that reads one of them back.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} limits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, u64);
} per_cpu_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} slots SEC(".maps");

struct flow_key {
	u32 pid;
	char comm[16];
};

struct flow_tally {
	u64 packets;
	u32 drops;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct flow_key);
	__type(value, struct flow_tally);
} flows SEC(".maps");

struct limit_query {
	u32 key;
};

/* The value of limits[key] as the running program sees it; 0xffffffff when
 * there is none. */
SEC("syscall")
int lookup_limit(struct limit_query *query)
{
	u32 key = query->key;
	u64 *limit = bpf_map_lookup_elem(&limits, &key);

	return limit ? (int)*limit : -1;
}

char LICENSE[] SEC("license") = "GPL";
