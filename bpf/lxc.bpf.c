/* The host side of every sandbox's veth.
 * from_container (tc ingress): anti-spoofing, then the fast path — sandbox to sandbox on one
 * network goes straight into the peer's namespace (redirect_peer: no bridge, no netfilter),
 * isolation and icc policy, published ports through a host address (hairpin, from any network),
 * masquerade to the outside with a FIB redirect out of the uplink, and replies of NATed flows.
 * ARP and neighbour solicitations for the gateway and the network's sandboxes are answered
 * here, and what is for the host enters the bridge device's ingress: the host veth is no
 * bridge port (a bridge takes 1,024 at most), so broadcast reaches the host only.
 * to_container (tc egress): what reaches the sandbox other than straight from a peer: the
 * host (bridge.bpf.c sends it here), answers built above, and (on a veth that an older
 * daemon enslaved) broadcast of its own network when icc allows.
 * Both are dispatchers by ethertype: what they do not understand is dropped and counted. */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/pkt.h"
#include "lib/nat.h"
#include "lib/nat6.h"
#include "lib/icmp_err.h"
#include "lib/stateless.h"
#include "lib/overlay.h"
#include "lib/neigh.h"

/* What every dispatcher refuses before looking at the payload: a frame with a VLAN tag, in
 * the frame or already stripped into the skb by the receiving device (VID 0 included). */
static __always_inline int l2_verdict(struct __sk_buff *skb, __be16 proto)
{
	if (skb->vlan_present || proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return DROP(DROP_VLAN);
	return DROP(DROP_UNKNOWN_ETHERTYPE);
}

/* A published port reached through a host address from a sandbox: DNAT to the target and
 * SNAT to the target network's gateway, so the reply comes back through us. As in Docker 28
 * (moby #49310), this is the sanctioned way across networks; the target's own address is not. */
static __always_inline int hairpin4(struct __sk_buff *skb, const struct pkt4 *p, const struct endpoint_info *self, const struct port_target *t,
				    const struct dp_config *cfg, __u64 now)
{
	struct endpoint_info *target = bpf_map_lookup_elem(&ep4, &t->addr);
	if (!target)
		return TC_PASS;
	struct network_info *tnet = bpf_map_lookup_elem(&net4, &target->net_ifindex);
	if (!tnet)
		return DROP(DROP_UNKNOWN_ENDPOINT);
	struct ct_new n = {
		.kind = CT_HAIRPIN,
		.orig_hook = CT_HOOK_CONTAINER,
		.reply_hook = CT_HOOK_CONTAINER,
		.alloc_port = 1,
		.orig_deliver = target->ifindex,
		.reply_deliver = self->ifindex,
		.saddr = tnet->gateway,
		.daddr = t->addr,
		.sport = p->t.sport,
		.dport = t->port,
	};
	return ct_start4(skb, p, &n, cfg, now, 1);
}

/* Not inlined: the ARP replies' buffers would otherwise sit in from_container's frame, under the IPv6 chain.
 * A request for the gateway or a sandbox of its network is answered here (with icc off too:
 * the IP packets are judged as before); one for an endpoint on another host by the overlay;
 * anything else goes to the host, which answers for its own addresses as it did on the bridge. */
BPFNET_NOINLINE int arp_from_container(struct __sk_buff *skb, const struct endpoint_info *self)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct arp_ipv4 *arp = data + ETH_HLEN;
	if ((void *)(arp + 1) > data_end)
		return DROP(DROP_MALFORMED);
	if (arp->spa != self->addr || !mac_eq(arp->sha, self->mac))
		return DROP(DROP_SPOOFED_SRC_IP);
	__be32 tpa = arp->tpa;
	/* Gratuitous (its own address) and replies: the host's business. */
	if (arp->op != bpf_htons(ARP_OP_REQUEST) || tpa == self->addr)
		return TC_PASS;
	struct network_info *net = bpf_map_lookup_elem(&net4, &self->net_ifindex);
	if (!net)
		return DROP(DROP_UNKNOWN_ENDPOINT);
	const __u8 *mac = 0;
	if (tpa == net->gateway) {
		mac = net->bridge_mac;
	} else {
		struct endpoint_info *peer = bpf_map_lookup_elem(&ep4, &tpa);
		if (peer && peer->net_ifindex == self->net_ifindex)
			mac = peer->mac;
	}
	if (!mac)
		return overlay_arp_reply4(skb, self);
	if (neigh_arp_reply(skb, mac, tpa, self->mac, self->addr) < 0)
		return DROP(DROP_MALFORMED);
	/* Out of the host veth again: into the sandbox that asked. */
	return bpf_redirect(skb->ifindex, 0);
}

