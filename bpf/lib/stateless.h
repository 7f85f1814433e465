/* Stateless published ports (TCP, IPv4 and IPv6 alike): a connection from the uplink to a port
 * that is the only way to its target is translated and delivered with no connection-table entry,
 * and its replies are translated back by the target alone. The connection table's insert, promotion and removal
 * were most of what a short connection cost the datapath (6.7 µs of BPF per connection against
 * 1.2 µs for a fixed translation), and a SYN flood to such a port now touches no table at all.
 *
 * When it applies (everything else stays stateful, as before):
 *  - the daemon marked the port PORT_F_STATELESS: TCP, and no other published port leads to the
 *    same (sandbox address, port), so the way back names one published port;
 *  - the packet is addressed to the port's own address, or to the host's uplink address for a
 *    port on every local address (the way back then answers from that address);
 *  - the flow log is off when the connection opens (it reports flows from the connection
 *    table; connections already stateless when it is turned on go on, unreported);
 *  - the connection table has no flow for the packet (flows started before the port became
 *    stateless go on as they were); a reply asks it first only while a tracked flow may send
 *    from its port (ct.h's ct_port_untracked).
 * The way back is rports4/rports6 (shared/datapath.h): the uplink writes it at each SYN when it
 * differs, and a reply uses it only while the port it names is still published to that target, so an
 * unpublished port ends its connections in both directions at once, as it does on a restart of
 * the sandbox. A reply is any TCP segment but a bare SYN: a sandbox that opens a connection
 * from its published port's target port is masqueraded and tracked as every other. */
#ifndef BPFNET_LIB_STATELESS_H
#define BPFNET_LIB_STATELESS_H

#include "nat6.h"

/* A segment that opens a connection (SYN without ACK). */
static __always_inline int tcp_bare_syn(__u8 tcp_flags)
{
	return (tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
}

/* While the flow log is on, new connections are tracked (it reports them from the connection
 * table); those already stateless go on as they are. */
static __always_inline int stateless_opens_tracked(const struct dp_config *cfg, __u8 tcp_flags)
{
	return (cfg->flags & DP_F_FLOW_EVENTS) && tcp_bare_syn(tcp_flags);
}

/* Whether bit `dport` is set in a struct port_bitmap map's entry 0 (tcp_ports, tcp_ports_at). */
static __always_inline int port_bit(void *bitmap_map, __be16 dport)
{
	__u32 zero = 0;
	struct port_bitmap *b = bpf_map_lookup_elem(bitmap_map, &zero);
	__u16 port = bpf_ntohs(dport);
	return b && (b->w[port >> 6] >> (port & 63)) & 1;
}

/* The TCP port (daddr, dport) names in ports4, as port_lookup4_at finds it; the one on daddr
 * itself is looked for only when some TCP port with this number is published on an address of
 * its own (tcp_ports_at), else the one on every address alone. */
static __always_inline struct port_target *tcp_port_lookup4(__be32 daddr, __be16 dport, int *wildcard)
{
	if (port_bit(&tcp_ports_at, dport))
		return port_lookup4_at(daddr, dport, IPPROTO_TCP, wildcard);
	struct port_key k = { .addr = 0, .port = dport, .proto = IPPROTO_TCP, .pad = 0 };
	*wildcard = 1;
	return bpf_map_lookup_elem(&ports4, &k);
}

/* The stateless published port a TCP segment to (daddr, dport) reaches, *wildcard saying under
 * which key it was found; NULL when that port is tracked, or is the one on every address and
 * daddr is not the uplink's (the way back answers from the uplink's address only). */
static __always_inline struct port_target *stateless_port4(const struct dp_config *cfg, __be32 daddr, __be16 dport, int *wildcard)
{
	struct port_target *t = tcp_port_lookup4(daddr, dport, wildcard);
	if (!t || !(t->flags & PORT_F_STATELESS) || (*wildcard && daddr != cfg->uplink_addr))
		return NULL;
	return t;
}

/* Whether a TCP segment from the uplink to a local address may be a stateless port's, tested
 * before the connection table is: some TCP port with its number is published (tcp_ports, a
 * bitmap the daemon keeps), it is no fragment, and the flow log is off (while it is on, flows
 * through these ports may be tracked, and their packets must find their entries first). */
static __always_inline int stateless_first(const struct dp_config *cfg, __u8 proto, __be16 dport, int frag)
{
	if (proto != IPPROTO_TCP || frag || (cfg->flags & DP_F_FLOW_EVENTS))
		return 0;
	return port_bit(&tcp_ports, dport);
}

/* A segment from the uplink to a stateless published port: translated and delivered into its
 * target's sandbox, the way back remembered at a SYN; CT_NO_FLOW when the port is not
 * stateless for this packet. A frame of its own: the uplink's has no room for an entry. */
BPFNET_NOINLINE int stateless_in4(struct __sk_buff *skb, const struct pkt4 *p)
{
	struct dp_config *cfg = dp_config();
	if (!cfg || stateless_opens_tracked(cfg, p->tcp_flags))
		return CT_NO_FLOW;
	int wildcard;
	struct port_target *t = stateless_port4(cfg, p->t.daddr, p->t.dport, &wildcard);
	if (!t)
		return CT_NO_FLOW;
	struct port_target target = *t;
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep4, &target.addr);
	if (!ep)
		return CT_NO_FLOW;
	if (tcp_bare_syn(p->tcp_flags)) {
		struct port_key back = { .addr = target.addr, .port = target.port, .proto = IPPROTO_TCP, .pad = 0 };
		struct port_target way = { .addr = wildcard ? 0 : p->t.daddr, .port = p->t.dport, .flags = 0 };
		struct port_target *known = bpf_map_lookup_elem(&rports4, &back);
		if (!known || known->addr != way.addr || known->port != way.port)
			bpf_map_update_elem(&rports4, &back, &way, BPF_ANY);
	}
	/* As ct_apply4 applies an entry, into the endpoint found above (not again by its veth). */
	if (nat_rewrite4(skb, p, p->t.saddr, target.addr, p->t.sport, target.port) < 0)
		return DROP(DROP_MALFORMED);
	return deliver_to_endpoint(skb, p, ep, 1, 1);
}

