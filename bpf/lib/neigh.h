/* Neighbour answers built in the datapath: an ARP reply or an IPv6 neighbour advertisement
 * written over the request it answers. With them a network needs no kernel bridge port per
 * sandbox (a bridge takes 1,024 at most): the gateway and the sandboxes of a network learn
 * each other's MACs from the programs, never from a broadcast on a shared link. */
#ifndef BPFNET_LIB_NEIGH_H
#define BPFNET_LIB_NEIGH_H

#include "common.h"
#include "pkt6.h"
#include "arp.h"

/* Rewrites the request in skb into the reply "spa is at sha", addressed to (tha, tpa). */
static __always_inline int neigh_arp_reply(struct __sk_buff *skb, const __u8 *sha, __be32 spa, const __u8 *tha, __be32 tpa)
{
	struct arp_frame r = {
		.h_proto = bpf_htons(ETH_P_ARP),
		.arp = {
			.htype = bpf_htons(1),
			.ptype = bpf_htons(ETH_P_IP),
			.hlen = ETH_ALEN,
			.plen = 4,
			.op = bpf_htons(ARP_OP_REPLY),
			.spa = spa,
			.tpa = tpa,
		},
	};
	__builtin_memcpy(r.h_dest, tha, ETH_ALEN);
	__builtin_memcpy(r.h_source, sha, ETH_ALEN);
	__builtin_memcpy(r.arp.sha, sha, ETH_ALEN);
	__builtin_memcpy(r.arp.tha, tha, ETH_ALEN);
	return bpf_skb_store_bytes(skb, 0, &r, sizeof(r), 0);
}

#define ND_NA_LEN 32 /* ICMPv6 header, flags, target, target link-layer address option */
#define ND_NA_ROUTER 0x80
#define ND_NA_SOLICITED 0x40
#define ND_NA_OVERRIDE 0x20

/* The pseudo header of the ICMPv6 checksum, then the IPv6 header's own fields after it. */
struct neigh_na_ip {
	struct addr6 saddr;
	struct addr6 daddr;
	__be32 len;
	__be32 nexthdr;
};

struct neigh_na_icmp {
	__u8 type;
	__u8 code;
	__sum16 csum;
	__u8 flags;
	__u8 reserved[3];
	struct addr6 target;
	__u8 opt_type;
	__u8 opt_len;
	__u8 mac[ETH_ALEN];
};

/* What an advertisement says and to whom (BPF calls take five arguments at most). */
struct neigh_answer {
	struct addr6 target;    /* the address asked about */
	struct addr6 asker;     /* the solicitation's source (:: for duplicate address detection) */
	__u8 mac[ETH_ALEN];     /* where target is */
	__u8 asker_mac[ETH_ALEN];
	__u32 router;           /* the target is the network's router (the gateway) */
};

/* Not inlined: the ~120 bytes of the advertisement stay out of the callers' frames (512-byte stack).
 * Rewrites the solicitation in skb into "target is at mac": solicited and unicast when the
 * asker has an address, to all nodes when it had none (duplicate address detection). The
 * frame is resized to the advertisement. */
BPFNET_NOINLINE int neigh_advert6(struct __sk_buff *skb, const struct neigh_answer *a)
{
	struct neigh_na_ip ph = {
		.len = bpf_htonl(ND_NA_LEN),
		.nexthdr = bpf_htonl(IPPROTO_ICMPV6),
	};
	ph.saddr = a->target;
	int dad = addr6_zero(&a->asker);
	__u8 dmac[ETH_ALEN];
	if (dad) {
		ph.daddr.w[0] = bpf_htonl(0xff020000);
		ph.daddr.w[1] = 0;
		ph.daddr.w[2] = 0;
		ph.daddr.w[3] = bpf_htonl(1);
		dmac[0] = 0x33;
		dmac[1] = 0x33;
		dmac[2] = 0;
		dmac[3] = 0;
		dmac[4] = 0;
		dmac[5] = 1;
	} else {
		ph.daddr = a->asker;
		__builtin_memcpy(dmac, a->asker_mac, ETH_ALEN);
	}
	struct neigh_na_icmp na = {
		.type = ND_NEIGHBOR_ADVERT,
		.flags = (a->router ? ND_NA_ROUTER : 0) | (dad ? 0 : ND_NA_SOLICITED) | ND_NA_OVERRIDE,
		.opt_type = 2, /* target link-layer address */
		.opt_len = 1,
	};
	na.target = a->target;
	__builtin_memcpy(na.mac, a->mac, ETH_ALEN);
	__s64 sum = bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), 0);
	if (sum < 0)
		return -1;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&na, sizeof(na), (__u32)sum);
	if (sum < 0)
		return -1;
	__u32 c = (__u32)sum;
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	na.csum = (__sum16)~c;

	if (bpf_skb_change_tail(skb, ETH_HLEN + IP6_HLEN + ND_NA_LEN, 0) < 0)
		return -1;
	__u8 l2[ETH_HLEN];
	__builtin_memcpy(l2, dmac, ETH_ALEN);
	__builtin_memcpy(l2 + ETH_ALEN, a->mac, ETH_ALEN);
	l2[12] = 0x86;
	l2[13] = 0xdd;
	/* version 6, no traffic class or flow label; hop limit 255 as ND requires. */
	__u8 ip[8] = {0x60, 0, 0, 0, 0, ND_NA_LEN, IPPROTO_ICMPV6, 255};
	if (bpf_skb_store_bytes(skb, 0, l2, sizeof(l2), 0) < 0 || bpf_skb_store_bytes(skb, ETH_HLEN, ip, sizeof(ip), 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + 8, &ph.saddr, 32, 0) < 0 || bpf_skb_store_bytes(skb, ETH_HLEN + IP6_HLEN, &na, sizeof(na), 0) < 0)
		return -1;
	return 0;
}

#endif