/* The outside, from a sandbox: masqueraded, or routed as is (with the flow tracked so that
 * only its replies come back in) when the network does not masquerade. */
static __always_inline int outbound4(struct __sk_buff *skb, const struct pkt4 *p, const struct network_info *net, const struct dp_config *cfg, __u32 ifindex, __u64 now)
{
	if (net->flags & NET_F_INTERNAL)
		return DROP(DROP_INTERNAL_NETWORK);
	if (p->ttl <= 1)
		return TC_PASS; /* the stack answers with time exceeded */
	int masquerade = net->flags & NET_F_MASQUERADE;
	if (!p->has_ports || (p->t.proto == IPPROTO_ICMP && p->icmp_type != ICMP_ECHO))
		return masquerade ? DROP(DROP_NAT_UNSUPPORTED) : TC_PASS;
	struct ct_new n = {
		.kind = masquerade ? CT_SNAT : CT_ROUTED,
		.orig_hook = CT_HOOK_CONTAINER,
		.reply_hook = CT_HOOK_UPLINK,
		.alloc_port = masquerade ? 1 : 0,
		.orig_deliver = CT_DELIVER_ROUTE,
		.reply_deliver = ifindex,
		.saddr = masquerade ? cfg->uplink_addr : p->t.saddr,
		.daddr = p->t.daddr,
		.sport = p->t.sport,
		.dport = p->t.dport,
	};
	return ct_start4(skb, p, &n, cfg, now, 1);
}

BPFNET_NOINLINE int ipv4_from_container(struct __sk_buff *skb, const struct endpoint_info *self, const struct dp_config *cfg, struct pkt4 *p)
{
	__u32 ifindex = self->ifindex;
	if (pkt4_parse(skb, p) < 0)
		return DROP(DROP_MALFORMED);
	if (p->t.saddr != self->addr)
		return DROP(DROP_SPOOFED_SRC_IP);
	/* The sandbox routes these to its own lo: on the wire they are forged (127.0.0.1 would
	 * reach ports the host bound to loopback). */
	if (is_loopback_or_zero4(p->t.daddr))
		return DROP(DROP_MARTIAN_DST);
	struct network_info *net = bpf_map_lookup_elem(&net4, &self->net_ifindex);
	if (!net)
		return DROP(DROP_UNKNOWN_ENDPOINT);
	/* Broadcast and multicast: the host hears them (into the bridge, from_container_verdict); no other sandbox does. */
	if (is_multicast_or_broadcast4(p->t.daddr) || p->t.daddr == (net->subnet | ~net->mask))
		return TC_PASS;

	/* Another sandbox of this network: switch it here, straight into the peer's namespace.
	 * No NAT flow ever targets a sandbox address at this hook, so this comes first. */
	int in_subnet = (p->t.daddr & net->mask) == net->subnet;
	if (in_subnet) {
		struct endpoint_info *dst = bpf_map_lookup_elem(&ep4, &p->t.daddr);
		if (dst) {
			if (!(net->flags & NET_F_ICC))
				return DROP(DROP_ICC_DISABLED);
			/* Only when needed: writing makes the kernel copy a cloned skb's head (TCP data).
			 * Parsing may have moved the packet: look at its header afresh. */
			struct ethhdr *l2 = (void *)(long)skb->data;
			if ((void *)(l2 + 1) > (void *)(long)skb->data_end)
				return DROP(DROP_MALFORMED);
			if (!mac_eq(l2->h_dest, dst->mac) && bpf_skb_store_bytes(skb, 0, dst->mac, ETH_ALEN, 0) < 0)
				return DROP(DROP_MALFORMED);
			stats_rx(dst->ifindex, skb->len);
			return bpf_redirect_peer(dst->ifindex, 0);
		}
	}

	/* Flows we translate: replies to published ports and hairpins, masqueraded connections;
	 * and replies of connections that came in through a stateless published port, asked for
	 * first when no tracked flow can send from their port (lib/ct.h's ct_port_untracked). */
	__u64 now = dp_now();
	int early = p->t.proto == IPPROTO_TCP && ct_port_untracked(p->t.sport);
	int verdict = early ? stateless_out4(skb, p, cfg) : CT_NO_FLOW;
	if (verdict == CT_NO_FLOW)
		verdict = ct_follow4(skb, p, CT_HOOK_CONTAINER, cfg, now, 1);
	if (verdict == CT_NO_FLOW && !early)
		verdict = stateless_out4(skb, p, cfg);
	if (verdict != CT_NO_FLOW)
		return verdict;
	/* An error about a packet it received through a published port or hairpin: back to its sender. */
	if (icmp4_is_error(p)) {
		verdict = icmp_error4(skb, p, CT_HOOK_CONTAINER, cfg, now, 1, 1);
		if (verdict != CT_NO_FLOW)
			return verdict;
	}

	/* A sandbox of another network: the two ends share no network here. */
	if (!in_subnet && (bpf_map_lookup_elem(&ep4, &p->t.daddr) || overlay_known4(p->t.daddr)))
		return DROP(DROP_ISOLATION);

	/* The host: a published port (hairpin) or one of its own services. */
	if (bpf_map_lookup_elem(&local4, &p->t.daddr)) {
		if (p->has_ports && p->t.proto != IPPROTO_ICMP) {
			struct port_target *t = port_lookup4(p->t.daddr, p->t.dport, p->t.proto);
			if (t) {
				struct port_target target = *t;
				return hairpin4(skb, p, self, &target, cfg, now);
			}
		}
		return TC_PASS;
	}
	if (in_subnet)
		return overlay_to_remote4(skb, p->t.daddr, self, net); /* on another host, or unknown */
	return outbound4(skb, p, net, cfg, ifindex, now);
}

