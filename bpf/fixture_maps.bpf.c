/* Test fixture: one map of each kind the addon must handle, and a program that
 * touches them so the object is loadable. Used by test/kernel only. */
#include "lib/common.h"

struct fixture_key {
	__u32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
	__u64 cookie;
};

struct fixture_value {
	__u64 hits;
};

/* struct fixture_key -> struct fixture_value (small, to test "map is full"). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, struct fixture_key);
	__type(value, struct fixture_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fixture_hash SEC(".maps");

/* __u32 -> struct fixture_value, least recently used evicted. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct fixture_value);
} fixture_lru SEC(".maps");

/* __u32 -> struct fixture_value per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct fixture_value);
} fixture_percpu SEC(".maps");

/* __u32 index -> __u64. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} fixture_array SEC(".maps");

/* Returns its configured verdict and counts calls in fixture_array[0]. */
const volatile __u32 fixture_verdict = 2; /* XDP_PASS */

SEC("xdp")
int fixture_xdp(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&fixture_array, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return fixture_verdict;
}

char LICENSE[] SEC("license") = "GPL";
