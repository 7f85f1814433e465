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
#include "nat.h"

/* The VXLAN device's UDP port (VXLAN_PORT in overlay-abi.ts): the uplink decapsulates packets to it (lib/overlay_rx.h). */
#define OVERLAY_VXLAN_PORT 4789

#ifndef OVL_REMOTE_MAX
#define OVL_REMOTE_MAX 131072
#endif


/* ovl_cfg[0]: the host's VXLAN device (0: no overlay network on this host yet). */
struct overlay_config {
	__u32 vxlan_ifindex;
	__u32 flags;            /* unused, always 0: kept so that a pinned ovl_cfg keeps its layout */
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

/* A VXLAN header (what the uplink reads when it decapsulates, and writes when it encapsulates). */
struct overlay_vxlan_hdr {
	__be32 flags;           /* only the I flag (VNI valid): the kernel's device drops the rest */
	__be32 vni;             /* VNI << 8 */
};

#define VXLAN_F_VNI 0x08000000

/* A GSO aggregate: both directions leave these to the VXLAN device. Going out, one the
 * program grew is marked for its headers to be checked (SKB_GSO_DODGY), which no veth and few
 * NICs take, so it would be split in software before the uplink and arrive packet by packet;
 * coming in, the device's GRO cell keeps it whole. */
static __always_inline int overlay_gso_aggregate(const struct __sk_buff *skb)
{
	return skb->gso_size || skb->gso_segs > 1;
}

/* The outer headers bpfnet writes itself: IPv4, UDP and VXLAN, then the inner Ethernet header. */
struct overlay_outer {
	struct iphdr ip;
	struct udphdr udp;
	struct overlay_vxlan_hdr vx;
	struct ethhdr inner;
};

/* Its 50 bytes on the wire (the struct itself is padded to 52). */
#define OVERLAY_ENCAP_LEN 50u
_Static_assert(__builtin_offsetof(struct overlay_outer, inner) + sizeof(struct ethhdr) == OVERLAY_ENCAP_LEN, "VXLAN outer headers are 50 bytes");
/* BPF_F_ADJ_ROOM_ENCAP_L2(len) of linux/bpf.h (a macro, so not in vmlinux.h). */
#define OVERLAY_ADJ_ROOM_ENCAP_L2(len) (((__u64)(len) & 0xff) << 56)
/* Scratch for the encapsulation (per CPU: a program run never nests with itself on one CPU),
 * off the stack, which the call chain down to here nearly fills. */
struct overlay_scratch {
	struct bpf_fib_lookup fib;
	struct overlay_outer h;
	struct bpf_tunnel_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct overlay_scratch);
} ovl_scratch SEC(".maps");

/* The kernel's default ephemeral range, which its VXLAN device picks source ports from. */
#define OVERLAY_SPORT_MIN 32768
#define OVERLAY_SPORT_MAX 61000

/*
 * Encapsulates in the program and sends the packet out of the underlay device itself when the
 * route to r's host is a plain one with a known neighbour: the VXLAN device's transmit, and the
 * underlay route lookup it makes for every packet (a tunnel key set by BPF is not cacheable),
 * are skipped. Returns CT_NO_FLOW, having changed nothing, when the route
 * is anything else: the VXLAN device then does it.
 */