/* ---- IPv6 ---- */

/* fe80::/64 with the modified EUI-64 of mac: the link-local address the kernel gives the sandbox. */
static __always_inline void linklocal_of(const __u8 *mac, struct addr6 *out)
{
	out->w[0] = bpf_htonl(0xfe800000);
	out->w[1] = 0;
	out->w[2] = bpf_htonl(((__u32)(mac[0] ^ 2) << 24) | ((__u32)mac[1] << 16) | ((__u32)mac[2] << 8) | 0xff);
	out->w[3] = bpf_htonl(0xfe000000 | ((__u32)mac[3] << 16) | ((__u32)mac[4] << 8) | mac[5]);
}

/* Whether a is in one of the network's IPv6 subnets: its first (net6), or a further one (net6_more). */
static __always_inline int net6_holds(const struct network_info6 *net, __u32 net_ifindex, const struct addr6 *a)
{
	if (addr6_in(a, &net->subnet, &net->mask))
		return 1;
	if (!(net->flags & NET_F_MORE_SUBNETS6))
		return 0;
	struct net6_more_key k = {.prefixlen = 32 + 128, .net_ifindex = net_ifindex, .addr = *a};
	return bpf_map_lookup_elem(&net6_more, &k) != NULL;
}

/* Whether a is one of the network's IPv6 gateways (the host, not a sandbox: icc does not apply). */
static __always_inline int net6_gateway(const struct network_info6 *net, __u32 net_ifindex, const struct addr6 *a)
{
	if (addr6_eq(a, &net->gateway))
		return 1;
	if (!(net->flags & NET_F_MORE_SUBNETS6))
		return 0;
	struct net6_more_key k = {.prefixlen = 32 + 128, .net_ifindex = net_ifindex, .addr = *a};
	struct addr6 *gw = bpf_map_lookup_elem(&net6_more, &k);
	return gw && addr6_eq(a, gw);
}

/* A solicitation for a gateway (one per subnet, or fe80::1) or a sandbox of the network:
 * answered here with an advertisement into the sandbox that asked (a router's for the
 * gateway, so the sandbox keeps it as its default router). Anything else: the host's. */
