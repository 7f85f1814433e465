/* The overlay benchmark's floor (bench/overlay.ts, overlayFloorPair), not part of the datapath:
 * the least any eBPF VXLAN overlay can do on the datapath's own hooks. One sandbox per host,
 * one peer: IPv4 to the peer's address is wrapped in fixed outer headers at the tc ingress of
 * the sandbox's host veth and sent out of the uplink (a plain redirect, as overlay_encap_direct
 * in lib/overlay.h does); at the uplink's tc ingress, VXLAN to this host on the floor's own
 * port and VNI is unwrapped and put straight into the sandbox (redirect_peer, as
 * lib/overlay_rx.h does). No map, no lookup, no route, no check of who sent it. This ÷ Docker's
 * way bounds what bpfnet's overlay can reach against Docker's on these hooks; cross-host ÷ this
 * is what its maps, checks and routing cost.
 *
 * GSO: an aggregate is encapsulated whole (bpf_skb_adjust_room marks it a UDP tunnel
 * aggregate) and, with FIXED_GSO both ways, keeps its segment size, which the sandbox's MTU
 * already sized for the 50 bytes. Checked with iperf3 on kernel 6.18: aggregates of up to 64 KB
 * cross the underlay bridge whole (the veths take them; nothing segments them in software),
 * are unwrapped here and delivered without a drop, at the kernel routing's rate and with its
 * retransmissions (the lab's veth backlogs reorder both alike). So the floor's throughput rows
 * are a floor too; bpfnet sends its aggregates through the collect_md VXLAN device instead. */
#include "lib/common.h"
#include "lib/csum.h"

/* The VXLAN header's I flag (the VNI is valid), the only one the kernel's device accepts. */
#define OFLOOR_VXLAN_FLAG_VNI 0x08000000

/* Set by the loader (bench/overlay.ts) before load: one object per host. */
const volatile __be32 ofloor_local_vtep = 0;   /* this host's underlay address */
const volatile __be32 ofloor_remote_vtep = 0;  /* the peer's host's underlay address */
const volatile __be32 ofloor_peer_addr = 0;    /* the peer sandbox's address */
const volatile __be16 ofloor_port = 0;         /* the floor's own UDP port: neither bpfnet's VXLAN nor Docker's way sees it */
const volatile __be32 ofloor_vni = 0;          /* VNI << 8, network order, as on the wire */
const volatile __u32 ofloor_uplink_ifindex = 0;
const volatile __u32 ofloor_sandbox_ifindex = 0;         /* the sandbox's host veth */
const volatile __u8 ofloor_uplink_mac[ETH_ALEN] = {};    /* outer source */
const volatile __u8 ofloor_remote_mac[ETH_ALEN] = {};    /* outer destination: the peer host's uplink */
const volatile __u8 ofloor_veth_mac[ETH_ALEN] = {};      /* inner source into the sandbox */
const volatile __u8 ofloor_sandbox_mac[ETH_ALEN] = {};   /* inner destination */

/* Outer IPv4, UDP, VXLAN and the inner Ethernet header: 50 bytes on the wire (the struct is
 * padded to 52; not packed, so that the IPv4 header stays 4-byte aligned for bpf_csum_diff). */
struct ofloor_outer {
	struct iphdr ip;
	struct udphdr udp;
	__be32 vx_flags;
	__be32 vx_vni;
	struct ethhdr inner;
};

#define OFLOOR_ENCAP_LEN 50u
_Static_assert(__builtin_offsetof(struct ofloor_outer, inner) + sizeof(struct ethhdr) == OFLOOR_ENCAP_LEN, "VXLAN outer headers are 50 bytes");
/* BPF_F_ADJ_ROOM_ENCAP_L2(len) of linux/bpf.h, a macro vmlinux.h cannot carry. */
#define OFLOOR_ADJ_ROOM_ENCAP_L2(len) (((__u64)(len) & 0xff) << 56)
/* Source ports from the kernel's default ephemeral range, spread by the flow's hash (as the
 * kernel's VXLAN device and the datapath pick them): the same packets on the wire. */
