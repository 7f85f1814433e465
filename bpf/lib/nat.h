/* The shared steps of every hook: find a published port, apply a connection-table entry
 * (rewrite, then deliver where the entry says), and the one exit that counts drops. */
#ifndef BPFNET_LIB_NAT_H
#define BPFNET_LIB_NAT_H

#include "maps.h"
#include "ct.h"
#include "csum.h"
#include "deliver.h"
#include "fib.h"
#include "stats.h"
#include "flowlog.h"

/* The published port a packet to (addr, port) reaches: an address-specific binding first, then
 * "any" (*wildcard says which). */
static __always_inline struct port_target *port_lookup4_at(__be32 addr, __be16 port, __u8 proto, int *wildcard)
{
	struct port_key k = { .addr = addr, .port = port, .proto = proto, .pad = 0 };
	struct port_target *t = bpf_map_lookup_elem(&ports4, &k);
	*wildcard = 0;
	if (t)
		return t;
	*wildcard = 1;
	k.addr = 0;
	return bpf_map_lookup_elem(&ports4, &k);
}

static __always_inline struct port_target *port_lookup4(__be32 addr, __be16 port, __u8 proto)
{
	int wildcard;
	return port_lookup4_at(addr, port, proto, &wildcard);
}

static __always_inline int tc_exit(__u32 stats_slot, int verdict, const struct pkt4 *p)
{
	if (verdict > DROP_BASE)
		return verdict;
	struct drop_ctx d = {
		.saddr = p->t.saddr, .daddr = p->t.daddr, .sport = p->t.sport, .dport = p->t.dport, .proto = p->t.proto, .family = 4,
	};
	__u32 reason = (__u32)(DROP_BASE - verdict);
	drop_record(stats_slot, reason, &d, NULL, NULL);
	return TC_ACT_SHOT;
}

/* Rewrites the packet per entry e and sends it on. `from_ingress`: the hook may use
 * redirect_peer into a sandbox (TC ingress); egress hooks redirect through the veth. */
static __always_inline int ct_apply4(struct __sk_buff *skb, const struct pkt4 *p, const struct ct_entry4 *e, const struct dp_config *cfg, int from_ingress)
{
	if (nat_rewrite4(skb, p, e->saddr, e->daddr, e->sport, e->dport) < 0)
		return DROP(DROP_MALFORMED);
	if (e->deliver == CT_DELIVER_LOCAL)
		return deliver_local(skb, cfg);
	if (e->deliver == CT_DELIVER_ROUTE) {
		int verdict = TC_ACT_SHOT;
		enum fib_verdict v = fib_redirect4(skb, p, e->saddr, e->daddr, &verdict);
		if (v == FIB_TO_BRIDGE)
			return DROP(DROP_ISOLATION);
		if (v == FIB_FAILED)
			return DROP(DROP_FIB_FAILED);
		return verdict;
	}
	/* LOCAL flows are not routed hops; everything else into a sandbox is. */
	return deliver_to_sandbox(skb, p, e->deliver, e->kind != CT_LOCAL, from_ingress);
}

/* What ct_follow4 returns when the packet belongs to no tracked flow (not a TC verdict). */
#define CT_NO_FLOW (-100)

/* Looks up and applies an existing flow at hook; CT_NO_FLOW when there is none. */
static __always_inline int ct_follow4(struct __sk_buff *skb, const struct pkt4 *p, __u8 hook, const struct dp_config *cfg, __u64 now, int from_ingress)
{
	if (!p->has_ports)
		return CT_NO_FLOW;
	struct ct_found f;
	if (!ct_lookup4(p, hook, now, &f))
		return CT_NO_FLOW;
	/* Applied before the flow moves on, as ct_follow6 does: the move may take the entry f.e
	 * points into out of its table (promotion, the last packet). */
	int verdict = ct_apply4(skb, p, f.e, cfg, from_ingress);
	ct_touch4(skb, &f, p, cfg, now);
	flowlog_count4(cfg, p, hook, skb->len);
	return verdict;
}

/* Creates a flow for p and applies it; drops when the table or the ports run out. */
static __always_inline int ct_start4(struct __sk_buff *skb, const struct pkt4 *p, const struct ct_new *n, const struct dp_config *cfg, __u64 now, int from_ingress)
{
	struct ct_entry4 e = {};
	int rc = ct_create4(p, n, cfg, now, &e);
	if (rc == CT_FULL)
		return DROP(DROP_CT_FULL);
	if (rc == CT_NO_PORT)
		return DROP(DROP_NAT_NO_PORT);
	if (rc == CT_INVALID)
		return DROP(DROP_CT_INVALID);
	if (rc == CT_QUOTA)
		return DROP(DROP_CT_QUOTA);
	/* The hook's device: a host veth names its sandbox; the uplink and lo name none. */
	flowlog_new4(cfg, p, n, &e, skb->ifindex, skb->len);
	return ct_apply4(skb, p, &e, cfg, from_ingress);
}

/* 127/8, 0/8: no packet from a device may carry these. */
static __always_inline int is_loopback_or_zero4(__be32 addr)
{
	__u32 a = bpf_ntohl(addr) >> 24;
	return a == 127 || a == 0;
}

/* A source no sender on a device may claim: loopback, 0/8, multicast, class E, broadcast. */
static __always_inline int is_martian_src4(__be32 addr)
{
	return is_loopback_or_zero4(addr) || (bpf_ntohl(addr) & 0xe0000000) == 0xe0000000;
}

#endif