BPFNET_NOINLINE int nd_answer(struct __sk_buff *skb, const struct pkt6 *p, const struct endpoint_info *self)
{
	struct neigh_answer a = {};
	if (bpf_skb_load_bytes(skb, p->l4_off + 8, &a.target, sizeof(a.target)) < 0)
		return DROP(DROP_MALFORMED);
	struct network_info6 *net = bpf_map_lookup_elem(&net6, &self->net_ifindex);
	if (!net)
		return DROP(DROP_UNKNOWN_ENDPOINT);
	const struct addr6 *t = &a.target;
	int gw_ll = t->w[0] == bpf_htonl(0xfe800000) && t->w[1] == 0 && t->w[2] == 0 && t->w[3] == bpf_htonl(1);
	if (gw_ll || net6_gateway(net, self->net_ifindex, t)) {
		__builtin_memcpy(a.mac, net->bridge_mac, ETH_ALEN);
		a.router = 1;
	} else {
		struct endpoint_info *peer = addr6_eq(t, &self->addr6) ? NULL : bpf_map_lookup_elem(&ep6, t);
		if (!peer || peer->net_ifindex != self->net_ifindex)
			return TC_PASS;
		__builtin_memcpy(a.mac, peer->mac, ETH_ALEN);
	}
	a.asker = p->t.saddr;
	__builtin_memcpy(a.asker_mac, self->mac, ETH_ALEN);
	if (neigh_advert6(skb, &a) < 0)
		return DROP(DROP_MALFORMED);
	return bpf_redirect(skb->ifindex, 0);
}

/* Neighbour discovery from a sandbox, as ARP is judged: it answers (NA) only for its own
 * addresses with its own MAC, asks (NS) with its own MAC, and sends no router messages. */
BPFNET_NOINLINE int nd_from_container(struct __sk_buff *skb, const struct pkt6 *p, const struct endpoint_info *self)
{
	__u8 type = p->icmp_type;
	if (type == ND_ROUTER_ADVERT || type == ND_REDIRECT)
		return DROP(DROP_SPOOFED_ND);
	if (type != ND_NEIGHBOR_ADVERT && type != ND_NEIGHBOR_SOLICIT)
		return TC_PASS;
	if (type == ND_NEIGHBOR_ADVERT) {
		struct addr6 target, ll;
		if (bpf_skb_load_bytes(skb, p->l4_off + 8, &target, sizeof(target)) < 0)
			return DROP(DROP_MALFORMED);
		linklocal_of(self->mac, &ll);
		if (!addr6_eq(&target, &self->addr6) && !addr6_eq(&target, &ll))
			return DROP(DROP_SPOOFED_ND);
	}
	/* The first option, when it is the link-layer address (source in NS, target in NA), must be its MAC. */
	__u8 opt[8];
	if (bpf_skb_load_bytes(skb, p->l4_off + 24, opt, sizeof(opt)) == 0) {
		__u8 want = type == ND_NEIGHBOR_ADVERT ? 2 : 1;
		if (opt[0] == want && opt[1] == 1 && !mac_eq(&opt[2], self->mac))
			return DROP(DROP_SPOOFED_ND);
	}
	if (type == ND_NEIGHBOR_SOLICIT)
		return nd_answer(skb, p, self);
	return TC_PASS;
}

static __always_inline int hairpin6(struct __sk_buff *skb, const struct pkt6 *p, const struct endpoint_info *self, const struct port_target6 *t,
				    const struct dp_config *cfg, __u64 now)
{
	struct endpoint_info *target = bpf_map_lookup_elem(&ep6, &t->addr);
	if (!target)
		return TC_PASS;
	struct network_info6 *tnet = bpf_map_lookup_elem(&net6, &target->net_ifindex);
	if (!tnet)
		return DROP(DROP_UNKNOWN_ENDPOINT);
	struct ct6_new_flow n = {
		.kind = CT_HAIRPIN,
		.orig_hook = CT_HOOK_CONTAINER,
		.reply_hook = CT_HOOK_CONTAINER,
		.alloc_port = 1,
		.orig_deliver = target->ifindex,
		.reply_deliver = self->ifindex,
		.saddr = tnet->gateway,
		.daddr = t->addr,
		.sport = p->t.sport,
		.dport = t->port,
	};
	return ct_start6(skb, p, &n, cfg, now, 1);
}