#define OFLOOR_SPORT_MIN 32768
#define OFLOOR_SPORT_MAX 61000

/* tc ingress of the sandbox's host veth: IPv4 to the peer, into the tunnel and out of the uplink. */
SEC("tc")
int ofloor_encap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->daddr != ofloor_peer_addr)
		return TC_PASS;
	struct ofloor_outer h;
	/* The sandbox's own frame header becomes the inner one; the peer rewrites its MACs anyway. */
	__builtin_memcpy(&h.inner, eth, sizeof(h.inner));
	__u32 hash = bpf_get_hash_recalc(skb);
	/* FIXED_GSO: an aggregate's segments keep their size, which the sandbox's MTU (1450) already
	 * leaves room for the 50 bytes in. */
	if (bpf_skb_adjust_room(skb, OFLOOR_ENCAP_LEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
					BPF_F_ADJ_ROOM_ENCAP_L2_ETH | OFLOOR_ADJ_ROOM_ENCAP_L2(sizeof(struct ethhdr))) < 0)
		return TC_ACT_SHOT;
	__u16 outer_len = skb->len - ETH_HLEN;
	__builtin_memset(&h.ip, 0, sizeof(h.ip));
	h.ip.version = 4;
	h.ip.ihl = 5;
	h.ip.tot_len = bpf_htons(outer_len);
	h.ip.ttl = 64;
	h.ip.protocol = IPPROTO_UDP;
	h.ip.saddr = ofloor_local_vtep;
	h.ip.daddr = ofloor_remote_vtep;
	h.ip.check = csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&h.ip, sizeof(h.ip), 0));
	h.udp.source = bpf_htons(OFLOOR_SPORT_MIN + (__u16)(((__u64)hash * (OFLOOR_SPORT_MAX - OFLOOR_SPORT_MIN)) >> 32));
	h.udp.dest = ofloor_port;
	h.udp.len = bpf_htons(outer_len - sizeof(struct iphdr));
	h.udp.check = 0; /* optional over IPv4, and the kernel's VXLAN device sends none either */
	h.vx_flags = bpf_htonl(OFLOOR_VXLAN_FLAG_VNI);
	h.vx_vni = ofloor_vni;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &h, OFLOOR_ENCAP_LEN, 0) < 0)
		return TC_ACT_SHOT;
	/* The outer Ethernet type stays: the inner packet is IPv4 too. */
	if (set_const_macs(skb, ofloor_uplink_mac, ofloor_remote_mac) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(ofloor_uplink_ifindex, 0);
}

/* tc ingress of the uplink: the floor's VXLAN to this host, unwrapped into the sandbox;
 * everything else goes on to the next filter (bpfnet's datapath) untouched. */
SEC("tc")
int ofloor_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ofloor_outer *h = data + ETH_HLEN;
	if ((void *)h + OFLOOR_ENCAP_LEN > data_end)
		return TC_PASS;
	/* No IP options, no fragment: the floor's own packets have neither. */
	if (eth->h_proto != bpf_htons(ETH_P_IP) || h->ip.ihl != 5 || h->ip.protocol != IPPROTO_UDP ||
	    h->ip.daddr != ofloor_local_vtep || h->udp.dest != ofloor_port || h->vx_vni != ofloor_vni ||
	    (h->ip.frag_off & bpf_htons(0x3fff)) || h->inner.h_proto != bpf_htons(ETH_P_IP))
		return TC_PASS;
	/* Outer IPv4, UDP, VXLAN and the inner Ethernet header go; the outer Ethernet header stays
	 * for the inner packet (same type) with the MACs the sandbox expects. */
	if (bpf_skb_adjust_room(skb, -(__s32)OFLOOR_ENCAP_LEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_DECAP_L3_IPV4) < 0)
		return TC_ACT_SHOT;
	if (set_const_macs(skb, ofloor_veth_mac, ofloor_sandbox_mac) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect_peer(ofloor_sandbox_ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
