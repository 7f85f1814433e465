/* ICMP errors about a translated flow (masquerade, published port, hairpin): the error names the
 * packet as it was on the wire here, so it is found by that embedded tuple turned around, then
 * rewritten as the flow's own packets are — outer destination (and source, when the error came
 * from the flow's peer), embedded source and destination with their ports — with the outer,
 * embedded IPv4 and ICMP checksums kept right, and delivered where the flow goes. That is how a
 * sandbox behind NAT learns "fragmentation needed" / "packet too big" (PMTU) and "port
 * unreachable" for its own flows; a stateless published port's flows (lib/stateless.h) are
 * found by their port instead. The embedded L4 checksum is left as it was (no receiver
 * checks it: the packet is truncated). The flow's state is not advanced. */
#ifndef BPFNET_LIB_ICMP_ERR_H
#define BPFNET_LIB_ICMP_ERR_H

#include "nat6.h"
#include "stateless.h"

#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11

/* The embedded IPv4 header (options refused) and the first 8 bytes of its L4 header. */
struct icmp_inner4 {
	struct iphdr ip;
	__be16 sport;
	__be16 dport;
	__u32 rest;
};

struct icmp_inner6 {
	struct ipv6hdr ip;
	__be16 sport;
	__be16 dport;
	__u32 rest;
};

/* Errors that speak about one packet of a flow (not echo, not neighbour discovery). */
static __always_inline int icmp4_is_error(const struct pkt4 *p)
{
	return p->t.proto == IPPROTO_ICMP && !p->frag && (p->icmp_type == ICMP_DEST_UNREACH || p->icmp_type == ICMP_TIME_EXCEEDED);
}

static __always_inline int icmp6_is_error(const struct pkt6 *p)
{
	return p->t.proto == IPPROTO_ICMPV6 && p->l4 && !p->frag && p->icmp_type >= ICMP6_DST_UNREACH && p->icmp_type <= ICMP6_TIME_EXCEEDED;
}

/* A live entry for key k in ct4 or ct4_new (not touched: an error does not advance a flow). */
static __always_inline struct ct_entry4 *ct_peek4(const struct ct_key4 *k, __u64 now)
{
	struct ct_entry4 *e = bpf_map_lookup_elem(&ct4, k);
	if (!e || e->expires < now)
		e = bpf_map_lookup_elem(&ct4_new, k);
	return e && e->expires >= now ? e : NULL;
}

static __always_inline struct ct_entry6 *ct_peek6(const struct ct_key6 *k, __u64 now)
{
	struct ct_entry6 *e = bpf_map_lookup_elem(&ct6, k);
	if (!e || e->expires < now)
		e = bpf_map_lookup_elem(&ct6_new, k);
	return e && e->expires >= now ? e : NULL;
}

/* An ICMPv4 error at hook: translated and delivered, CT_NO_FLOW when it names no flow of ours.
 * from_sandbox: the sender is a sandbox, which may only speak about packets sent to itself. */
static __always_inline int icmp_error4(struct __sk_buff *skb, const struct pkt4 *p, __u8 hook, const struct dp_config *cfg, __u64 now, int from_ingress, int from_sandbox)
{
	__u32 in_off = p->l4_off + 8;
	struct icmp_inner4 in;
	if (bpf_skb_load_bytes(skb, in_off, &in, sizeof(in)) < 0)
		return CT_NO_FLOW;
	if (in.ip.ihl != 5 || (in.ip.protocol != IPPROTO_TCP && in.ip.protocol != IPPROTO_UDP))
		return CT_NO_FLOW;
	if (from_sandbox && in.ip.daddr != p->t.saddr)
		return CT_NO_FLOW;
	struct ct_key4 k = { .saddr = in.ip.daddr, .daddr = in.ip.saddr, .sport = in.dport, .dport = in.sport, .proto = in.ip.protocol, .hook = hook, .pad = 0 };
	struct ct_entry4 x = {};
	struct ct_entry4 *e = ct_peek4(&k, now);
	if (e)
		x = *e;
	else if (hook != CT_HOOK_UPLINK || !stateless_icmp_entry4(cfg, &k, &x))
		return CT_NO_FLOW;
	/* The embedded packet as the flow's other side sent it. */
	struct icmp_inner4 out = in;
	out.ip.saddr = x.daddr;
	out.ip.daddr = x.saddr;
	out.sport = x.dport;
	out.dport = x.sport;
	out.ip.check = 0;
	out.ip.check = csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&out.ip, sizeof(out.ip), 0));
	__s64 diff = bpf_csum_diff((__be32 *)&in, sizeof(in), (__be32 *)&out, sizeof(out), 0);
	if (diff < 0 || bpf_l4_csum_replace(skb, p->l4_off + 2, 0, (__u32)diff, 0) < 0)
		return DROP(DROP_MALFORMED);
	if (bpf_skb_store_bytes(skb, in_off, &out, sizeof(out), 0) < 0)
		return DROP(DROP_MALFORMED);
	__be32 osrc = p->t.saddr == k.saddr ? x.saddr : p->t.saddr;
	if (rewrite_addr4(skb, p, IP_SRC_OFF, p->t.saddr, osrc) < 0 || rewrite_addr4(skb, p, IP_DST_OFF, p->t.daddr, x.daddr) < 0)
		return DROP(DROP_MALFORMED);
	if (x.deliver == CT_DELIVER_LOCAL)
		return deliver_local(skb, cfg);
	if (x.deliver == CT_DELIVER_ROUTE) {
		int verdict = TC_ACT_SHOT;
		enum fib_verdict v = fib_redirect4(skb, p, osrc, x.daddr, &verdict);
		if (v == FIB_TO_BRIDGE)
			return DROP(DROP_ISOLATION);
		if (v == FIB_FAILED)
			return DROP(DROP_FIB_FAILED);
		return verdict;
	}
	return deliver_to_sandbox(skb, p, x.deliver, 1, from_ingress);
}