/* The outside over IPv6: NAT66 to the uplink's IPv6 address, or routed as is (tracked). */
static __always_inline int outbound6(struct __sk_buff *skb, const struct pkt6 *p, const struct network_info6 *net, const struct dp_config *cfg, __u32 ifindex, __u64 now)
{
	if (net->flags & NET_F_INTERNAL)
		return DROP(DROP_INTERNAL_NETWORK);
	if (p->hop_limit <= 1)
		return TC_PASS; /* the stack answers with time exceeded */
	int masquerade = net->flags & NET_F_MASQUERADE;
	if (!p->has_ports || (p->t.proto == IPPROTO_ICMPV6 && p->icmp_type != ICMP6_ECHO_REQUEST))
		return masquerade ? DROP(DROP_NAT_UNSUPPORTED) : TC_PASS;
	struct dp_config6 *cfg6 = dp_config6();
	if (masquerade && (!cfg6 || addr6_zero(&cfg6->uplink_addr)))
		return DROP(DROP_NAT_NO_PORT); /* the uplink has no IPv6 address to masquerade to */
	struct ct6_new_flow n = {
		.kind = masquerade ? CT_SNAT : CT_ROUTED,
		.orig_hook = CT_HOOK_CONTAINER,
		.reply_hook = CT_HOOK_UPLINK,
		.alloc_port = masquerade ? 1 : 0,
		.orig_deliver = CT_DELIVER_ROUTE,
		.reply_deliver = ifindex,
		.daddr = p->t.daddr,
		.sport = p->t.sport,
		.dport = p->t.dport,
	};
	n.saddr = masquerade && cfg6 ? cfg6->uplink_addr : p->t.saddr;
	return ct_start6(skb, p, &n, cfg, now, 1);
}

