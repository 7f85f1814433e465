/* An IPv6 packet's 5-tuple and header offsets. Extension headers (hop-by-hop, routing,
 * destination options, fragment) are walked to the upper-layer header, a bounded number of
 * them; only the first fragment carries ports. Read with bpf_skb_load_bytes: the offsets are
 * variable, and a copy on the stack is what the verifier checks most simply. */
#ifndef BPFNET_LIB_PKT6_H
#define BPFNET_LIB_PKT6_H

#include "common.h"
#include "pkt.h"
#include "../shared/datapath.h"

#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_ICMPV6 58
#define IPPROTO_NONE6 59
#define IPPROTO_DSTOPTS 60

#define IP6_HLEN 40
#define IP6_EXT_MAX 4

#define ICMP6_DST_UNREACH 1
#define ICMP6_PACKET_TOO_BIG 2
#define ICMP6_TIME_EXCEEDED 3
#define ICMP6_PARAM_PROB 4
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129
#define ICMP6_MLD_QUERY 130
#define ICMP6_MLD_REPORT 131
#define ICMP6_MLD_DONE 132
#define ND_ROUTER_SOLICIT 133
#define ND_ROUTER_ADVERT 134
#define ND_NEIGHBOR_SOLICIT 135
#define ND_NEIGHBOR_ADVERT 136
#define ND_REDIRECT 137
#define ICMP6_MLD2_REPORT 143

struct pkt6 {
	struct ct_key6 t;   /* hook left 0: the caller sets it */
	__u32 l4_off;
	__u8 tcp_flags;
	__u8 hop_limit;
	__u8 icmp_type;     /* ICMPv6: the type; the tuple holds the echo id */
	__u8 icmp_code;
	__u8 has_ports;     /* 0 for non-first fragments and ICMPv6 other than echo */
	__u8 frag;          /* part of a fragmented datagram (first or later) */
	__u8 l4;            /* the upper-layer header is in this packet (TCP, UDP, ICMPv6) */
	__u8 pad;
};

static __always_inline int addr6_eq(const struct addr6 *a, const struct addr6 *b)
{
	return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] && a->w[3] == b->w[3];
}

static __always_inline int addr6_zero(const struct addr6 *a)
{
	return (a->w[0] | a->w[1] | a->w[2] | a->w[3]) == 0;
}

/* a & mask == subnet */
static __always_inline int addr6_in(const struct addr6 *a, const struct addr6 *subnet, const struct addr6 *mask)
{
	return (a->w[0] & mask->w[0]) == subnet->w[0] && (a->w[1] & mask->w[1]) == subnet->w[1] &&
	       (a->w[2] & mask->w[2]) == subnet->w[2] && (a->w[3] & mask->w[3]) == subnet->w[3];
}

/* fe80::/10 */
static __always_inline int addr6_linklocal(const struct addr6 *a)
{
	return (bpf_ntohl(a->w[0]) & 0xffc00000) == 0xfe800000;
}

/* ff00::/8 */
static __always_inline int addr6_multicast(const struct addr6 *a)
{
	return (bpf_ntohl(a->w[0]) & 0xff000000) == 0xff000000;
}

/* ::1 and :: */
static __always_inline int addr6_loopback_or_zero(const struct addr6 *a)
{
	return (a->w[0] | a->w[1] | a->w[2]) == 0 && (a->w[3] == 0 || a->w[3] == bpf_htonl(1));
}

/* A source no sender on a device may claim: loopback, unspecified (outside ND), multicast,
 * IPv4-mapped (::ffff:0:0/96, which would let IPv4 rules be bypassed). */
static __always_inline int addr6_martian_src(const struct addr6 *a)
{
	return addr6_loopback_or_zero(a) || addr6_multicast(a) || ((a->w[0] | a->w[1]) == 0 && a->w[2] == bpf_htonl(0xffff));
}

/* ICMPv6 messages that neighbour discovery and MLD need on the link. */
static __always_inline int icmp6_link_local_type(__u8 type)
{
	return (type >= ICMP6_MLD_QUERY && type <= ND_REDIRECT) || type == ICMP6_MLD2_REPORT;
}

/* Parses the IPv6 header at ETH_HLEN and its upper-layer header. Returns 0, or -1 if truncated/invalid. */
static __always_inline int pkt6_parse(struct __sk_buff *skb, struct pkt6 *p)
{
	struct ipv6hdr ip6;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) < 0)
		return -1;
	if ((ip6.version) != 6)
		return -1;
	__builtin_memcpy(&p->t.saddr, &ip6.saddr, 16);
	__builtin_memcpy(&p->t.daddr, &ip6.daddr, 16);
	p->t.sport = 0;
	p->t.dport = 0;
	p->t.hook = 0;
	p->t.pad = 0;
	p->hop_limit = ip6.hop_limit;
	p->tcp_flags = 0;
	p->icmp_type = 0;
	p->icmp_code = 0;
	p->has_ports = 0;
	p->frag = 0;
	p->l4 = 0;
	p->pad = 0;
	__u8 nh = ip6.nexthdr;
	__u32 off = ETH_HLEN + IP6_HLEN;
#pragma unroll
	for (int i = 0; i < IP6_EXT_MAX; i++) {
		if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS) {
			__u8 ext[2];
			if (bpf_skb_load_bytes(skb, off, ext, 2) < 0)
				return -1;
			nh = ext[0];
			off += ((__u32)ext[1] + 1) * 8;
		} else if (nh == IPPROTO_FRAGMENT) {
			__u8 ext[4];
			if (bpf_skb_load_bytes(skb, off, ext, 4) < 0)
				return -1;
			nh = ext[0];
			off += 8;
			p->frag = 1;
			/* A later fragment (offset != 0): no upper-layer header. */
			if (((__u16)ext[2] << 8 | ext[3]) & 0xfff8) {
				p->t.proto = nh;
				p->l4_off = off;
				return 0;
			}
		}
	}
	p->t.proto = nh;
	p->l4_off = off;
	if (nh == IPPROTO_TCP) {
		__u8 tcp[14];
		if (bpf_skb_load_bytes(skb, off, tcp, sizeof(tcp)) < 0)
			return -1;
		__builtin_memcpy(&p->t.sport, &tcp[0], 2);
		__builtin_memcpy(&p->t.dport, &tcp[2], 2);
		p->tcp_flags = tcp[13];
		p->has_ports = 1;
		p->l4 = 1;
	} else if (nh == IPPROTO_UDP) {
		__u8 udp[4];
		if (bpf_skb_load_bytes(skb, off, udp, sizeof(udp)) < 0)
			return -1;
		__builtin_memcpy(&p->t.sport, &udp[0], 2);
		__builtin_memcpy(&p->t.dport, &udp[2], 2);
		p->has_ports = 1;
		p->l4 = 1;
	} else if (nh == IPPROTO_ICMPV6) {
		__u8 icmp[8];
		if (bpf_skb_load_bytes(skb, off, icmp, sizeof(icmp)) < 0)
			return -1;
		p->icmp_type = icmp[0];
		p->icmp_code = icmp[1];
		p->l4 = 1;
		/* Echo ids travel as a port, as for ICMPv4. */
		if (icmp[0] == ICMP6_ECHO_REQUEST) {
			__builtin_memcpy(&p->t.sport, &icmp[4], 2);
			p->has_ports = 1;
		} else if (icmp[0] == ICMP6_ECHO_REPLY) {
			__builtin_memcpy(&p->t.dport, &icmp[4], 2);
			p->has_ports = 1;
		}
	}
	return 0;
}

#endif
