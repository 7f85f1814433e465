/* Kernel/user ABI of the datapath programs (lxc, uplink, host): map keys and values and
 * the configuration record. Mirrored once in src/datapath/abi.ts; test/unit/abi.test.ts
 * checks both layouts agree. Addresses and ports are in network byte order. */
#ifndef BPFNET_SHARED_DATAPATH_H
#define BPFNET_SHARED_DATAPATH_H

#include "drop_reasons.h"

/* Value of cfg4[0]: set by the daemon at start, read on every packet. */
struct dp_config {
	__be32 uplink_addr;     /* the host's address on the uplink: masquerade source */
	__u32 uplink_ifindex;
	__u32 lo_ifindex;
	__u16 nat_lo_min;       /* masquerade source ports come from [lo_min, lo_max] and [hi_min, hi_max], */
	__u16 nat_lo_max;       /* which leave out the host's own ephemeral range */
	__u16 nat_hi_min;
	__u16 nat_hi_max;
	__u32 tcp_syn_timeout;  /* seconds */
	__u32 tcp_established_timeout;
	__u32 tcp_fin_timeout;
	__u32 tcp_closed_timeout;
	__u32 udp_timeout;
	__u32 udp_stream_timeout;
	__u32 icmp_timeout;
	__u32 flags;            /* DP_F_* */
};

#define DP_F_CONFIGURED (1U << 0)
#define DP_F_DROP_EVENTS (1U << 1)
#define DP_F_UPLINK_VETH (1U << 2) /* the uplink is a veth: packets for it can enter its peer directly */

/* An IPv6 address as four network-order words (compared and hashed as 16 bytes). */
struct addr6 {
	__be32 w[4];
};

/* Value of cfg6[0]: the IPv6 half of the configuration (cfg4 stays as it was). */
struct dp_config6 {
	struct addr6 uplink_addr; /* NAT66 source; all zero: masquerade6 networks have no way out */
	__u32 flags;              /* DP6_F_* */
	__u32 pad;
};

#define DP6_F_CONFIGURED (1U << 0)

/* net6: bridge ifindex -> the network's IPv6 side (absent: the network has no IPv6). */
struct network_info6 {
	struct addr6 subnet;
	struct addr6 mask;
	struct addr6 gateway;
	__u8 bridge_mac[6];
	__u16 flags;            /* NET_F_*, NET_F_MASQUERADE meaning NAT66 */
};

/* net4: bridge ifindex -> network. */
struct network_info {
	__be32 subnet;
	__be32 mask;
	__be32 gateway;
	__u8 bridge_mac[6];
	__u16 flags;            /* NET_F_* */
};

#define NET_F_ICC (1U << 0)
#define NET_F_INTERNAL (1U << 1)
#define NET_F_MASQUERADE (1U << 2)
/* net6 only: the network has further IPv6 subnets, in net6_more. */
#define NET_F_MORE_SUBNETS6 (1U << 3)

/* net6_more (LPM trie): (bridge ifindex, a further IPv6 subnet of that network) -> its gateway.
 * prefixlen counts net_ifindex's 32 bits and the subnet's. */
struct net6_more_key {
	__u32 prefixlen;
	__u32 net_ifindex;
	struct addr6 addr;
};

/* ep4: sandbox IPv4 address -> endpoint; ep6: sandbox IPv6 address -> endpoint;
 * ep_ifx: host-side veth ifindex -> endpoint. */
struct endpoint_info {
	__be32 addr;            /* 0: no IPv4 */
	__u32 ifindex;          /* host side of the veth */
	__u32 net_ifindex;      /* the network (its bridge) */
	__u8 mac[6];
	__u16 flags;            /* EP_F_* */
	struct addr6 addr6;     /* meaningful with EP_F_IPV6 */
};

#define EP_F_IPV6 (1U << 0)

/* ports4: a published port. addr 0 = every local address. */
struct port_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct port_target {
	__be32 addr;            /* the sandbox's address */
	__be16 port;
	__u16 flags;            /* PORT_F_* */
};

