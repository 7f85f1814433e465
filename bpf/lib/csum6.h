/* Rewriting IPv6 addresses and L4 ports. IPv6 has no header checksum; TCP, UDP and ICMPv6
 * checksums all cover the pseudo header, so an address change is one diff applied to the L4
 * checksum with BPF_F_PSEUDO_HDR (correct for CHECKSUM_PARTIAL packets too). */
#ifndef BPFNET_LIB_CSUM6_H
#define BPFNET_LIB_CSUM6_H

#include "csum.h"
#include "pkt6.h"

#define IP6_SRC_OFF (ETH_HLEN + 8)
#define IP6_DST_OFF (ETH_HLEN + 24)
#define IP6_HOPLIMIT_OFF (ETH_HLEN + 7)

static __always_inline __u32 l4_csum_off6(const struct pkt6 *p)
{
	if (p->t.proto == IPPROTO_TCP)
		return p->l4_off + 16;
	if (p->t.proto == IPPROTO_UDP)
		return p->l4_off + 6;
	if (p->t.proto == IPPROTO_ICMPV6)
		return p->l4_off + 2;
	return 0;
}

static __always_inline __u64 l4_flags6(const struct pkt6 *p)
{
	return p->t.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
}

static __always_inline int rewrite_addr6(struct __sk_buff *skb, const struct pkt6 *p, __u32 off, const struct addr6 *from, const struct addr6 *to)
{
	if (addr6_eq(from, to))
		return 0;
	__u32 csum = l4_csum_off6(p);
	/* Later fragments carry no L4 header: only the address changes. */
	if (csum && p->l4) {
		__s64 diff = bpf_csum_diff((__be32 *)from, sizeof(*from), (__be32 *)to, sizeof(*to), 0);
		if (diff < 0)
			return -1;
		if (bpf_l4_csum_replace(skb, csum, 0, (__u32)diff, BPF_F_PSEUDO_HDR | l4_flags6(p)) < 0)
			return -1;
	}
	return bpf_skb_store_bytes(skb, off, to, sizeof(*to), 0);
}

static __always_inline int rewrite_port6(struct __sk_buff *skb, const struct pkt6 *p, __u32 off, __be16 from, __be16 to)
{
	if (from == to)
		return 0;
	__u32 csum = l4_csum_off6(p);
	if (csum && bpf_l4_csum_replace(skb, csum, from, to, l4_flags6(p) | sizeof(to)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0);
}

static __always_inline int nat_rewrite6(struct __sk_buff *skb, const struct pkt6 *p, const struct addr6 *saddr, const struct addr6 *daddr, __be16 sport, __be16 dport)
{
	if (rewrite_addr6(skb, p, IP6_SRC_OFF, &p->t.saddr, saddr) < 0)
		return -1;
	if (rewrite_addr6(skb, p, IP6_DST_OFF, &p->t.daddr, daddr) < 0)
		return -1;
	if (!p->has_ports)
		return 0;
	if (p->t.proto == IPPROTO_ICMPV6) {
		__u32 id_off = p->l4_off + 4;
		if (p->icmp_type == ICMP6_ECHO_REQUEST)
			return rewrite_port6(skb, p, id_off, p->t.sport, sport);
		return rewrite_port6(skb, p, id_off, p->t.dport, dport);
	}
	if (rewrite_port6(skb, p, p->l4_off, p->t.sport, sport) < 0)
		return -1;
	return rewrite_port6(skb, p, p->l4_off + 2, p->t.dport, dport);
}

/* A routed hop: hop limit down by one (no header checksum to fix). */
static __always_inline int hop_decrement6(struct __sk_buff *skb, const struct pkt6 *p)
{
	__u8 hl = p->hop_limit - 1;
	return bpf_skb_store_bytes(skb, IP6_HOPLIMIT_OFF, &hl, sizeof(hl), 0);
}

#endif
