/* The bridge device of a network, tc egress: what the host sends into the network (its own
 * processes, the embedded DNS on the gateway, traffic it forwards). No sandbox is a port of
 * the bridge, so the bridge itself would deliver nothing: this program does. Unicast for a
 * sandbox of this network goes out of that sandbox's host veth (its to_container still
 * judges it); the host's ARP requests and neighbour solicitations for them are answered
 * here, back into the bridge's ingress; the host's broadcast and multicast reach no sandbox
 * (a copy per sandbox is what a bridge of 4,000 ports would have done) and are counted. */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/pkt.h"
#include "lib/nat6.h"
#include "lib/neigh.h"

/* A sandbox of the network whose bridge this is, by address (NULL: none). */
static __always_inline struct endpoint_info *member4(__be32 addr, __u32 bridge)
{
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep4, &addr);
	return ep && ep->net_ifindex == bridge ? ep : NULL;
}

static __always_inline struct endpoint_info *member6(const struct addr6 *addr, __u32 bridge)
{
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep6, addr);
	return ep && ep->net_ifindex == bridge ? ep : NULL;
}

/* Out of the sandbox's host veth, addressed to its MAC (to_container judges it there). */
static __always_inline int to_member(struct __sk_buff *skb, const struct endpoint_info *ep)
{
	struct ethhdr *l2 = (void *)(long)skb->data;
	if ((void *)(l2 + 1) > (void *)(long)skb->data_end)
		return DROP(DROP_MALFORMED);
	if (!mac_eq(l2->h_dest, ep->mac) && bpf_skb_store_bytes(skb, 0, ep->mac, ETH_ALEN, 0) < 0)
		return DROP(DROP_MALFORMED);
	return bpf_redirect(ep->ifindex, 0);
}

BPFNET_NOINLINE int arp_from_gateway(struct __sk_buff *skb, __u32 bridge)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct arp_ipv4 *arp = data + ETH_HLEN;
	if ((void *)(arp + 1) > data_end)
		return DROP(DROP_MALFORMED);
	struct endpoint_info *ep;
	if (arp->op == bpf_htons(ARP_OP_REQUEST)) {
		ep = member4(arp->tpa, bridge);
		if (!ep)
			return DROP(DROP_UNKNOWN_DEST);
		__u8 asker[ETH_ALEN];
		__builtin_memcpy(asker, arp->sha, ETH_ALEN);
		if (neigh_arp_reply(skb, ep->mac, ep->addr, asker, arp->spa) < 0)
			return DROP(DROP_MALFORMED);
		return bpf_redirect(bridge, BPF_F_INGRESS);
	}
	/* The host's answer to a sandbox's request for one of its other addresses. */
	ep = member4(arp->tpa, bridge);
	return ep ? to_member(skb, ep) : DROP(DROP_UNKNOWN_DEST);
}

static __always_inline int ipv4_from_gateway(struct __sk_buff *skb, __u32 bridge, struct pkt4 *p)
{
	if (pkt4_parse(skb, p) < 0)
		return DROP(DROP_MALFORMED);
	struct endpoint_info *ep = member4(p->t.daddr, bridge);
	if (ep)
		return to_member(skb, ep);
	struct network_info *net = bpf_map_lookup_elem(&net4, &bridge);
	if (is_multicast_or_broadcast4(p->t.daddr) || (net && p->t.daddr == (net->subnet | ~net->mask)))
		return DROP(DROP_NO_SHARED_LINK);
	return DROP(DROP_UNKNOWN_DEST);
}

BPFNET_NOINLINE int ipv6_from_gateway(struct __sk_buff *skb, __u32 bridge, struct pkt6 *p)
{
	if (pkt6_parse(skb, p) < 0)
		return DROP(DROP_MALFORMED);
	if (p->t.proto == IPPROTO_ICMPV6 && p->l4 && p->icmp_type == ND_NEIGHBOR_SOLICIT) {
		struct neigh_answer a = {};
		if (bpf_skb_load_bytes(skb, p->l4_off + 8, &a.target, sizeof(a.target)) < 0)
			return DROP(DROP_MALFORMED);
		struct endpoint_info *ep = member6(&a.target, bridge);
		if (!ep)
			return DROP(DROP_UNKNOWN_DEST);
		struct ethhdr *l2 = (void *)(long)skb->data;
		if ((void *)(l2 + 1) > (void *)(long)skb->data_end)
			return DROP(DROP_MALFORMED);
		__builtin_memcpy(a.asker_mac, l2->h_source, ETH_ALEN);
		__builtin_memcpy(a.mac, ep->mac, ETH_ALEN);
		a.asker = p->t.saddr;
		if (neigh_advert6(skb, &a) < 0)
			return DROP(DROP_MALFORMED);
		return bpf_redirect(bridge, BPF_F_INGRESS);
	}
	struct endpoint_info *ep = member6(&p->t.daddr, bridge);
	if (ep)
		return to_member(skb, ep);
	if (addr6_multicast(&p->t.daddr) || addr6_linklocal(&p->t.daddr))
		return DROP(DROP_NO_SHARED_LINK);
	return DROP(DROP_UNKNOWN_DEST);
}

static __always_inline int from_gateway_verdict(struct __sk_buff *skb, __u32 bridge, struct pkt4 *p, struct pkt6 *p6)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return DROP(DROP_MALFORMED);
	__be16 proto = eth->h_proto;
	if (skb->vlan_present || proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return DROP(DROP_VLAN);
	if (proto == bpf_htons(ETH_P_IP))
		return ipv4_from_gateway(skb, bridge, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return ipv6_from_gateway(skb, bridge, p6);
	if (proto == bpf_htons(ETH_P_ARP))
		return arp_from_gateway(skb, bridge);
	return DROP(DROP_UNKNOWN_ETHERTYPE);
}

SEC("tc")
int from_gateway(struct __sk_buff *skb)
{
	union {
		struct pkt4 v4;
		struct pkt6 v6;
	} pk = {};
	__u32 bridge = skb->ifindex;
	return tc_exit_dual(bridge, from_gateway_verdict(skb, bridge, &pk.v4, &pk.v6), &pk.v4, &pk.v6, skb->protocol == bpf_htons(ETH_P_IPV6));
}

char LICENSE[] SEC("license") = "GPL";