/* The port is TCP and the only way to its target (sandbox address, port): its connections from
 * the uplink need no connection-table entry (bpf/lib/stateless.h). Set by the daemon. */
#define PORT_F_STATELESS (1U << 0)

/* tcp_ports[0]: bit n of the 65,536 is set while some TCP port n is published (any address,
 * either family). Kept by the daemon; the uplink tests it before anything else (lib/stateless.h).
 * tcp_ports_at[0], the same for ports published on a specific host address: where its bit is
 * clear, a stateless port can only be the one on every address, and the uplink looks for that
 * alone (one hash lookup per segment instead of a miss and a hit). */
struct port_bitmap {
	__u64 w[1024];
};

/* rports4: the way back of a stateless published port. Key: the target (sandbox address, its
 * port, protocol) as a struct port_key; value: the published port as a struct port_target (addr
 * 0: a port on every local address, answered from the host's uplink address). Filled by the
 * uplink program at a connection's SYN; a reply checks it against ports4. The daemon removes the
 * entries of addresses no endpoint holds.
 * ct_port_tracked and ct_port_clean: arrays of 65,536 __u64 by TCP port number (lib/ct.h). The
 * programs write the first (when they last made or moved a flow a sandbox sends from that
 * port), the daemon the second (from when its scan of the connection tables found none, for
 * the ports in rports4 and rports6); clean > tracked lets a reply skip the connection table. */

/* ports6: a published port on IPv6. addr :: = every local IPv6 address. */
struct port_key6 {
	struct addr6 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct port_target6 {
	struct addr6 addr;      /* the sandbox's IPv6 address */
	__be16 port;
	__u16 flags;            /* PORT_F_* */
};

/* rports6: rports4's IPv6 twin, struct port_key6 -> struct port_target6 (addr ::: a port on
 * every local IPv6 address, answered from cfg6's uplink address). */

/* Where a connection-table key was seen: the same 5-tuple means different things at each hook. */
enum ct_hook {
	CT_HOOK_CONTAINER = 1,  /* sandbox -> host veth ingress */
	CT_HOOK_UPLINK = 2,     /* outside -> uplink ingress */
	CT_HOOK_LOCAL = 3,      /* host process -> lo egress */
};

struct ct_key4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;           /* ICMP echo: the identifier */
	__be16 dport;           /* ICMP echo: 0 */
	__u8 proto;
	__u8 hook;              /* enum ct_hook */
	__u16 pad;
};

/* How a packet matching a key is rewritten and where it goes. Each flow has two entries
 * (one per direction), created together: the twin is the key of the rewritten reply. */
struct ct_entry4 {
	__be32 saddr;           /* rewritten tuple */
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u32 deliver;          /* host veth ifindex to redirect into, or a CT_DELIVER_* */
	union {
		struct {
			__u8 kind;      /* enum ct_kind */
			__u8 state;     /* CT_S_* bits seen so far (shared by both twins) */
			__u8 dir;       /* 0: the flow's original direction, 1: reply */
			__u8 fin_acked; /* CT_FIN_ACKED_* bits: whose FIN the other side acknowledged (both twins) */
		};
		__u32 bits;             /* the four above as one word: new state bits are set by atomic OR */
	};
	__u32 fin_ack;          /* the acknowledgement number, in this entry's direction, that covers the other direction's FIN */
	__u64 expires;          /* CLOCK_MONOTONIC ns */
};

/* ct6 / ct6_new: the IPv6 connection table, same design as ct4 (its own tables, so a flood
 * of one family cannot take the other's room and IPv4 keys stay 16 bytes). */
struct ct_key6 {
	struct addr6 saddr;
	struct addr6 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 hook;
	__u16 pad;
};

struct ct_entry6 {
	struct addr6 saddr;
	struct addr6 daddr;
	__be16 sport;
	__be16 dport;
	__u32 deliver;
	union {
		struct {
			__u8 kind;
			__u8 state;
			__u8 dir;
			__u8 fin_acked;
		};
		__u32 bits;
	};
	__u32 fin_ack;
	__u64 expires;
};

