/* The IPv6 halves of the shared steps (nat.h, deliver.h, fib.h): find a published port in
 * ports6 (one hash lookup, as ports4), apply a ct6 entry, deliver into a sandbox, route out. */
#ifndef BPFNET_LIB_NAT6_H
#define BPFNET_LIB_NAT6_H

#include "nat.h"
#include "ct6.h"
#include "csum6.h"
#include "flowlog6.h"

#define AF_INET6 10

/* The published port a packet to (addr, port) reaches: an address-specific binding first, then
 * "any" (*wildcard says which). */
static __always_inline struct port_target6 *port_lookup6_at(const struct addr6 *addr, __be16 port, __u8 proto, int *wildcard)
{
	struct port_key6 k = { .addr = *addr, .port = port, .proto = proto, .pad = 0 };
	struct port_target6 *t = bpf_map_lookup_elem(&ports6, &k);
	*wildcard = 0;
	if (t)
		return t;
	*wildcard = 1;
	__builtin_memset(&k.addr, 0, sizeof(k.addr));
	return bpf_map_lookup_elem(&ports6, &k);
}

static __always_inline struct port_target6 *port_lookup6(const struct addr6 *addr, __be16 port, __u8 proto)
{
	int wildcard;
	return port_lookup6_at(addr, port, proto, &wildcard);
}

/* The one exit of a hook that handles both families: counts a drop with what was parsed
 * (is6: the packet went to the IPv6 handler; p and p6 may share storage). */
static __always_inline int tc_exit_dual(__u32 stats_slot, int verdict, const struct pkt4 *p, const struct pkt6 *p6, int is6)
{
	if (verdict > DROP_BASE)
		return verdict;
	struct drop_ctx d = {};
	__u32 reason = (__u32)(DROP_BASE - verdict);
	if (is6) {
		d.sport = p6->t.sport;
		d.dport = p6->t.dport;
		d.proto = p6->t.proto;
		d.family = 6;
		drop_record(stats_slot, reason, &d, &p6->t.saddr, &p6->t.daddr);
		return TC_ACT_SHOT;
	}
	d.saddr = p->t.saddr;
	d.daddr = p->t.daddr;
	d.sport = p->t.sport;
	d.dport = p->t.dport;
	d.proto = p->t.proto;
	d.family = 4;
	drop_record(stats_slot, reason, &d, NULL, NULL);
	return TC_ACT_SHOT;
}

/* deliver_to_endpoint (deliver.h) for IPv6. */
static __always_inline int deliver_to_endpoint6(struct __sk_buff *skb, const struct pkt6 *p, const struct endpoint_info *ep, int routed, int peer)
{
	__u32 ifindex = ep->ifindex;
	struct network_info6 *net = bpf_map_lookup_elem(&net6, &ep->net_ifindex);
	if (!net)
		return DROP(DROP_UNKNOWN_ENDPOINT);
	if (routed && hop_decrement6(skb, p) < 0)
		return DROP(DROP_MALFORMED);
	if (set_macs(skb, net->bridge_mac, ep->mac) < 0)
		return DROP(DROP_MALFORMED);
	stats_rx(ifindex, skb->len);
	return peer ? bpf_redirect_peer(ifindex, 0) : bpf_redirect(ifindex, 0);
}

static __always_inline int deliver_to_sandbox6(struct __sk_buff *skb, const struct pkt6 *p, __u32 ifindex, int routed, int peer)
{
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep_ifx, &ifindex);
	if (!ep)
		return DROP(DROP_UNKNOWN_ENDPOINT);
	return deliver_to_endpoint6(skb, p, ep, routed, peer);
}

/* An IPv6 next hop in the cache (fib.h): the same, keyed by the IPv6 lookup's inputs. */
struct fib_hop6 {
	struct addr6 saddr;
	struct addr6 daddr;
	__u32 iif;
	__u32 out;
	__u64 until;
	__u8 smac[ETH_ALEN];
	__u8 dmac[ETH_ALEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FIB_HOP_SLOTS);
	__type(key, __u32);
	__type(value, struct fib_hop6);
} fib_hops6 SEC(".maps");

/* As fib_hop4_get. */
static __always_inline struct fib_hop6 *fib_hop6_get(const struct addr6 *saddr, const struct addr6 *daddr, __u32 iif, __u64 now, int *fresh)
{
	__u32 slot = fib_hop_slot(saddr->w[3] ^ saddr->w[1], daddr->w[3] ^ daddr->w[1] ^ daddr->w[2], iif);
	struct fib_hop6 *hop = bpf_map_lookup_elem(&fib_hops6, &slot);
	*fresh = hop && hop->until > now && hop->iif == iif && addr6_eq(&hop->daddr, daddr) && addr6_eq(&hop->saddr, saddr);
	return hop;
}

