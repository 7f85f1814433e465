/* Every map of the datapath programs (lxc, uplink, host), in one place. All are pinned by
 * name under the daemon's pin root, so the three objects share them and they outlive the
 * daemon: forwarding goes on while it is down or restarting. Sizes are overridable. */
#ifndef BPFNET_LIB_MAPS_H
#define BPFNET_LIB_MAPS_H

#include "common.h"
#include "../shared/datapath.h"

#ifndef EP_MAX
#define EP_MAX 65536
#endif
#ifndef NET_MAX
#define NET_MAX 1024
#endif
#ifndef PORTS_MAX
#define PORTS_MAX 131072
#endif
#ifndef CT_MAX
#define CT_MAX 131072
#endif
#ifndef CT_NEW_MAX
#define CT_NEW_MAX 65536
#endif
#ifndef LOCAL_MAX
#define LOCAL_MAX 256
#endif
#ifndef DROP_EVENTS_BYTES
#define DROP_EVENTS_BYTES (1 << 20)
#endif

/* 0 -> struct dp_config. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dp_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cfg4 SEC(".maps");

/* bridge ifindex -> struct network_info. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NET_MAX);
	__type(key, __u32);
	__type(value, struct network_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} net4 SEC(".maps");

/* sandbox IPv4 address -> struct endpoint_info. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EP_MAX);
	__type(key, __be32);
	__type(value, struct endpoint_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ep4 SEC(".maps");

/* host-side veth ifindex -> struct endpoint_info. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EP_MAX);
	__type(key, __u32);
	__type(value, struct endpoint_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ep_ifx SEC(".maps");

/* host-local IPv4 address -> 1: destinations where published ports apply. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LOCAL_MAX);
	__type(key, __be32);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} local4 SEC(".maps");

/* struct port_key -> struct port_target: published ports, O(1) in their number. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PORTS_MAX);
	__type(key, struct port_key);
	__type(value, struct port_target);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ports4 SEC(".maps");

/* 0 -> struct port_bitmap: the TCP port numbers published (shared/datapath.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct port_bitmap);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tcp_ports SEC(".maps");

/* 0 -> struct port_bitmap: the TCP port numbers published on a specific host address. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct port_bitmap);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tcp_ports_at SEC(".maps");

/* struct port_key (a target) -> struct port_target (its published port): rports4 (shared/datapath.h).
 * Written once per target port, at its first connection, never per publish: unpreallocated, a
 * host without published ports pays nothing for it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PORTS_MAX);
	__type(key, struct port_key);
	__type(value, struct port_target);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rports4 SEC(".maps");

/* TCP port number -> the last time (dp_now) a flow with an entry at a sandbox's hook sending from
 * that port was created or moved between tables (lib/ct.h's ct_port_mark). Written by the programs only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_port_tracked SEC(".maps");

/* TCP port number -> a time from which the daemon's scan of every connection table found no
 * entry at a sandbox's hook sending from that port (0: not known). Written by the daemon only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_port_clean SEC(".maps");

/* struct ct_key4 -> struct ct_entry4: assured flows (both sides spoke, the original side
 * again after a reply). A plain hash, never evicted: when it is full, new flows are refused
 * for a while (ct_full4) and established ones go on. The daemon collects expired entries. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CT_MAX);
	__type(key, struct ct_key4);
	__type(value, struct ct_entry4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct4 SEC(".maps");

/* struct ct_key4 -> struct ct_entry4: flows not assured yet (a SYN, a lone datagram). An LRU:
 * a flood of unanswered packets evicts its own kind and never an assured flow. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CT_NEW_MAX);
	__type(key, struct ct_key4);
	__type(value, struct ct_entry4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct4_new SEC(".maps");

/* sandbox IPv4 address -> how many assured flows (in ct4) are charged to it: the per-sandbox
 * quota (bpf/lib/ct.h). The programs add at promotion; the daemon recounts at every GC. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EP_MAX);
	__type(key, __be32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_owner4 SEC(".maps");

/* 0 -> CLOCK_MONOTONIC ns until which new flows are refused: set when ct4 had no room to
 * assure a flow, so new flows are refused at their first packet rather than half-way. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_full4 SEC(".maps");

/* ---- IPv6: the same tables per family (one lookup per packet whatever the family) ----
 * ct6 and ports6 are preallocated as their IPv4 twins: written per connection and per published
 * port, a BPF_F_NO_PREALLOC hash paid an allocation on every insert and a free on every delete
 * (10,000 ports took 7 ms to write instead of 2, and a flow two allocations and two frees).
 * Preallocating both at CT_MAX/PORTS_MAX costs ~18 ms at load and about 30 MiB of kernel
 * memory. The hashes written once per network or sandbox (net6_more, ep6, ct_owner6) stay
 * unpreallocated: a host without IPv6 pays nothing for them. An older daemon's pins of
 * ct6/ports6 are carried over at load (src/datapath/ebpf/ebpf-datapath.ts, RESHAPED_MAPS).
 * ct6_new is an LRU, which the kernel always preallocates. */

/* 0 -> struct dp_config6. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dp_config6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cfg6 SEC(".maps");

/* bridge ifindex -> struct network_info6. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NET_MAX);
	__type(key, __u32);
	__type(value, struct network_info6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} net6 SEC(".maps");

/* (bridge ifindex, further IPv6 subnet) -> its gateway: networks with several IPv6 subnets. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, NET_MAX * 4);
	__type(key, struct net6_more_key);
	__type(value, struct addr6);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} net6_more SEC(".maps");


/* sandbox IPv6 address -> struct endpoint_info. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EP_MAX);
	__type(key, struct addr6);
	__type(value, struct endpoint_info);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ep6 SEC(".maps");

/* host-local IPv6 address -> 1. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LOCAL_MAX);
	__type(key, struct addr6);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} local6 SEC(".maps");

/* struct port_key6 -> struct port_target6. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PORTS_MAX);
	__type(key, struct port_key6);
	__type(value, struct port_target6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ports6 SEC(".maps");

/* struct port_key6 (a target) -> struct port_target6 (its published port): rports6 (shared/datapath.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PORTS_MAX);
	__type(key, struct port_key6);
	__type(value, struct port_target6);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rports6 SEC(".maps");

/* Assured IPv6 flows (as ct4). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CT_MAX);
	__type(key, struct ct_key6);
	__type(value, struct ct_entry6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct6 SEC(".maps");

/* IPv6 flows not assured yet (LRU, as ct4_new). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CT_NEW_MAX);
	__type(key, struct ct_key6);
	__type(value, struct ct_entry6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct6_new SEC(".maps");

/* sandbox IPv6 address -> assured IPv6 flows (in ct6) charged to it: ct_owner4's quota for ct6. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EP_MAX);
	__type(key, struct addr6);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_owner6 SEC(".maps");

/* 0 -> until when new IPv6 flows are refused (ct6 had no room). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_full6 SEC(".maps");

/* host veth ifindex (0: uplink, 1: host) -> struct ep_stats, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, EP_MAX);
	__type(key, __u32);
	__type(value, struct ep_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats4 SEC(".maps");

/* struct drop_event records for `bpfnet monitor`. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, DROP_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} drop_events SEC(".maps");

static __always_inline struct dp_config *dp_config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&cfg4, &zero);
}

static __always_inline struct dp_config6 *dp_config6(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&cfg6, &zero);
}

#endif
