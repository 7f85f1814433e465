/* Delivery of decapsulated overlay frames, shared by the two places that decapsulate: the
 * host's VXLAN device (bpf/overlay.bpf.c, everything the kernel decapsulated) and the uplink
 * (bpf/uplink.bpf.c, overlay_rx4: a plain VXLAN packet to this host's VTEP, decapsulated in the
 * program itself). A frame goes straight into the sandbox it is for (redirect_peer), once the
 * VNI matches the destination's network, the inner source is an endpoint of that network on
 * the very host that sent the tunnel packet (no spoofing across hosts), and icc allows it.
 * Only unicast of either family crosses: ARP and neighbour discovery are answered on each host
 * (lib/overlay.h), nothing else is accepted. */
#ifndef BPFNET_LIB_OVERLAY_RX_H
#define BPFNET_LIB_OVERLAY_RX_H

#include "common.h"
#include "maps.h"
#include "pkt.h"
#include "pkt6.h"
#include "nat.h"
#include "overlay.h"

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

/* A decapsulated frame with its tunnel key (VNI and the sending host's VTEP): IPv4 or IPv6 unicast
 * to a local endpoint, or dropped. */
static __always_inline int tunnel_frame_verdict(struct __sk_buff *skb, const struct bpf_tunnel_key *key, struct pkt4 *p)
{
	struct ethhdr *eth = (void *)(long)skb->data;
	if ((void *)(eth + 1) > (void *)(long)skb->data_end)
		return DROP(DROP_MALFORMED);
	if (skb->vlan_present || eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD))
		return DROP(DROP_VLAN);
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return ipv4_from_tunnel(skb, key, p);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return ipv6_from_tunnel(skb, key);
	return DROP(DROP_UNKNOWN_ETHERTYPE);
}

/*
 * A VXLAN packet to this host's VTEP, met at the uplink (p parsed as its outer IPv4/UDP): when
 * it is one the fast path takes — not a GSO aggregate, a plain VXLAN header, an inner Ethernet
 * frame of either IP family — the outer headers go (bpf_skb_adjust_room) and the frame is judged
 * and delivered exactly as the VXLAN device's program would, skipping the host's UDP socket, the
 * device and its GRO cell. CT_NO_FLOW: not taken, the kernel's VXLAN device receives it as before.
 */
BPFNET_NOINLINE int overlay_rx4(struct __sk_buff *skb, struct pkt4 *p)
{
	__u32 zero = 0;
	struct overlay_config *oc = bpf_map_lookup_elem(&ovl_cfg, &zero);
	if (!oc || !oc->vxlan_ifindex || overlay_gso_aggregate(skb))
		return CT_NO_FLOW;
	struct overlay_vxlan_hdr vx;
	if (bpf_skb_load_bytes(skb, p->l4_off + 8, &vx, sizeof(vx)) < 0)
		return CT_NO_FLOW;
	if (vx.flags != bpf_htonl(VXLAN_F_VNI) || (vx.vni & bpf_htonl(0xff)))
		return CT_NO_FLOW;
	__be16 inner_proto;
	__u32 inner_eth = p->l4_off + 8 + sizeof(vx);
	if (bpf_skb_load_bytes(skb, inner_eth + 12, &inner_proto, sizeof(inner_proto)) < 0)
		return CT_NO_FLOW;
	__u64 decap;
	if (inner_proto == bpf_htons(ETH_P_IP))
		decap = BPF_F_ADJ_ROOM_DECAP_L3_IPV4;
	else if (inner_proto == bpf_htons(ETH_P_IPV6))
		decap = BPF_F_ADJ_ROOM_DECAP_L3_IPV6;
	else
		return CT_NO_FLOW;
	struct bpf_tunnel_key key = {};
	key.tunnel_id = bpf_ntohl(vx.vni) >> 8;
	key.remote_ipv4 = bpf_ntohl(p->t.saddr);
	/* Outer IPv4, UDP, VXLAN and the inner Ethernet header go (everything between the outer
	 * Ethernet header and the inner IP header); the outer Ethernet header stays for the inner
	 * packet, its type set to the inner one's (its MACs are set at delivery). */
	if (bpf_skb_adjust_room(skb, -(__s32)inner_eth, BPF_ADJ_ROOM_MAC, decap) < 0)
		return DROP(DROP_MALFORMED);
	if (bpf_skb_store_bytes(skb, 12, &inner_proto, sizeof(inner_proto), 0) < 0)
		return DROP(DROP_MALFORMED);
	/* From here p is the inner packet's (drops are reported with its addresses, as the device's are). */
	return tunnel_frame_verdict(skb, &key, p);
}

#endif
