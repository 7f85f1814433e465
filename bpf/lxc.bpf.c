/* The host side of every sandbox's veth.
 * from_container (tc ingress): anti-spoofing, then the fast path — sandbox to sandbox on one
 * network goes straight into the peer's namespace (redirect_peer: no bridge, no netfilter),
 * isolation and icc policy, published ports through a host address (hairpin), masquerade to
 * the outside with a FIB redirect out of the uplink, and replies of NATed flows.
 * to_container (tc egress): what reaches the sandbox through the bridge (the slow path) is
 * only broadcast, its own network, or the host. */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/pkt.h"
#include "lib/nat.h"

struct arp_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[ETH_ALEN];
	__be32 spa;
	__u8 tha[ETH_ALEN];
	__be32 tpa;
} __attribute__((packed));

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return ((const __u16 *)a)[0] == ((const __u16 *)b)[0] && ((const __u16 *)a)[1] == ((const __u16 *)b)[1] &&
	       ((const __u16 *)a)[2] == ((const __u16 *)b)[2];
}

/* A published port reached through a host address from a sandbox: DNAT to the target and
 * SNAT to the target network's gateway, so the reply comes back through us. */
static __always_inline int hairpin4(struct __sk_buff *skb, const struct pkt4 *p, const struct endpoint_info *self, const struct port_target *t,
				    const struct dp_config *cfg, __u64 now)
{
	struct endpoint_info *target = bpf_map_lookup_elem(&ep4, &t->addr);
	if (!target)
		return TC_PASS;
	/* As Docker without the userland proxy: a published port is no way across networks. */
	if (target->net_ifindex != self->net_ifindex)
		return drop_pkt(self->ifindex, DROP_ISOLATION, p);
	struct network_info *tnet = bpf_map_lookup_elem(&net4, &target->net_ifindex);
	if (!tnet)
		return drop_pkt(self->ifindex, DROP_UNKNOWN_ENDPOINT, p);
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
	return ct_start4(skb, p, &n, cfg, now, self->ifindex, 1);
}

