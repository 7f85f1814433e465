/* Overlay networks (VXLAN) in the eBPF datapath: the maps that say which overlay network a
 * local bridge carries (its VNI) and where every remote endpoint lives (its host's VTEP),
 * and the helpers the entry programs call: encapsulation towards a remote endpoint, the
 * local ARP and neighbour-advertisement answers for it, and the isolation check across
 * networks, per family. Decapsulation is lib/overlay_rx.h: at the uplink (from_uplink) for
 * plain VXLAN packets, else on the TC ingress of the one collect_md VXLAN device per host
 * (bpf/overlay.bpf.c).
 * Mirrored in src/datapath/ebpf/overlay-abi.ts: both change together. */
#ifndef BPFNET_LIB_OVERLAY_H
#define BPFNET_LIB_OVERLAY_H

#include "common.h"
#include "maps.h"
#include "verdict.h"
#include "stats.h"
#include "pkt6.h"
#include "neigh.h"

/* The VXLAN device's UDP port (VXLAN_PORT in overlay-abi.ts): the uplink decapsulates packets to it (lib/overlay_rx.h). */
#define OVERLAY_VXLAN_PORT 4789

#ifndef OVL_REMOTE_MAX
#define OVL_REMOTE_MAX 131072
#endif


/* ovl_cfg[0]: the host's VXLAN device (0: no overlay network on this host yet). */
struct overlay_config {
	__u32 vxlan_ifindex;
	__u32 flags;
};

/* ovl_net4: bridge ifindex of a local overlay network -> its VNI. */
struct overlay_net {
	__u32 vni;
	__u32 pad;
};

/* ovl_remote4: IPv4 address of an endpoint on another host -> its network and host.
 * Overlay subnets never overlap (IPAM refuses it), so the address alone is the key. */
struct overlay_remote {
	__u32 vni;
	__u32 vtep;             /* the remote host's underlay IPv4, HOST byte order (bpf_tunnel_key's) */
	__u8 mac[6];
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct overlay_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ovl_cfg SEC(".maps");

/* bridge ifindex -> struct overlay_net. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NET_MAX);
	__type(key, __u32);
	__type(value, struct overlay_net);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ovl_net4 SEC(".maps");

/* remote endpoint IPv4 -> struct overlay_remote, filled from the cluster state's watch. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OVL_REMOTE_MAX);
	__type(key, __be32);
	__type(value, struct overlay_remote);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ovl_remote4 SEC(".maps");

/* remote endpoint IPv6 -> struct overlay_remote (the same value as IPv4's): a dual-stack
 * endpoint has one entry per family, an IPv6-only one only this. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OVL_REMOTE_MAX);
	__type(key, struct addr6);
	__type(value, struct overlay_remote);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ovl_remote6 SEC(".maps");

static __always_inline __u32 overlay_vni_of(__u32 net_ifindex)
{
	struct overlay_net *on = bpf_map_lookup_elem(&ovl_net4, &net_ifindex);
	return on ? on->vni : 0;
}

/* A remote endpoint of any overlay network: from another network it is isolated as a local one is. */
static __always_inline int overlay_known4(__be32 addr)
{
	return bpf_map_lookup_elem(&ovl_remote4, &addr) != NULL;
}

/* Into the tunnel to r's host: its MAC as destination (the sandbox learnt it from the local ARP/ND
 * answer; rewriting only a stale entry), the VNI and VTEP as tunnel key, out of the VXLAN device.
 * Its own frame: the tunnel key stays off the per-family handlers' stacks (one chain fits 512 bytes). */
BPFNET_NOINLINE int overlay_encap(struct __sk_buff *skb, const struct overlay_remote *r)
{
	__u32 zero = 0;
	struct overlay_config *oc = bpf_map_lookup_elem(&ovl_cfg, &zero);
	if (!oc || !oc->vxlan_ifindex)
		return DROP(DROP_FIB_FAILED);
	struct ethhdr *l2 = (void *)(long)skb->data;
	if ((void *)(l2 + 1) > (void *)(long)skb->data_end)
		return DROP(DROP_MALFORMED);
	if (!mac_eq(l2->h_dest, r->mac) && bpf_skb_store_bytes(skb, 0, r->mac, ETH_ALEN, 0) < 0)
		return DROP(DROP_MALFORMED);
	struct bpf_tunnel_key key = {};
	key.tunnel_id = r->vni;
	key.remote_ipv4 = r->vtep;
	key.tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) < 0)
		return DROP(DROP_MALFORMED);
	return bpf_redirect(oc->vxlan_ifindex, 0);
}

/* Inside the sender's subnet, not on this host: into the tunnel to the destination's host, or
 * dropped (the same verdicts as on a bridge: unknown, another network, icc off). */
BPFNET_NOINLINE int overlay_to_remote4(struct __sk_buff *skb, __be32 daddr, const struct endpoint_info *self, const struct network_info *net)
{
	__u32 vni = overlay_vni_of(self->net_ifindex);
	struct overlay_remote *r = bpf_map_lookup_elem(&ovl_remote4, &daddr);
	if (!vni || !r)
		return DROP(DROP_UNKNOWN_DEST);
	if (r->vni != vni)
		return DROP(DROP_ISOLATION);
	if (!(net->flags & NET_F_ICC))
		return DROP(DROP_ICC_DISABLED);
	struct overlay_remote copy = *r;
	return overlay_encap(skb, &copy);
}

/* An ARP request from a sandbox for an endpoint on another host of its overlay network:
 * answered here, so no broadcast ever crosses hosts. Anything else: TC_PASS (the bridge). */