/* The same for ICMPv6 (destination unreachable, packet too big, time exceeded). */
BPFNET_NOINLINE int icmp_error6(struct __sk_buff *skb, const struct pkt6 *p, __u8 hook, const struct dp_config *cfg, __u64 now, int from_ingress, int from_sandbox)
{
	__u32 in_off = p->l4_off + 8;
	struct icmp_inner6 in;
	if (bpf_skb_load_bytes(skb, in_off, &in, sizeof(in)) < 0)
		return CT_NO_FLOW;
	if (in.ip.nexthdr != IPPROTO_TCP && in.ip.nexthdr != IPPROTO_UDP)
		return CT_NO_FLOW;
	struct ct_key6 k = { .sport = in.dport, .dport = in.sport, .proto = in.ip.nexthdr, .hook = hook, .pad = 0 };
	__builtin_memcpy(&k.saddr, &in.ip.daddr, 16);
	__builtin_memcpy(&k.daddr, &in.ip.saddr, 16);
	if (from_sandbox && !addr6_eq(&k.saddr, &p->t.saddr))
		return CT_NO_FLOW;
	/* Embedded addresses and ports as the flow's other side sent them (the flow's entry turned
	 * around: s and sport are where it goes, d and dport where it came from); IPv6 has no header
	 * checksum. Taken apart from the entry here: a copy of it would not fit the stack. */
	struct {
		struct addr6 s, d;
		__be16 sport, dport;
	} now_;
	__u32 deliver;
	struct ct_entry6 *x = ct_peek6(&k, now);
	if (x) {
		now_.s = x->daddr;
		now_.d = x->saddr;
		now_.sport = x->dport;
		now_.dport = x->sport;
		deliver = x->deliver;
	} else if (hook == CT_HOOK_UPLINK && stateless_icmp_target6(&k, &now_.s, &now_.sport, &deliver)) {
		now_.d = k.saddr;
		now_.dport = k.sport;
	} else {
		return CT_NO_FLOW;
	}
	__s64 diff = bpf_csum_diff((__be32 *)&in.ip.saddr, 32, (__be32 *)&now_, 32, 0);
	__u32 ports_old = ((__u32)in.sport) | ((__u32)in.dport << 16);
	__u32 ports_new = ((__u32)now_.sport) | ((__u32)now_.dport << 16);
	__s64 diff2 = bpf_csum_diff(&ports_old, 4, &ports_new, 4, 0);
	if (diff < 0 || diff2 < 0 || bpf_l4_csum_replace(skb, p->l4_off + 2, 0, (__u32)diff, 0) < 0 ||
	    bpf_l4_csum_replace(skb, p->l4_off + 2, 0, (__u32)diff2, 0) < 0)
		return DROP(DROP_MALFORMED);
	if (bpf_skb_store_bytes(skb, in_off + 8, &now_, 32, 0) < 0 || bpf_skb_store_bytes(skb, in_off + IP6_HLEN, &ports_new, 4, 0) < 0)
		return DROP(DROP_MALFORMED);
	struct addr6 osrc = addr6_eq(&p->t.saddr, &k.saddr) ? now_.d : p->t.saddr;
	struct addr6 odst = now_.s;
	if (rewrite_addr6(skb, p, IP6_SRC_OFF, &p->t.saddr, &osrc) < 0 || rewrite_addr6(skb, p, IP6_DST_OFF, &p->t.daddr, &odst) < 0)
		return DROP(DROP_MALFORMED);
	if (deliver == CT_DELIVER_LOCAL)
		return deliver_local(skb, cfg);
	if (deliver == CT_DELIVER_ROUTE) {
		int verdict = TC_ACT_SHOT;
		enum fib_verdict v = fib_redirect6(skb, p, &osrc, &odst, &verdict);
		if (v == FIB_TO_BRIDGE)
			return DROP(DROP_ISOLATION);
		if (v == FIB_FAILED)
			return DROP(DROP_FIB_FAILED);
		return verdict;
	}
	return deliver_to_sandbox6(skb, p, deliver, 1, from_ingress);
}

#endif