SEC("tc")
int from_container(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct dp_config *cfg = dp_config();
	struct endpoint_info *self = bpf_map_lookup_elem(&ep_ifx, &ifindex);
	if (!cfg || !self)
		return drop_pkt(ifindex, DROP_UNKNOWN_ENDPOINT, NULL);
	stats_tx(ifindex, skb->len);

	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop_pkt(ifindex, DROP_MALFORMED, NULL);
	if (!mac_eq(eth->h_source, self->mac))
		return drop_pkt(ifindex, DROP_SPOOFED_SRC_MAC, NULL);
	if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		struct arp_ipv4 *arp = (void *)(eth + 1);
		if ((void *)(arp + 1) > data_end)
			return drop_pkt(ifindex, DROP_MALFORMED, NULL);
		if (arp->spa != self->addr || !mac_eq(arp->sha, self->mac))
			return drop_pkt(ifindex, DROP_SPOOFED_SRC_IP, NULL);
		return TC_PASS; /* ARP takes the bridge */
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_PASS;

	struct pkt4 p;
	if (pkt4_parse(skb, &p) < 0)
		return drop_pkt(ifindex, DROP_MALFORMED, NULL);
	if (p.t.saddr != self->addr)
		return drop_pkt(ifindex, DROP_SPOOFED_SRC_IP, &p);
	if (is_multicast_or_broadcast4(p.t.daddr))
		return TC_PASS;
	struct network_info *net = bpf_map_lookup_elem(&net4, &self->net_ifindex);
	if (!net)
		return drop_pkt(ifindex, DROP_UNKNOWN_ENDPOINT, &p);
	if (p.t.daddr == (net->subnet | ~net->mask))
		return TC_PASS;

	/* Another sandbox of this network: switch it here, straight into the peer's namespace.
	 * No NAT flow ever targets a sandbox address at this hook, so this comes first. */
	int in_subnet = (p.t.daddr & net->mask) == net->subnet;
	if (in_subnet) {
		struct endpoint_info *dst = bpf_map_lookup_elem(&ep4, &p.t.daddr);
		if (dst) {
			if (!(net->flags & NET_F_ICC))
				return drop_pkt(ifindex, DROP_ICC_DISABLED, &p);
			/* Only when needed: writing makes the kernel copy a cloned skb's head (TCP data).
			 * Parsing may have moved the packet: look at its header afresh. */
			struct ethhdr *l2 = (void *)(long)skb->data;
			if ((void *)(l2 + 1) > (void *)(long)skb->data_end)
				return drop_pkt(ifindex, DROP_MALFORMED, &p);
			if (!mac_eq(l2->h_dest, dst->mac) && bpf_skb_store_bytes(skb, 0, dst->mac, ETH_ALEN, 0) < 0)
				return drop_pkt(ifindex, DROP_MALFORMED, &p);
			stats_rx(dst->ifindex, skb->len);
			return bpf_redirect_peer(dst->ifindex, 0);
		}
	}

	/* Flows we translate: replies to published ports and hairpins, masqueraded connections. */
	__u64 now = bpf_ktime_get_ns();
	int verdict = ct_follow4(skb, &p, CT_HOOK_CONTAINER, cfg, now, ifindex, 1);
	if (verdict != CT_NO_FLOW)
		return verdict;

	/* A sandbox of another network: the two ends share no network here. */
	if (!in_subnet && bpf_map_lookup_elem(&ep4, &p.t.daddr))
		return drop_pkt(ifindex, DROP_ISOLATION, &p);

	/* The host: a published port (hairpin) or one of its own services. */
	if (bpf_map_lookup_elem(&local4, &p.t.daddr)) {
		if (p.has_ports && p.t.proto != IPPROTO_ICMP) {
			struct port_target *t = port_lookup4(p.t.daddr, p.t.dport, p.t.proto);
			if (t) {
				struct port_target target = *t;
				return hairpin4(skb, &p, self, &target, cfg, now);
			}
		}
		return TC_PASS;
	}
	if (in_subnet)
		return drop_pkt(ifindex, DROP_UNKNOWN_DEST, &p);

	/* The outside. */
	if (net->flags & NET_F_INTERNAL)
		return drop_pkt(ifindex, DROP_INTERNAL_NETWORK, &p);
	if (!(net->flags & NET_F_MASQUERADE))
		return TC_PASS; /* routed as is by the host */
	if (p.ttl <= 1)
		return TC_PASS; /* the stack answers with time exceeded */
	if (!p.has_ports || (p.t.proto == IPPROTO_ICMP && p.icmp_type != ICMP_ECHO))
		return drop_pkt(ifindex, DROP_NAT_UNSUPPORTED, &p);
	struct ct_new n = {
		.kind = CT_SNAT,
		.orig_hook = CT_HOOK_CONTAINER,
		.reply_hook = CT_HOOK_UPLINK,
		.alloc_port = 1,
		.orig_deliver = CT_DELIVER_ROUTE,
		.reply_deliver = ifindex,
		.saddr = cfg->uplink_addr,
		.daddr = p.t.daddr,
		.sport = p.t.sport,
		.dport = p.t.dport,
	};
	return ct_start4(skb, &p, &n, cfg, now, ifindex, 1);
}

SEC("tc")
int to_container(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep_ifx, &ifindex);
	if (!ep)
		return TC_PASS;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return TC_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return drop_pkt(ifindex, DROP_MALFORMED, NULL);
		struct network_info *net = bpf_map_lookup_elem(&net4, &ep->net_ifindex);
		__be32 saddr = ip->saddr;
		/* Without masquerade the host routes replies in as they are: nothing to check. */
		if (net && (net->flags & NET_F_MASQUERADE) && (saddr & net->mask) != net->subnet && !bpf_map_lookup_elem(&local4, &saddr)) {
			struct drop_ctx d = { .saddr = saddr, .daddr = ip->daddr, .proto = ip->protocol };
			drop_record(ifindex, DROP_UNSOLICITED, &d);
			return TC_ACT_SHOT;
		}
	}
	stats_rx(ifindex, skb->len);
	return TC_PASS;
}

char LICENSE[] SEC("license") = "GPL";
