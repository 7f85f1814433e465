/* The shared steps of every hook: find a published port, apply a connection-table entry
 * (rewrite, then deliver where the entry says), account drops. */
#ifndef BPFNET_LIB_NAT_H
#define BPFNET_LIB_NAT_H

#include "maps.h"
#include "ct.h"
#include "csum.h"
#include "deliver.h"
#include "fib.h"
#include "stats.h"
#include "flowlog.h"

/* The published port a packet to (addr, port) reaches: an address-specific binding first, then "any". */
static __always_inline struct port_target *port_lookup4(__be32 addr, __be16 port, __u8 proto)
{
	struct port_key k = { .addr = addr, .port = port, .proto = proto, .pad = 0 };
	struct port_target *t = bpf_map_lookup_elem(&ports4, &k);
	if (t)
		return t;
	k.addr = 0;
	return bpf_map_lookup_elem(&ports4, &k);
}

/* The prologue of the uplink and host hooks: the configuration, if the datapath is set up,
 * and the packet's IPv4 tuple; NULL for anything that is not an IPv4 packet with ports. */
static __always_inline struct dp_config *configured_ipv4(struct __sk_buff *skb, struct pkt4 *p)
{
	struct dp_config *cfg = dp_config();
	if (!cfg || !(cfg->flags & DP_F_CONFIGURED))
		return NULL;
	struct ethhdr *eth = (void *)(long)skb->data;
	if ((void *)(eth + 1) > (void *)(long)skb->data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	if (pkt4_parse(skb, p) < 0 || !p->has_ports)
		return NULL; /* the stack judges what we cannot parse */
	return cfg;
}

/* Where the twin of an entry lives. */
static __always_inline __u8 ct_twin_hook(__u8 kind, __u8 dir)
{
	switch (kind) {
	case CT_SNAT:
		return dir ? CT_HOOK_CONTAINER : CT_HOOK_UPLINK;
	case CT_DNAT:
		return dir ? CT_HOOK_UPLINK : CT_HOOK_CONTAINER;
	case CT_LOCAL:
		return dir ? CT_HOOK_LOCAL : CT_HOOK_CONTAINER;
	default:
		return CT_HOOK_CONTAINER;
	}
}

static __always_inline int drop_pkt(__u32 ifindex, enum drop_reason reason, const struct pkt4 *p)
{
	struct drop_ctx d = {};
	if (p) {
		d.saddr = p->t.saddr;
		d.daddr = p->t.daddr;
		d.sport = p->t.sport;
		d.dport = p->t.dport;
		d.proto = p->t.proto;
	}
	drop_record(ifindex, reason, &d);
	return TC_ACT_SHOT;
}

/* Rewrites the packet per entry e and sends it on. `from_ingress`: the hook may use
 * redirect_peer into a sandbox (TC ingress); egress hooks redirect through the veth. */
static __always_inline int ct_apply4(struct __sk_buff *skb, const struct pkt4 *p, const struct ct_entry4 *e, const struct dp_config *cfg, __u32 stats_ifindex, int from_ingress)
{
	if (nat_rewrite4(skb, p, e->saddr, e->daddr, e->sport, e->dport) < 0)
		return drop_pkt(stats_ifindex, DROP_MALFORMED, p);
	if (e->deliver == CT_DELIVER_LOCAL)
		return deliver_local(skb, cfg);
	if (e->deliver == CT_DELIVER_ROUTE) {
		int verdict = TC_ACT_SHOT;
		enum fib_verdict v = fib_redirect4(skb, p, e->saddr, e->daddr, &verdict);
		if (v == FIB_TO_BRIDGE)
			return drop_pkt(stats_ifindex, DROP_ISOLATION, p);
		if (v == FIB_FAILED)
			return drop_pkt(stats_ifindex, DROP_FIB_FAILED, p);
		return verdict;
	}
	/* LOCAL flows are not routed hops; everything else into a sandbox is. */
	return deliver_to_sandbox(skb, p, e->deliver, e->kind != CT_LOCAL, from_ingress);
}

/* What ct_follow4 returns when the packet belongs to no tracked flow (not a TC verdict). */
#define CT_NO_FLOW (-100)

/* Looks up and applies an existing flow at hook; CT_NO_FLOW when there is none. */
static __always_inline int ct_follow4(struct __sk_buff *skb, const struct pkt4 *p, __u8 hook, const struct dp_config *cfg, __u64 now, __u32 stats_ifindex, int from_ingress)
{
	if (!p->has_ports)
		return CT_NO_FLOW;
	struct ct_entry4 *found = ct_lookup4(p, hook, now);
	if (!found)
		return CT_NO_FLOW;
	ct_touch4(found, p, cfg, now, ct_twin_hook(found->kind, found->dir));
	flowlog_count4(cfg, p, hook, skb->len);
	struct ct_entry4 e = *found;
	return ct_apply4(skb, p, &e, cfg, stats_ifindex, from_ingress);
}

/* Creates a flow for p and applies it; drops when the table or the ports run out. */
static __always_inline int ct_start4(struct __sk_buff *skb, const struct pkt4 *p, const struct ct_new *n, const struct dp_config *cfg, __u64 now, __u32 stats_ifindex, int from_ingress)
{
	struct ct_entry4 e = {};
	int rc = ct_create4(p, n, cfg, now, &e);
	if (rc == CT_FULL)
		return drop_pkt(stats_ifindex, DROP_CT_FULL, p);
	if (rc == CT_NO_PORT)
		return drop_pkt(stats_ifindex, DROP_NAT_NO_PORT, p);
	flowlog_new4(cfg, p, n, &e, stats_ifindex, skb->len);
	return ct_apply4(skb, p, &e, cfg, stats_ifindex, from_ingress);
}

#endif