/* As fib_hop4_keep. */
static __always_inline void fib_hop6_keep(struct fib_hop6 *hop, const struct addr6 *saddr, const struct addr6 *daddr, __u32 iif, __u64 now, const struct bpf_fib_lookup *fib)
{
	if (!hop)
		return;
	hop->saddr = *saddr;
	hop->daddr = *daddr;
	hop->iif = iif;
	hop->out = fib->ifindex;
	hop->until = now + FIB_HOP_TTL_NS;
	__builtin_memcpy(hop->smac, fib->smac, ETH_ALEN);
	__builtin_memcpy(hop->dmac, fib->dmac, ETH_ALEN);
}

/* Routes an IPv6 packet (already rewritten) out of the host, as fib_redirect4 (next hops cached alike). */
static __always_inline enum fib_verdict fib_redirect6(struct __sk_buff *skb, const struct pkt6 *p, const struct addr6 *saddr, const struct addr6 *daddr, int *verdict_out)
{
	__u64 now = dp_now();
	int fresh;
	struct fib_hop6 *hop = fib_hop6_get(saddr, daddr, skb->ifindex, now, &fresh);
	if (fresh) {
		if (hop_decrement6(skb, p) < 0 || fib_send(skb, hop->out, hop->smac, hop->dmac, verdict_out) < 0)
			return FIB_FAILED;
		return FIB_REDIRECTED;
	}
	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET6;
	fib.l4_protocol = p->t.proto;
	__builtin_memcpy(fib.ipv6_src, saddr, 16);
	__builtin_memcpy(fib.ipv6_dst, daddr, 16);
	fib.tot_len = 0;
	fib.ifindex = skb->ifindex;
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return FIB_FAILED;
	__u32 out = fib.ifindex;
	if (bpf_map_lookup_elem(&net6, &out) || bpf_map_lookup_elem(&net4, &out))
		return FIB_TO_BRIDGE;
	if (hop_decrement6(skb, p) < 0)
		return FIB_FAILED;
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		*verdict_out = bpf_redirect_neigh(out, NULL, 0, 0);
		return FIB_REDIRECTED;
	}
	fib_hop6_keep(hop, saddr, daddr, skb->ifindex, now, &fib);
	if (fib_send(skb, out, fib.smac, fib.dmac, verdict_out) < 0)
		return FIB_FAILED;
	return FIB_REDIRECTED;
}

static __always_inline int ct_apply6(struct __sk_buff *skb, const struct pkt6 *p, const struct ct_entry6 *e, const struct dp_config *cfg, int from_ingress)
{
	if (nat_rewrite6(skb, p, &e->saddr, &e->daddr, e->sport, e->dport) < 0)
		return DROP(DROP_MALFORMED);
	if (e->deliver == CT_DELIVER_LOCAL)
		return deliver_local(skb, cfg);
	if (e->deliver == CT_DELIVER_ROUTE) {
		int verdict = TC_ACT_SHOT;
		enum fib_verdict v = fib_redirect6(skb, p, &e->saddr, &e->daddr, &verdict);
		if (v == FIB_TO_BRIDGE)
			return DROP(DROP_ISOLATION);
		if (v == FIB_FAILED)
			return DROP(DROP_FIB_FAILED);
		return verdict;
	}
	return deliver_to_sandbox6(skb, p, e->deliver, e->kind != CT_LOCAL, from_ingress);
}

BPFNET_NOINLINE int ct_follow6(struct __sk_buff *skb, const struct pkt6 *p, __u8 hook, const struct dp_config *cfg, __u64 now, int from_ingress)
{
	if (!p->has_ports)
		return CT_NO_FLOW;
	struct ct6_found f;
	if (!ct_lookup6(p, hook, now, &f))
		return CT_NO_FLOW;
	/* Applied before the flow moves on: the move may take the entry f.e points into out of its
	 * table (promotion, the last packet), and a copy would not fit the stack. */
	int verdict = ct_apply6(skb, p, f.e, cfg, from_ingress);
	ct_touch6(skb, &f, p, cfg, now);
	flowlog_count6(cfg, &f.key, skb->len);
	return verdict;
}

BPFNET_NOINLINE int ct_start6(struct __sk_buff *skb, const struct pkt6 *p, const struct ct6_new_flow *n, const struct dp_config *cfg, __u64 now, int from_ingress)
{
	struct ct_entry6 e = {};
	int rc = ct_create6(p, n, cfg, now, &e);
	if (rc == CT_FULL)
		return DROP(DROP_CT_FULL);
	if (rc == CT_NO_PORT)
		return DROP(DROP_NAT_NO_PORT);
	if (rc == CT_INVALID)
		return DROP(DROP_CT_INVALID);
	if (rc == CT_QUOTA)
		return DROP(DROP_CT_QUOTA);
	flowlog_new6(cfg, p, n, &e, skb->ifindex, skb->len);
	return ct_apply6(skb, p, &e, cfg, from_ingress);
}

#endif