static __always_inline int overlay_arp_reply4(struct __sk_buff *skb, const struct endpoint_info *self)
{
	struct arp_frame *f = (void *)(long)skb->data;
	if ((void *)(f + 1) > (void *)(long)skb->data_end)
		return DROP(DROP_MALFORMED);
	if (f->arp.op != bpf_htons(ARP_OP_REQUEST))
		return TC_PASS;
	__be32 tpa = f->arp.tpa;
	struct overlay_remote *r = bpf_map_lookup_elem(&ovl_remote4, &tpa);
	if (!r)
		return TC_PASS;
	__u32 vni = overlay_vni_of(self->net_ifindex);
	if (!vni || r->vni != vni)
		return DROP(DROP_ISOLATION);
	if (neigh_arp_reply(skb, r->mac, tpa, self->mac, self->addr) < 0)
		return DROP(DROP_MALFORMED);
	/* Out of the host veth again: into the sandbox that asked. */
	return bpf_redirect(skb->ifindex, 0);
}

/* overlay_known4 for IPv6. */
static __always_inline int overlay_known6(const struct addr6 *addr)
{
	return bpf_map_lookup_elem(&ovl_remote6, addr) != NULL;
}

/* IPv6 inside the sender's subnet, not on this host: the same verdicts as overlay_to_remote4. */
BPFNET_NOINLINE int overlay_to_remote6(struct __sk_buff *skb, const struct addr6 *daddr, const struct endpoint_info *self, __u16 net_flags)
{
	__u32 vni = overlay_vni_of(self->net_ifindex);
	struct overlay_remote *r = bpf_map_lookup_elem(&ovl_remote6, daddr);
	if (!vni || !r)
		return DROP(DROP_UNKNOWN_DEST);
	if (r->vni != vni)
		return DROP(DROP_ISOLATION);
	if (!(net_flags & NET_F_ICC))
		return DROP(DROP_ICC_DISABLED);
	struct overlay_remote copy = *r;
	return overlay_encap(skb, &copy);
}

/* A neighbour advertisement as the sandbox's kernel expects it: solicited, override, with
 * the target's link-layer address (RFC 4861 4.4). */
struct ovl_na_frame {
	__u16 align;            /* not sent: puts the IPv6 header on a 4-byte boundary for bpf_csum_diff */
	__u8 h_dest[ETH_ALEN];
	__u8 h_source[ETH_ALEN];
	__be16 h_proto;
	__be32 ip6_flow;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	struct addr6 saddr;
	struct addr6 daddr;
	__u8 type;
	__u8 code;
	__sum16 csum;
	__be32 flags;
	struct addr6 target;
	__u8 opt_type;
	__u8 opt_len;
	__u8 opt_mac[ETH_ALEN];
} __attribute__((packed));

#define OVL_NA_LEN 32 /* ICMPv6 NA + one 8-byte option */
#define OVL_NA_AT(f, member) ((void *)((char *)(f) + __builtin_offsetof(struct ovl_na_frame, member)))

/* A neighbour solicitation from a sandbox for an endpoint on another host of its overlay
 * network: answered here as ARP is (nothing floods across hosts). TC_PASS: not one of those. */
BPFNET_NOINLINE int overlay_nd_reply6(struct __sk_buff *skb, const struct pkt6 *p, const struct endpoint_info *self)
{
	if (p->icmp_type != ND_NEIGHBOR_SOLICIT || addr6_zero(&p->t.saddr))
		return TC_PASS; /* DAD (unspecified source) is the sandbox's own business */
	struct ovl_na_frame f = {};
	if (bpf_skb_load_bytes(skb, p->l4_off + 8, &f.target, sizeof(f.target)) < 0)
		return DROP(DROP_MALFORMED);
	struct overlay_remote *r = bpf_map_lookup_elem(&ovl_remote6, &f.target);
	if (!r)
		return TC_PASS;
	__u32 vni = overlay_vni_of(self->net_ifindex);
	if (!vni || r->vni != vni)
		return DROP(DROP_ISOLATION);
	__builtin_memcpy(f.h_dest, self->mac, ETH_ALEN);
	__builtin_memcpy(f.h_source, r->mac, ETH_ALEN);
	__builtin_memcpy(f.opt_mac, r->mac, ETH_ALEN);
	f.h_proto = bpf_htons(ETH_P_IPV6);
	f.ip6_flow = bpf_htonl(0x60000000);
	f.payload_len = bpf_htons(OVL_NA_LEN);
	f.nexthdr = IPPROTO_ICMPV6;
	f.hop_limit = 255;
	f.saddr = f.target;
	f.daddr = p->t.saddr;
	f.type = ND_NEIGHBOR_ADVERT;
	f.flags = bpf_htonl(0x60000000); /* solicited, override */
	f.opt_type = 2;
	f.opt_len = 1;
	/* Checksum: the pseudo header (addresses, length, next header) and the message. */
	__be32 tail[2] = { bpf_htonl(OVL_NA_LEN), bpf_htonl(IPPROTO_ICMPV6) };
	__s64 sum = bpf_csum_diff(NULL, 0, OVL_NA_AT(&f, saddr), 32, 0);
	sum = bpf_csum_diff(NULL, 0, tail, sizeof(tail), (__u32)sum);
	sum = bpf_csum_diff(NULL, 0, OVL_NA_AT(&f, type), OVL_NA_LEN, (__u32)sum);
	__u32 c = (__u32)sum;
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	f.csum = (__sum16)~c;
	__u32 len = sizeof(f) - sizeof(f.align);
	if (bpf_skb_change_tail(skb, len, 0) < 0)
		return DROP(DROP_MALFORMED);
	if (bpf_skb_store_bytes(skb, 0, OVL_NA_AT(&f, h_dest), len, 0) < 0)
		return DROP(DROP_MALFORMED);
	/* Out of the host veth again: into the sandbox that asked. */
	return bpf_redirect(skb->ifindex, 0);
}

#endif
