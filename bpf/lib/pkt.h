/* An IPv4 packet's 5-tuple and header offsets, parsed from an skb with direct packet
 * access. Only the first fragment carries ports; later fragments are reported as such. */
#ifndef BPFNET_LIB_PKT_H
#define BPFNET_LIB_PKT_H

#include "common.h"
#include "../shared/datapath.h"

#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

struct pkt4 {
	struct ct_key4 t;   /* hook left 0: the caller sets it */
	__u32 l4_off;
	__u8 tcp_flags;
	__u8 ttl;
	__u8 icmp_type;     /* ICMP: the type; the tuple holds the echo id */
	__u8 has_ports;     /* 0 for non-first fragments and ICMP other than echo */
	__u8 frag;          /* part of a fragmented datagram (first or later) */
};

/* Parses the IPv4 header at ETH_HLEN and its L4 header. Returns 0, or -1 if truncated/invalid. */
static __always_inline int pkt4_parse(struct __sk_buff *skb, struct pkt4 *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > data_end) {
		if (bpf_skb_pull_data(skb, ETH_HLEN + sizeof(struct iphdr) + 20) < 0)
			return -1;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		ip = data + ETH_HLEN;
		if ((void *)(ip + 1) > data_end)
			return -1;
	}
	__u32 ihl = ip->ihl * 4;
	if (ihl < sizeof(struct iphdr) || ihl > 60)
		return -1;
	p->t.saddr = ip->saddr;
	p->t.daddr = ip->daddr;
	p->t.proto = ip->protocol;
	p->t.sport = 0;
	p->t.dport = 0;
	p->t.hook = 0;
	p->t.pad = 0;
	p->ttl = ip->ttl;
	p->tcp_flags = 0;
	p->icmp_type = 0;
	p->has_ports = 0;
	p->frag = (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) != 0;
	p->l4_off = ETH_HLEN + ihl;
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return 0; /* a later fragment: no L4 header */
	__u32 need = 0;
	if (p->t.proto == IPPROTO_TCP)
		need = 14; /* through the flags byte */
	else if (p->t.proto == IPPROTO_UDP)
		need = 8;
	else if (p->t.proto == IPPROTO_ICMP)
		need = 8;
	else
		return 0;
	void *l4 = data + p->l4_off;
	if (l4 + need > data_end) {
		if (bpf_skb_pull_data(skb, p->l4_off + need) < 0)
			return -1;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		l4 = data + p->l4_off;
		if (l4 + 14 > data_end && p->t.proto == IPPROTO_TCP)
			return -1;
		if (l4 + 8 > data_end)
			return -1;
	}
	if (p->t.proto == IPPROTO_TCP) {
		if (l4 + 14 > data_end)
			return -1;
		struct tcphdr *tcp = l4;
		p->t.sport = tcp->source;
		p->t.dport = tcp->dest;
		p->tcp_flags = ((__u8 *)l4)[13];
		p->has_ports = 1;
	} else if (p->t.proto == IPPROTO_UDP) {
		if (l4 + 8 > data_end)
			return -1;
		struct udphdr *udp = l4;
		p->t.sport = udp->source;
		p->t.dport = udp->dest;
		p->has_ports = 1;
	} else {
		if (l4 + 8 > data_end)
			return -1;
		struct icmphdr *icmp = l4;
		p->icmp_type = icmp->type;
		/* Echo ids travel as a port: the request's "source", the reply's "destination". */
		if (icmp->type == ICMP_ECHO) {
			p->t.sport = icmp->un.echo.id;
			p->has_ports = 1;
		} else if (icmp->type == ICMP_ECHOREPLY) {
			p->t.dport = icmp->un.echo.id;
			p->has_ports = 1;
		}
	}
	return 0;
}

static __always_inline int is_multicast_or_broadcast4(__be32 addr)
{
	__u32 a = bpf_ntohl(addr);
	return (a & 0xf0000000) == 0xe0000000 || a == 0xffffffff;
}

#endif