BPFNET_NOINLINE int ipv6_from_container(struct __sk_buff *skb, const struct endpoint_info *self, const struct dp_config *cfg, struct pkt6 *p)
{
	if (!(self->flags & EP_F_IPV6))
		return DROP(DROP_INET_SIX);
	if (pkt6_parse(skb, p) < 0)
		return DROP(DROP_MALFORMED);
	struct network_info6 *net = bpf_map_lookup_elem(&net6, &self->net_ifindex);
	if (!net)
		return DROP(DROP_UNKNOWN_ENDPOINT);
	int link_msg = p->t.proto == IPPROTO_ICMPV6 && p->l4 && icmp6_link_local_type(p->icmp_type);
	/* Its own address; link-local or unspecified (DAD) sources only for ND and MLD on the link. */
	if (!addr6_eq(&p->t.saddr, &self->addr6) &&
	    !(link_msg && (addr6_linklocal(&p->t.saddr) || addr6_zero(&p->t.saddr)) && (addr6_linklocal(&p->t.daddr) || addr6_multicast(&p->t.daddr))))
		return DROP(DROP_SPOOFED_SRC_IP);
	if (link_msg) {
		int v = nd_from_container(skb, p, self);
		if (v == TC_PASS)
			v = overlay_nd_reply6(skb, p, self); /* answered here when for a remote endpoint */
		if (v != TC_PASS)
			return v;
	}
	if (addr6_loopback_or_zero(&p->t.daddr))
		return DROP(DROP_MARTIAN_DST);
	/* Multicast: the host hears it (into the bridge); no other sandbox does. Link-local unicast reaches
	 * the host only (the gateway's MAC): another sandbox's would need a shared link. */
	if (addr6_multicast(&p->t.daddr))
		return TC_PASS;
	if (addr6_linklocal(&p->t.daddr)) {
		struct ethhdr *l2 = (void *)(long)skb->data;
		if ((void *)(l2 + 1) > (void *)(long)skb->data_end)
			return DROP(DROP_MALFORMED);
		return mac_eq(l2->h_dest, net->bridge_mac) ? TC_PASS : DROP(DROP_NO_SHARED_LINK);
	}

	int in_subnet = net6_holds(net, self->net_ifindex, &p->t.daddr);
	if (in_subnet) {
		struct endpoint_info *dst = bpf_map_lookup_elem(&ep6, &p->t.daddr);
		if (dst) {
			if (!(net->flags & NET_F_ICC))
				return DROP(DROP_ICC_DISABLED);
			struct ethhdr *l2 = (void *)(long)skb->data;
			if ((void *)(l2 + 1) > (void *)(long)skb->data_end)
				return DROP(DROP_MALFORMED);
			if (!mac_eq(l2->h_dest, dst->mac) && bpf_skb_store_bytes(skb, 0, dst->mac, ETH_ALEN, 0) < 0)
				return DROP(DROP_MALFORMED);
			stats_rx(dst->ifindex, skb->len);
			return bpf_redirect_peer(dst->ifindex, 0);
		}
	}

	__u64 now = dp_now();
	int early = p->t.proto == IPPROTO_TCP && ct_port_untracked(p->t.sport);
	int verdict = early ? stateless_out6(skb, p, cfg) : CT_NO_FLOW;
	if (verdict == CT_NO_FLOW)
		verdict = ct_follow6(skb, p, CT_HOOK_CONTAINER, cfg, now, 1);
	if (verdict == CT_NO_FLOW && !early)
		verdict = stateless_out6(skb, p, cfg);
	if (verdict != CT_NO_FLOW)
		return verdict;
	if (icmp6_is_error(p)) {
		verdict = icmp_error6(skb, p, CT_HOOK_CONTAINER, cfg, now, 1, 1);
		if (verdict != CT_NO_FLOW)
			return verdict;
	}

	if (!in_subnet && (bpf_map_lookup_elem(&ep6, &p->t.daddr) || overlay_known6(&p->t.daddr)))
		return DROP(DROP_ISOLATION);

	if (bpf_map_lookup_elem(&local6, &p->t.daddr)) {
		if (p->has_ports && p->t.proto != IPPROTO_ICMPV6) {
			struct port_target6 *t = port_lookup6(&p->t.daddr, p->t.dport, p->t.proto);
			if (t) {
				struct port_target6 target = *t;
				return hairpin6(skb, p, self, &target, cfg, now);
			}
		}
		return TC_PASS;
	}
	if (in_subnet)
		return overlay_to_remote6(skb, &p->t.daddr, self, net->flags); /* on another host, or unknown */
	return outbound6(skb, p, net, cfg, self->ifindex, now);
}

static __always_inline int from_container_verdict(struct __sk_buff *skb, struct pkt4 *p, struct pkt6 *p6)
{
	__u32 ifindex = skb->ifindex;
	struct dp_config *cfg = dp_config();
	struct endpoint_info *self = bpf_map_lookup_elem(&ep_ifx, &ifindex);
	if (!cfg || !self)
		return DROP(DROP_UNKNOWN_ENDPOINT);
	stats_tx(ifindex, skb->len);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return DROP(DROP_MALFORMED);
	if (!mac_eq(eth->h_source, self->mac))
		return DROP(DROP_SPOOFED_SRC_MAC);
	__be16 proto = eth->h_proto;
	int verdict;
	if (!skb->vlan_present && proto == bpf_htons(ETH_P_IP))
		verdict = ipv4_from_container(skb, self, cfg, p);
	else if (!skb->vlan_present && proto == bpf_htons(ETH_P_IPV6))
		verdict = ipv6_from_container(skb, self, cfg, p6);
	else if (!skb->vlan_present && proto == bpf_htons(ETH_P_ARP))
		verdict = arp_from_container(skb, self);
	else
		return l2_verdict(skb, proto);
	/* What the host handles (its addresses, forwarding it leaves to the stack, broadcast):
	 * into the bridge device, as if it had come through a bridge port. */
	return verdict == TC_PASS ? bpf_redirect(self->net_ifindex, BPF_F_INGRESS) : verdict;
}