static __always_inline int overlay_encap_direct(struct __sk_buff *skb, const struct overlay_remote *r, struct overlay_scratch *sc)
{
	__be32 vtep = bpf_htonl(r->vtep);
	__u64 now = dp_now();
	int fresh;
	struct fib_hop4 *hop = fib_hop4_get(0, vtep, skb->ifindex, now, &fresh);
	struct bpf_fib_lookup *fib = &sc->fib;
	if (fresh) {
		/* The cached answer, where the code below reads the lookup's. */
		fib->ifindex = hop->out;
		fib->ipv4_src = hop->src;
		__builtin_memcpy(fib->smac, hop->smac, ETH_ALEN);
		__builtin_memcpy(fib->dmac, hop->dmac, ETH_ALEN);
	} else {
		__builtin_memset(fib, 0, sizeof(*fib));
		fib->family = AF_INET;
		fib->ipv4_dst = vtep;
		fib->tot_len = 0; /* no MTU check: the tunnel's MTU is the sandbox's */
		fib->ifindex = skb->ifindex;
		/* BPF_FIB_LOOKUP_SRC: the source the kernel's device would take (the route's preferred one). */
		if (bpf_fib_lookup(skb, fib, sizeof(*fib), BPF_FIB_LOOKUP_SRC) != BPF_FIB_LKUP_RET_SUCCESS)
			return CT_NO_FLOW;
		if (bpf_map_lookup_elem(&net4, &fib->ifindex))
			return CT_NO_FLOW; /* the underlay route leads into a sandbox network: not ours to judge */
		fib_hop4_keep(hop, 0, vtep, skb->ifindex, now, fib);
	}
	__u32 out = fib->ifindex;
	__be16 inner_proto = skb->protocol == bpf_htons(ETH_P_IPV6) ? bpf_htons(ETH_P_IPV6) : bpf_htons(ETH_P_IP);
	__u32 hash = bpf_get_hash_recalc(skb);
	if (bpf_skb_adjust_room(skb, OVERLAY_ENCAP_LEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
					BPF_F_ADJ_ROOM_ENCAP_L2_ETH | OVERLAY_ADJ_ROOM_ENCAP_L2(sizeof(struct ethhdr))) < 0)
		return CT_NO_FLOW;
	/* Every field but the inner source MAC, which the caller put there. */
	struct overlay_outer *h = &sc->h;
	__builtin_memset(&h->ip, 0, sizeof(h->ip));
	h->udp.check = 0;
	__u16 outer_len = skb->len - sizeof(struct ethhdr);
	h->ip.version = 4;
	h->ip.ihl = 5;
	h->ip.tot_len = bpf_htons(outer_len);
	h->ip.ttl = 64;
	h->ip.protocol = IPPROTO_UDP;
	h->ip.saddr = fib->ipv4_src;
	h->ip.daddr = vtep; /* not fib->ipv4_dst: the lookup puts the gateway there */
	h->ip.check = csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&h->ip, sizeof(h->ip), 0));
	h->udp.source = bpf_htons(OVERLAY_SPORT_MIN + (__u16)(((__u64)hash * (OVERLAY_SPORT_MAX - OVERLAY_SPORT_MIN)) >> 32));
	h->udp.dest = bpf_htons(OVERLAY_VXLAN_PORT);
	h->udp.len = bpf_htons(outer_len - sizeof(struct iphdr));
	h->vx.flags = bpf_htonl(VXLAN_F_VNI);
	h->vx.vni = bpf_htonl(r->vni << 8);
	__builtin_memcpy(h->inner.h_dest, r->mac, ETH_ALEN);
	h->inner.h_proto = inner_proto;
	if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), h, OVERLAY_ENCAP_LEN, 0) < 0)
		return DROP(DROP_MALFORMED);
	__be16 outer_proto = bpf_htons(ETH_P_IP);
	if (set_macs(skb, fib->smac, fib->dmac) < 0 || bpf_skb_store_bytes(skb, 2 * ETH_ALEN, &outer_proto, sizeof(outer_proto), 0) < 0)
		return DROP(DROP_MALFORMED);
	return bpf_redirect(out, 0);
}

/* Into the tunnel to r's host: its MAC as destination (the sandbox learnt it from the local ARP/ND
 * answer), the VNI and VTEP; encapsulated here when the underlay route allows
 * (overlay_encap_direct), else as a tunnel key out of the VXLAN device.
 * Its own frame, and its buffers in ovl_scratch: the call chain's stacks must fit 512 bytes. */
BPFNET_NOINLINE int overlay_encap(struct __sk_buff *skb, const struct overlay_remote *r)
{
	__u32 zero = 0;
	struct overlay_config *oc = bpf_map_lookup_elem(&ovl_cfg, &zero);
	struct overlay_scratch *sc = bpf_map_lookup_elem(&ovl_scratch, &zero);
	if (!oc || !oc->vxlan_ifindex || !sc)
		return DROP(DROP_FIB_FAILED);
	struct ethhdr *l2 = (void *)(long)skb->data;
	if ((void *)(l2 + 1) > (void *)(long)skb->data_end)
		return DROP(DROP_MALFORMED);
	if (!overlay_gso_aggregate(skb)) {
		/* The inner frame's source: the sandbox's MAC, as the device would have carried it. */
		__builtin_memcpy(sc->h.inner.h_source, l2->h_source, ETH_ALEN);
		int verdict = overlay_encap_direct(skb, r, sc);
		if (verdict != CT_NO_FLOW)
			return verdict;
		l2 = (void *)(long)skb->data;
		if ((void *)(l2 + 1) > (void *)(long)skb->data_end)
			return DROP(DROP_MALFORMED);
	}
	if (!mac_eq(l2->h_dest, r->mac) && bpf_skb_store_bytes(skb, 0, r->mac, ETH_ALEN, 0) < 0)
		return DROP(DROP_MALFORMED);
	struct bpf_tunnel_key *key = &sc->key;
	__builtin_memset(key, 0, sizeof(*key));
	key->tunnel_id = r->vni;
	key->remote_ipv4 = r->vtep;
	key->tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, key, sizeof(*key), BPF_F_ZERO_CSUM_TX) < 0)
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
