/* The host's VXLAN device (collect_md, tc ingress): decapsulated frames from another host go
 * straight into the sandbox they are for (redirect_peer), once the VNI matches the
 * destination's network, the inner source is an endpoint of that network on the very host
 * that sent the tunnel packet (no spoofing across hosts), and icc allows it. Only unicast of
 * either family crosses: ARP and neighbour discovery are answered on each host (lib/overlay.h),
 * nothing else is accepted. */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/pkt.h"
#include "lib/nat.h"
#include "lib/overlay.h"

/* What both families check and do once the destination endpoint is found: the inner source is
 * an endpoint the sending host published on this VNI, the network exists and allows icc; then
 * into the sandbox, from the remote endpoint's MAC. */
static __always_inline int deliver_from_tunnel(struct __sk_buff *skb, const struct bpf_tunnel_key *key, const struct endpoint_info *ep, __u32 vni,
					       const struct overlay_remote *r, const __u16 *net_flags)
{
	if (!r || r->vni != vni || r->vtep != key->remote_ipv4)
		return DROP(DROP_SPOOFED_SRC_IP);
	if (!net_flags)
		return DROP(DROP_UNKNOWN_ENDPOINT);
	if (!(*net_flags & NET_F_ICC))
		return DROP(DROP_ICC_DISABLED);
	__u8 src[ETH_ALEN];
	__builtin_memcpy(src, r->mac, ETH_ALEN);
	if (set_macs(skb, src, ep->mac) < 0)
		return DROP(DROP_MALFORMED);
	stats_rx(ep->ifindex, skb->len);
	return bpf_redirect_peer(ep->ifindex, 0);
}

static __always_inline int ipv4_from_tunnel(struct __sk_buff *skb, const struct bpf_tunnel_key *key, struct pkt4 *p)
{
	if (pkt4_parse(skb, p) < 0)
		return DROP(DROP_MALFORMED);
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep4, &p->t.daddr);
	if (!ep)
		return DROP(DROP_UNKNOWN_DEST);
	__u32 vni = overlay_vni_of(ep->net_ifindex);
	if (!vni || vni != key->tunnel_id)
		return DROP(DROP_ISOLATION);
	__be32 saddr = p->t.saddr;
	struct network_info *net = bpf_map_lookup_elem(&net4, &ep->net_ifindex);
	return deliver_from_tunnel(skb, key, ep, vni, bpf_map_lookup_elem(&ovl_remote4, &saddr), net ? &net->flags : NULL);
}

/* IPv6 as IPv4: unicast to a local endpoint of the VNI's network, from the endpoint the
 * sending host published (neighbour discovery never crosses: each host answers it). */
BPFNET_NOINLINE int ipv6_from_tunnel(struct __sk_buff *skb, const struct bpf_tunnel_key *key)
{
	struct pkt6 p6;
	if (pkt6_parse(skb, &p6) < 0)
		return DROP(DROP_MALFORMED);
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep6, &p6.t.daddr);
	if (!ep)
		return DROP(DROP_UNKNOWN_DEST);
	__u32 vni = overlay_vni_of(ep->net_ifindex);
	if (!vni || vni != key->tunnel_id)
		return DROP(DROP_ISOLATION);
	struct network_info6 *net = bpf_map_lookup_elem(&net6, &ep->net_ifindex);
	return deliver_from_tunnel(skb, key, ep, vni, bpf_map_lookup_elem(&ovl_remote6, &p6.t.saddr), net ? &net->flags : NULL);
}

static __always_inline int from_tunnel_verdict(struct __sk_buff *skb, struct pkt4 *p)
{
	struct bpf_tunnel_key key = {};
	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		return DROP(DROP_MALFORMED);
	struct ethhdr *eth = (void *)(long)skb->data;
	if ((void *)(eth + 1) > (void *)(long)skb->data_end)
		return DROP(DROP_MALFORMED);
	if (skb->vlan_present || eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD))
		return DROP(DROP_VLAN);
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return ipv4_from_tunnel(skb, &key, p);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return ipv6_from_tunnel(skb, &key);
	return DROP(DROP_UNKNOWN_ETHERTYPE);
}

SEC("tc")
int from_overlay(struct __sk_buff *skb)
{
	struct pkt4 p = {};
	__u32 ifindex = skb->ifindex;
	return tc_exit(ifindex, from_tunnel_verdict(skb, &p), &p);
}

char LICENSE[] SEC("license") = "GPL";