#define CT_DELIVER_ROUTE 0      /* route it (FIB) out of the host */
#define CT_DELIVER_LOCAL 1      /* hand it to the host stack through lo */

enum ct_kind {
	CT_SNAT = 1,            /* masquerade: sandbox -> outside */
	CT_DNAT = 2,            /* published port: outside -> sandbox */
	CT_HAIRPIN = 3,         /* published port from a sandbox through a host address */
	CT_LOCAL = 4,           /* published port from a process on the host */
	CT_ROUTED = 5,          /* outbound of a network without masquerade: routed as is, replies admitted */
};

#define CT_S_SYN (1U << 0)
#define CT_S_SYNACK (1U << 1)
#define CT_S_FIN_ORIG (1U << 2)
#define CT_S_FIN_REPLY (1U << 3)
#define CT_S_RST (1U << 4)
#define CT_S_REPLIED (1U << 5)
#define CT_S_ASSURED (1U << 6)  /* the original side spoke again after a reply: a real conversation */
/* ct_entry fin_acked: a FIN whose acknowledgement passed; both set, the flow is over. */
#define CT_FIN_ACKED_ORIG (1U << 0)
#define CT_FIN_ACKED_REPLY (1U << 1)

/* stats4: host veth ifindex (0: the uplink) -> counters (per CPU). */
struct ep_stats {
	__u64 tx_packets;       /* from the sandbox */
	__u64 tx_bytes;
	__u64 rx_packets;       /* into the sandbox */
	__u64 rx_bytes;
	__u64 drops[DROP_REASONS];
};

/* One record in drop_events (ring buffer). */
struct drop_event {
	__u64 ts;               /* CLOCK_MONOTONIC ns */
	__u32 ifindex;
	__u8 reason;            /* enum drop_reason */
	__u8 proto;
	__be16 sport;
	__be32 saddr;           /* family 4 */
	__be32 daddr;
	__be16 dport;
	__u8 family;            /* 4 or 6 (the addresses that are set); 0: not parsed as IP */
	__u8 pad;
	struct addr6 saddr6;    /* family 6 */
	struct addr6 daddr6;
	__u32 pad2;
};

/* ---- the opt-in flow log (bpf/lib/flowlog.h) ---- */

/* cfg4 flags bit: someone listens to the flow log; without it the hooks write nothing. */
#define DP_F_FLOW_EVENTS (1U << 3)

#define FLOW_EV_NEW 1

/* One record in flow_events (ring buffer): a tracked flow started. */
struct flow_event {
	__u64 ts;               /* CLOCK_MONOTONIC ns */
	__u32 ifindex;          /* stats slot of the hook that saw it (host veth, or STATS_UPLINK/HOST) */
	__u32 deliver;          /* where the original direction goes (host veth ifindex or CT_DELIVER_*) */
	struct ct_key4 orig;    /* the packet's tuple, with the hook of the original direction */
	__be32 nat_saddr;       /* the tuple after rewriting */
	__be32 nat_daddr;
	__be16 nat_sport;
	__be16 nat_dport;
	__u8 type;              /* FLOW_EV_* */
	__u8 kind;              /* enum ct_kind */
	__u8 reply_hook;        /* with the rewritten tuple turned around: the reply's ct4 key */
	__u8 pad;
};

/* One record in flow_events6: flow_event for an IPv6 flow. */
struct flow_event6 {
	__u64 ts;
	__u32 ifindex;
	__u32 deliver;
	struct ct_key6 orig;
	struct addr6 nat_saddr;
	struct addr6 nat_daddr;
	__be16 nat_sport;
	__be16 nat_dport;
	__u8 type;
	__u8 kind;
	__u8 reply_hook;        /* with the rewritten tuple turned around: the reply's ct6 key */
	__u8 pad;
};

/* flow_stats4: ct4 key (one direction of a flow) -> what passed that way while someone listened
 * (flow_stats6: the same per ct6 key). */
struct flow_counts {
	__u64 packets;
	__u64 bytes;
};

#endif