/* The published port a stateless reply from (saddr, sport) answers from: 0 when there is none
 * (or it no longer leads there), else 1 with *from_addr and *from_port filled. */
static __always_inline int stateless_way_back4(const struct dp_config *cfg, __be32 saddr, __be16 sport, __be32 *from_addr, __be16 *from_port)
{
	struct port_key back = { .addr = saddr, .port = sport, .proto = IPPROTO_TCP, .pad = 0 };
	struct port_target *way = bpf_map_lookup_elem(&rports4, &back);
	if (!way)
		return 0;
	struct port_key pk = { .addr = way->addr, .port = way->port, .proto = IPPROTO_TCP, .pad = 0 };
	struct port_target *t = bpf_map_lookup_elem(&ports4, &pk);
	if (!t || !(t->flags & PORT_F_STATELESS) || t->addr != saddr || t->port != sport)
		return 0;
	*from_addr = way->addr ? way->addr : cfg->uplink_addr;
	*from_port = way->port;
	return 1;
}

/* A segment from a sandbox that the connection table does not know: a reply of a stateless
 * published port, translated and routed out; CT_NO_FLOW when it is not one. */
static __always_inline int stateless_out4(struct __sk_buff *skb, const struct pkt4 *p, const struct dp_config *cfg)
{
	if (p->t.proto != IPPROTO_TCP || tcp_bare_syn(p->tcp_flags))
		return CT_NO_FLOW;
	struct ct_entry4 x = { .daddr = p->t.daddr, .dport = p->t.dport, .deliver = CT_DELIVER_ROUTE, .kind = CT_DNAT, .dir = 1 };
	if (!stateless_way_back4(cfg, p->t.saddr, p->t.sport, &x.saddr, &x.sport))
		return CT_NO_FLOW;
	return ct_apply4(skb, p, &x, cfg, 1);
}

/* The flow an ICMP error from outside speaks about, when it is a stateless port's (its embedded
 * packet left from the published port): filled as the original-direction entry of key k (the
 * embedded tuple turned around) would be. 0 when it is no such flow. */
static __always_inline int stateless_icmp_entry4(const struct dp_config *cfg, const struct ct_key4 *k, struct ct_entry4 *x)
{
	if (k->proto != IPPROTO_TCP)
		return 0;
	int wildcard;
	struct port_target *t = stateless_port4(cfg, k->daddr, k->dport, &wildcard);
	if (!t)
		return 0;
	struct port_target target = *t;
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep4, &target.addr);
	if (!ep)
		return 0;
	x->saddr = k->saddr;
	x->daddr = target.addr;
	x->sport = k->sport;
	x->dport = target.port;
	x->deliver = ep->ifindex;
	x->kind = CT_DNAT;
	return 1;
}

/* ---- IPv6: the same, with ports6, rports6 and cfg6's uplink address ---- */

/* The host's IPv6 uplink address, or NULL when it has none (a wildcard port then stays tracked). */
static __always_inline const struct addr6 *uplink_addr6(void)
{
	struct dp_config6 *cfg6 = dp_config6();
	return cfg6 && !addr6_zero(&cfg6->uplink_addr) ? &cfg6->uplink_addr : NULL;
}

