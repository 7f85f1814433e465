/* Ethernet addresses and IPv4 ARP: the one definition every program's ARP handling shares. */
#ifndef BPFNET_LIB_ARP_H
#define BPFNET_LIB_ARP_H

#include "common.h"

/* clang 14 has no BPF memcmp: a MAC compared as three 16-bit words. */
static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return ((const __u16 *)a)[0] == ((const __u16 *)b)[0] && ((const __u16 *)a)[1] == ((const __u16 *)b)[1] &&
	       ((const __u16 *)a)[2] == ((const __u16 *)b)[2];
}

#define ARP_OP_REQUEST 1
#define ARP_OP_REPLY 2

/* An IPv4-over-Ethernet ARP message. */
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

/* The whole frame (42 bytes). */
struct arp_frame {
	__u8 h_dest[ETH_ALEN];
	__u8 h_source[ETH_ALEN];
	__be16 h_proto;
	struct arp_ipv4 arp;
} __attribute__((packed));

#endif
