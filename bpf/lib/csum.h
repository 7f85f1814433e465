/* Rewriting IPv4 addresses and L4 ports in an skb with the kernel's checksum helpers,
 * which also handle CHECKSUM_PARTIAL packets (veth and lo offload): a software-only
 * incremental update would corrupt those. */
#ifndef BPFNET_LIB_CSUM_H
#define BPFNET_LIB_CSUM_H

#include "common.h"
#include "pkt.h"

#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define IP_SRC_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define IP_DST_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))
#define IP_TTL_OFF (ETH_HLEN + offsetof(struct iphdr, ttl))

#ifndef BPF_F_PSEUDO_HDR
#define BPF_F_PSEUDO_HDR (1ULL << 4)
#endif
#ifndef BPF_F_MARK_MANGLED_0
#define BPF_F_MARK_MANGLED_0 (1ULL << 5)
#endif

/* Offset of the L4 checksum, or 0 when the protocol has none we maintain. */
static __always_inline __u32 l4_csum_off(const struct pkt4 *p)
{
	if (p->t.proto == IPPROTO_TCP)
		return p->l4_off + 16;
	if (p->t.proto == IPPROTO_UDP)
		return p->l4_off + 6;
	if (p->t.proto == IPPROTO_ICMP)
		return p->l4_off + 2;
	return 0;
}

/* UDP with a zero checksum has none: it must stay zero. */
static __always_inline __u64 l4_flags(const struct pkt4 *p)
{
	return p->t.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
}

static __always_inline int rewrite_addr4(struct __sk_buff *skb, const struct pkt4 *p, __u32 off, __be32 from, __be32 to)
{
	if (from == to)
		return 0;
	__u32 csum = l4_csum_off(p);
	/* ICMP has no pseudo header: only TCP and UDP checksums cover addresses. */
	if (csum && p->t.proto != IPPROTO_ICMP && p->has_ports &&
	    bpf_l4_csum_replace(skb, csum, from, to, BPF_F_PSEUDO_HDR | l4_flags(p) | sizeof(to)) < 0)
		return -1;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, from, to, sizeof(to)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0);
}

/* Rewrites a port-like field at offset off (a TCP/UDP port or the ICMP echo id). */
static __always_inline int rewrite_port(struct __sk_buff *skb, const struct pkt4 *p, __u32 off, __be16 from, __be16 to)
{
	if (from == to)
		return 0;
	__u32 csum = l4_csum_off(p);
	if (csum && bpf_l4_csum_replace(skb, csum, from, to, l4_flags(p) | sizeof(to)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0);
}

/* Rewrites the packet's tuple from p->t to the entry's (addresses, ports or echo id). */
static __always_inline int nat_rewrite4(struct __sk_buff *skb, const struct pkt4 *p, __be32 saddr, __be32 daddr, __be16 sport, __be16 dport)
{
	if (rewrite_addr4(skb, p, IP_SRC_OFF, p->t.saddr, saddr) < 0)
		return -1;
	if (rewrite_addr4(skb, p, IP_DST_OFF, p->t.daddr, daddr) < 0)
		return -1;
	if (!p->has_ports)
		return 0;
	if (p->t.proto == IPPROTO_ICMP) {
		__u32 id_off = p->l4_off + 4;
		if (p->icmp_type == ICMP_ECHO)
			return rewrite_port(skb, p, id_off, p->t.sport, sport);
		return rewrite_port(skb, p, id_off, p->t.dport, dport);
	}
	if (rewrite_port(skb, p, p->l4_off, p->t.sport, sport) < 0)
		return -1;
	return rewrite_port(skb, p, p->l4_off + 2, p->t.dport, dport);
}

/* A routed hop: TTL down by one, IPv4 checksum adjusted. */
static __always_inline int ttl_decrement(struct __sk_buff *skb, const struct pkt4 *p)
{
	__u8 ttl = p->ttl - 1;
	/* The checksum covers TTL as the high byte of a 16-bit word. */
	__be16 from = bpf_htons((__u16)p->ttl << 8);
	__be16 to = bpf_htons((__u16)ttl << 8);
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, from, to, sizeof(from)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, IP_TTL_OFF, &ttl, sizeof(ttl), 0);
}

/* A bpf_csum_diff sum folded into a header checksum. */
static __always_inline __u16 csum_fold(__s64 sum)
{
	__u32 s = (__u32)sum;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

static __always_inline int set_macs(struct __sk_buff *skb, const __u8 *src, const __u8 *dst)
{
	if (bpf_skb_store_bytes(skb, 0, dst, ETH_ALEN, 0) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, ETH_ALEN, src, ETH_ALEN, 0);
}

/* set_macs from MACs a loader set as `const volatile` program constants (the bench's floors),
 * copied byte by byte through the volatile pointer: a cast to a plain one would let the
 * compiler fold the loader's values into the zeros they are declared with. */
static __always_inline int set_const_macs(struct __sk_buff *skb, const volatile __u8 *src, const volatile __u8 *dst)
{
	__u8 s[ETH_ALEN], d[ETH_ALEN];
	for (int i = 0; i < ETH_ALEN; i++) {
		s[i] = src[i];
		d[i] = dst[i];
	}
	return set_macs(skb, s, d);
}

#endif