SEC("tc")
int from_container(struct __sk_buff *skb)
{
	/* One family per packet: sharing the storage keeps the call chain under 512 bytes of stack. */
	union {
		struct pkt4 v4;
		struct pkt6 v6;
	} pk = {};
	__u32 ifindex = skb->ifindex;
	return tc_exit_dual(ifindex, from_container_verdict(skb, &pk.v4, &pk.v6), &pk.v4, &pk.v6, skb->protocol == bpf_htons(ETH_P_IPV6));
}

/* Through the bridge into a sandbox: the host, or broadcast and multicast of its own network
 * (from a peer only when icc allows). Replies of tracked flows never come this way (they are
 * redirected straight in), so anything else is unsolicited, masquerade or not. */
static __always_inline int ipv4_to_container(struct __sk_buff *skb, const struct endpoint_info *ep, struct pkt4 *p)
{
	if (pkt4_parse(skb, p) < 0)
		return DROP(DROP_MALFORMED);
	struct network_info *net = bpf_map_lookup_elem(&net4, &ep->net_ifindex);
	if (!net)
		return DROP(DROP_UNKNOWN_ENDPOINT);
	__be32 saddr = p->t.saddr;
	if ((saddr & net->mask) == net->subnet) {
		if (saddr != net->gateway && !(net->flags & NET_F_ICC))
			return DROP(DROP_ICC_DISABLED);
		return TC_PASS;
	}
	if (bpf_map_lookup_elem(&local4, &saddr))
		return TC_PASS;
	return DROP(DROP_UNSOLICITED);
}

/* IPv6 through the bridge into a sandbox: as IPv4, plus neighbour discovery and MLD from
 * link-local sources (the link needs them whatever icc says, as ARP). */
BPFNET_NOINLINE int ipv6_to_container(struct __sk_buff *skb, const struct endpoint_info *ep, struct pkt6 *p)
{
	if (!(ep->flags & EP_F_IPV6))
		return DROP(DROP_INET_SIX);
	if (pkt6_parse(skb, p) < 0)
		return DROP(DROP_MALFORMED);
	struct network_info6 *net = bpf_map_lookup_elem(&net6, &ep->net_ifindex);
	if (!net)
		return DROP(DROP_UNKNOWN_ENDPOINT);
	const struct addr6 *saddr = &p->t.saddr;
	if (p->t.proto == IPPROTO_ICMPV6 && p->l4 && icmp6_link_local_type(p->icmp_type) &&
	    (addr6_linklocal(saddr) || addr6_zero(saddr) || net6_holds(net, ep->net_ifindex, saddr)))
		return TC_PASS;
	if (net6_holds(net, ep->net_ifindex, saddr)) {
		if (!(net->flags & NET_F_ICC) && !net6_gateway(net, ep->net_ifindex, saddr))
			return DROP(DROP_ICC_DISABLED);
		return TC_PASS;
	}
	if (bpf_map_lookup_elem(&local6, saddr))
		return TC_PASS;
	return DROP(DROP_UNSOLICITED);
}

static __always_inline int to_container_verdict(struct __sk_buff *skb, const struct endpoint_info *ep, struct pkt4 *p, struct pkt6 *p6)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return DROP(DROP_MALFORMED);
	__be16 proto = eth->h_proto;
	int verdict;
	if (!skb->vlan_present && proto == bpf_htons(ETH_P_IP))
		verdict = ipv4_to_container(skb, ep, p);
	else if (!skb->vlan_present && proto == bpf_htons(ETH_P_IPV6))
		verdict = ipv6_to_container(skb, ep, p6);
	else if (!skb->vlan_present && proto == bpf_htons(ETH_P_ARP))
		verdict = TC_PASS;
	else
		verdict = l2_verdict(skb, proto);
	if (verdict == TC_PASS)
		stats_rx(ep->ifindex, skb->len);
	return verdict;
}

SEC("tc")
int to_container(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep_ifx, &ifindex);
	if (!ep)
		return TC_PASS; /* not (yet) ours: ensureEndpoint fills the maps before attaching */
	struct pkt4 p = {};
	struct pkt6 p6 = {};
	return tc_exit_dual(ifindex, to_container_verdict(skb, ep, &p, &p6), &p, &p6, skb->protocol == bpf_htons(ETH_P_IPV6));
}

char LICENSE[] SEC("license") = "GPL";