/* stateless_port4 for IPv6, with cfg6's uplink address. */
/* tcp_port_lookup4 for IPv6 (tcp_ports_at counts either family). */
static __always_inline struct port_target6 *tcp_port_lookup6(const struct addr6 *daddr, __be16 dport, int *wildcard)
{
	if (port_bit(&tcp_ports_at, dport))
		return port_lookup6_at(daddr, dport, IPPROTO_TCP, wildcard);
	struct port_key6 k = { .port = dport, .proto = IPPROTO_TCP, .pad = 0 };
	*wildcard = 1;
	return bpf_map_lookup_elem(&ports6, &k);
}

static __always_inline struct port_target6 *stateless_port6(const struct addr6 *daddr, __be16 dport, int *wildcard)
{
	struct port_target6 *t = tcp_port_lookup6(daddr, dport, wildcard);
	if (!t || !(t->flags & PORT_F_STATELESS))
		return NULL;
	if (*wildcard) {
		const struct addr6 *up = uplink_addr6();
		if (!up || !addr6_eq(daddr, up))
			return NULL;
	}
	return t;
}

/* stateless_in4 for IPv6. */
BPFNET_NOINLINE int stateless_in6(struct __sk_buff *skb, const struct pkt6 *p)
{
	struct dp_config *cfg = dp_config();
	if (!cfg || stateless_opens_tracked(cfg, p->tcp_flags))
		return CT_NO_FLOW;
	int wildcard;
	struct port_target6 *t = stateless_port6(&p->t.daddr, p->t.dport, &wildcard);
	if (!t)
		return CT_NO_FLOW;
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep6, &t->addr);
	if (!ep)
		return CT_NO_FLOW;
	if (tcp_bare_syn(p->tcp_flags)) {
		struct port_key6 back = { .addr = t->addr, .port = t->port, .proto = IPPROTO_TCP, .pad = 0 };
		struct port_target6 way = { .port = p->t.dport, .flags = 0 };
		if (!wildcard)
			way.addr = p->t.daddr;
		struct port_target6 *known = bpf_map_lookup_elem(&rports6, &back);
		if (!known || !addr6_eq(&known->addr, &way.addr) || known->port != way.port)
			bpf_map_update_elem(&rports6, &back, &way, BPF_ANY);
	}
	if (nat_rewrite6(skb, p, &p->t.saddr, &t->addr, p->t.sport, t->port) < 0)
		return DROP(DROP_MALFORMED);
	return deliver_to_endpoint6(skb, p, ep, 1, 1);
}

/* The published port a stateless IPv6 reply from (saddr, sport) answers from, as stateless_way_back4. */
static __always_inline int stateless_way_back6(const struct addr6 *saddr, __be16 sport, struct addr6 *from_addr, __be16 *from_port)
{
	struct port_key6 back = { .addr = *saddr, .port = sport, .proto = IPPROTO_TCP, .pad = 0 };
	struct port_target6 *way = bpf_map_lookup_elem(&rports6, &back);
	if (!way)
		return 0;
	struct port_key6 pk = { .addr = way->addr, .port = way->port, .proto = IPPROTO_TCP, .pad = 0 };
	struct port_target6 *t = bpf_map_lookup_elem(&ports6, &pk);
	if (!t || !(t->flags & PORT_F_STATELESS) || !addr6_eq(&t->addr, saddr) || t->port != sport)
		return 0;
	if (addr6_zero(&way->addr)) {
		const struct addr6 *up = uplink_addr6();
		if (!up)
			return 0;
		*from_addr = *up;
	} else {
		*from_addr = way->addr;
	}
	*from_port = way->port;
	return 1;
}

/* stateless_out4 for IPv6 (a frame of its own, as stateless_in6). */
BPFNET_NOINLINE int stateless_out6(struct __sk_buff *skb, const struct pkt6 *p, const struct dp_config *cfg)
{
	if (p->t.proto != IPPROTO_TCP || tcp_bare_syn(p->tcp_flags))
		return CT_NO_FLOW;
	struct ct_entry6 x = { .daddr = p->t.daddr, .dport = p->t.dport, .deliver = CT_DELIVER_ROUTE, .kind = CT_DNAT, .dir = 1 };
	if (!stateless_way_back6(&p->t.saddr, p->t.sport, &x.saddr, &x.sport))
		return CT_NO_FLOW;
	return ct_apply6(skb, p, &x, cfg, 1);
}

/* stateless_icmp_entry4 for IPv6, giving only what the entry would: the target and its sandbox's
 * host veth (the client's side is the error's own, in k). */
static __always_inline int stateless_icmp_target6(const struct ct_key6 *k, struct addr6 *addr, __be16 *port, __u32 *deliver)
{
	if (k->proto != IPPROTO_TCP)
		return 0;
	int wildcard;
	struct port_target6 *t = stateless_port6(&k->daddr, k->dport, &wildcard);
	if (!t)
		return 0;
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep6, &t->addr);
	if (!ep)
		return 0;
	*addr = t->addr;
	*port = t->port;
	*deliver = ep->ifindex;
	return 1;
}

#endif
