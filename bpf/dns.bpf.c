/* The embedded DNS's fast path: tc ingress of a sandbox's host veth, one priority before the
 * datapath's filter. A UDP query from the sandbox to its first user-defined network's resolver
 * (the IPv4 or the IPv6 gateway), for a name the daemon published in dns_names, is answered
 * right here (A and AAAA records, or NODATA for other types) and sent back into the sandbox
 * with redirect_peer; it never reaches a socket. Anything else — other names, PTR, TCP, malformed or unusual queries — falls through
 * (TC_ACT_UNSPEC) to the next filter and on to the daemon's resolver, which stays the
 * reference. The maps are pinned, so answers go on while the daemon is down. */
#include "lib/dns.h"

#define DNS_PORT 53
#define DNS_HDR_LEN 12
#define DNS_TYPE_A 1
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_OPT 41
#define DNS_TYPE_ANY 255
#define DNS_CLASS_IN 1
#define DNS_OFF4 (ETH_HLEN + sizeof(struct iphdr) + sizeof(struct udphdr))
#define DNS_OFF6 (ETH_HLEN + sizeof(struct ipv6hdr) + sizeof(struct udphdr))
/* Where the IPv6 addresses start: they, the UDP header and the reply are one run of bytes. */
#define IP6_ADDRS_OFF (ETH_HLEN + offsetof(struct ipv6hdr, saddr))
#define IP6_CSUM_HEAD (32 + sizeof(struct udphdr))
/* Header flags, high byte: QR, opcode, AA, TC, RD; low byte: RA, rcode. */
#define DNS_QR 0x80
#define DNS_OPCODE 0x78
#define DNS_AA 0x04
#define DNS_TC 0x02
#define DNS_RD 0x01
#define DNS_RA 0x80
#define DNS_CLASSIC_UDP 512
#define DNS_EDNS_UDP 1232
#define DNS_MAX_UDP 4096

static __always_inline void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&dns_stats, &slot);
	if (n)
		*n += 1;
}

static __always_inline __u16 word(const __u8 *msg, __u32 at)
{
	return ((__u16)msg[at & (DNS_QUERY_MAX - 1)] << 8) | msg[(at + 1) & (DNS_QUERY_MAX - 1)];
}

static __always_inline __u16 ip_checksum(struct iphdr *ip)
{
	__u32 sum = 0;
	__u16 *w = (__u16 *)ip;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* Copies the question's name into key->name in lower case; returns its wire length (the
 * final zero included), or 0 when it is not a plain name that fits. */
static __always_inline __u32 read_name(const __u8 *msg, __u32 len, struct dns_name_key *key)
{
	__u32 remaining = 0;
	for (__u32 i = 0; i < DNS_NAME_MAX; i++) {
		__u32 at = DNS_HDR_LEN + i;
		if (at >= len)
			return 0;
		__u8 b = msg[at & (DNS_QUERY_MAX - 1)];
		if (remaining == 0) {
			if (b == 0)
				return i + 1;
			/* A compression pointer or an extended label type has no place in a query's name. */
			if (b > 63)
				return 0;
			remaining = b;
		} else {
			if (b >= 'A' && b <= 'Z')
				b += 'a' - 'A';
			remaining--;
		}
		key->name[i & (DNS_NAME_MAX - 1)] = b;
	}
	return 0;
}

static __always_inline bool same6(const __u8 *a, const struct in6_addr *b)
{
	const __u32 *x = (const __u32 *)a;
	return x[0] == b->in6_u.u6_addr32[0] && x[1] == b->in6_u.u6_addr32[1] && x[2] == b->in6_u.u6_addr32[2] &&
	       x[3] == b->in6_u.u6_addr32[3];
}

/* The UDP checksum of an IPv6 answer already written (its own field zero): the pseudo-header's
 * addresses, the UDP header and the reply are contiguous from IP6_ADDRS_OFF; its length and next
 * header are added as numbers. Its own frame, apart from dns_answer's. Returns it folded, in
 * network order, or -1. */
BPFNET_NOINLINE int udp6_checksum(struct __sk_buff *skb, __u32 reply_len)
{
	__u32 zero = 0;
	struct dns_scratch *s = bpf_map_lookup_elem(&dns_scratch, &zero);
	if (!s || reply_len == 0 || reply_len > DNS_REPLY_MAX)
		return -1;
	if (bpf_skb_load_bytes(skb, IP6_ADDRS_OFF, s->out, IP6_CSUM_HEAD + reply_len) < 0)
		return -1;
	/* bpf_csum_diff takes whole 32-bit words: the reply's last one padded with zeros. */
	__u32 tail = IP6_CSUM_HEAD + reply_len;
	s->out[tail & (DNS_OUT_MAX - 1)] = 0;
	s->out[(tail + 1) & (DNS_OUT_MAX - 1)] = 0;
	s->out[(tail + 2) & (DNS_OUT_MAX - 1)] = 0;
	__u32 words = (reply_len + 3) & ~3U;
	if (words > DNS_REPLY_MAX)
		return -1;
	__u32 udp_len = sizeof(struct udphdr) + reply_len;
	__s64 sum = bpf_csum_diff(NULL, 0, (__be32 *)s->out, IP6_CSUM_HEAD, bpf_htons(udp_len) + bpf_htons(IPPROTO_UDP));
	if (sum < 0)
		return -1;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&s->out[IP6_CSUM_HEAD], words, (__u32)sum);
	if (sum < 0)
		return -1;
	__u32 folded = (__u32)sum;
	folded = (folded & 0xffff) + (folded >> 16);
	folded = (folded & 0xffff) + (folded >> 16);
	folded = ~folded & 0xffff;
	/* 0 means "no checksum", which IPv6 forbids: its one's-complement twin instead. */
	return folded ? folded : 0xffff;
}

SEC("tc")
int dns_answer(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_PASS;
	__u32 ifindex = skb->ifindex;
	struct dns_client *client;
	struct udphdr *udp;
	/* The UDP payload's length as the headers give it, and where it starts. */
	__u32 len, dns_off;
	bool v6 = eth->h_proto == bpf_htons(ETH_P_IPV6);
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x3fff)))
			return TC_PASS;
		udp = (void *)(ip + 1);
		if ((void *)(udp + 1) > end || udp->dest != bpf_htons(DNS_PORT))
			return TC_PASS;
		client = bpf_map_lookup_elem(&dns_clients, &ifindex);
		/* Only the sandbox's own address to its resolver: spoofed or foreign queries are the daemon's to refuse. */
		if (!client || !(client->flags & DNS_CLIENT_V4) || client->addr != ip->saddr || client->gateway != ip->daddr)
			return TC_PASS;
		len = bpf_ntohs(udp->len);
		if (sizeof(*ip) + len > bpf_ntohs(ip->tot_len) || ETH_HLEN + bpf_ntohs(ip->tot_len) > skb->len)
			goto pass;
		dns_off = DNS_OFF4;
	} else if (v6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		/* No extension headers (fragments among them): those are the daemon's. */
		if ((void *)(ip6 + 1) > end || ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
			return TC_PASS;
		udp = (void *)(ip6 + 1);
		if ((void *)(udp + 1) > end || udp->dest != bpf_htons(DNS_PORT))
			return TC_PASS;
		client = bpf_map_lookup_elem(&dns_clients, &ifindex);
		if (!client || !(client->flags & DNS_CLIENT_V6) || !same6(client->addr6, &ip6->saddr) || !same6(client->gateway6, &ip6->daddr))
			return TC_PASS;
		len = bpf_ntohs(udp->len);
		if (len > bpf_ntohs(ip6->payload_len) || ETH_HLEN + sizeof(*ip6) + bpf_ntohs(ip6->payload_len) > skb->len)
			goto pass;
		dns_off = DNS_OFF6;
	} else {
		return TC_PASS;
	}
	if (len < sizeof(*udp) + DNS_HDR_LEN + 5 || len > sizeof(*udp) + DNS_QUERY_MAX)
		goto pass;
	len -= sizeof(*udp);

	__u32 zero = 0;
	struct dns_scratch *s = bpf_map_lookup_elem(&dns_scratch, &zero);
	if (!s)
		goto pass;
	/* Names are looked up in the client's network, whichever family the query came over. */
	__builtin_memset(&s->key, 0, sizeof(s->key));
	__builtin_memcpy(s->key.scope, client->scope, sizeof(s->key.scope));
	/* len is 17..DNS_QUERY_MAX already; written so that the verifier sees 1..DNS_QUERY_MAX. */
	if (bpf_skb_load_bytes(skb, dns_off, s->msg, ((len - 1) & (DNS_QUERY_MAX - 1)) + 1) < 0)
		goto pass;
	__u8 *msg = s->msg;
	/* A standard query (QR 0, opcode 0) with one question, nothing else but an optional OPT. */
	if ((msg[2] & (DNS_QR | DNS_OPCODE)) || word(msg, 4) != 1 || word(msg, 6) != 0 || word(msg, 8) != 0 || word(msg, 10) > 1)
		goto pass;
	bool edns = word(msg, 10) == 1;

	__u32 name_len = read_name(msg, len, &s->key);
	if (name_len == 0)
		goto pass;
	__u32 q_end = DNS_HDR_LEN + name_len + 4;
	if (q_end > len)
		goto pass;
	__u16 qtype = word(msg, q_end - 4);
	if (word(msg, q_end - 2) != DNS_CLASS_IN)
		goto pass;
	__u32 max_size = DNS_CLASSIC_UDP;
	if (edns) {
		/* OPT: root name, type 41, payload size, extended rcode, version 0, flags, rdata length. */
		if (q_end + DNS_OPT_LEN > len || msg[q_end & (DNS_QUERY_MAX - 1)] != 0 || word(msg, q_end + 1) != DNS_TYPE_OPT ||
		    msg[(q_end + 6) & (DNS_QUERY_MAX - 1)] != 0 || q_end + DNS_OPT_LEN + word(msg, q_end + 9) != len)
			goto pass;
		__u32 asked = word(msg, q_end + 3);
		max_size = asked < DNS_CLASSIC_UDP ? DNS_CLASSIC_UDP : asked > DNS_MAX_UDP ? DNS_MAX_UDP : asked;
	} else if (q_end != len) {
		goto pass;
	}

	struct dns_name_value *v = bpf_map_lookup_elem(&dns_names, &s->key);
	if (!v)
		goto pass;
	/* ANY for a name with both families: the daemon's (one record set per answer here). */
	if (qtype == DNS_TYPE_ANY && v->count6)
		goto pass;
	bool six = qtype == DNS_TYPE_AAAA;
	__u32 n = (qtype == DNS_TYPE_A || qtype == DNS_TYPE_ANY) ? v->count : six ? v->count6 : 0;
	if (n > DNS_ADDRS_MAX)
		goto pass;
	__u32 reply_len = q_end + n * (six ? DNS_RR_AAAA_LEN : DNS_RR_A_LEN) + (edns ? DNS_OPT_LEN : 0);
	if (reply_len > max_size || reply_len > DNS_REPLY_MAX)
		goto pass;
	__u32 turn = 0;
	if (n > 1) {
		/* Not atomic (clang's BPF v1 target has no fetch-and-add result): two CPUs may hand out
		 * the same order once, which round robin tolerates. */
		__u32 *t = six ? &v->turn6 : &v->turn;
		turn = *t;
		*t = turn + 1;
		turn %= n;
	}
	__u32 ttl = bpf_htonl(v->ttl);

	/* The header: the query's id, RD and opcode kept; an authoritative answer with n records. */
	msg[2] = (msg[2] & (DNS_OPCODE | DNS_RD)) | DNS_QR | DNS_AA;
	msg[3] = DNS_RA;
	msg[6] = n >> 8;
	msg[7] = n & 0xff;
	msg[10] = 0;
	msg[11] = edns ? 1 : 0;
	if (bpf_skb_change_tail(skb, dns_off + reply_len, 0) < 0)
		goto pass;
	if (bpf_skb_store_bytes(skb, dns_off, msg, DNS_HDR_LEN, 0) < 0)
		return TC_ACT_SHOT;
	__u32 at = dns_off + q_end;
	__u8 *rr = s->rr;
	/* The record's fixed part, the same for every answer: a pointer to the question's name
	 * (offset 12), the type, class IN, the ttl, the address's length. */
	__u32 rr_len = six ? DNS_RR_AAAA_LEN : DNS_RR_A_LEN;
	rr[0] = 0xc0;
	rr[1] = DNS_HDR_LEN;
	rr[2] = 0;
	rr[3] = six ? DNS_TYPE_AAAA : DNS_TYPE_A;
	rr[4] = 0;
	rr[5] = DNS_CLASS_IN;
	__builtin_memcpy(&rr[6], &ttl, 4);
	rr[10] = 0;
	rr[11] = six ? 16 : 4;
	for (__u32 i = 0; i < DNS_ADDRS_MAX; i++) {
		if (i >= n)
			break;
		__u32 pick = turn + i;
		if (pick >= n)
			pick -= n;
		if (six) {
			__builtin_memcpy(&rr[12], v->addrs6[pick & (DNS_ADDRS_MAX - 1)], 16);
		} else {
			__u32 addr = v->addrs[pick & (DNS_ADDRS_MAX - 1)];
			__builtin_memcpy(&rr[12], &addr, 4);
		}
		if (bpf_skb_store_bytes(skb, at, rr, rr_len, 0) < 0)
			return TC_ACT_SHOT;
		at += rr_len;
	}
	if (edns) {
		/* Our OPT, as the daemon writes it: payload size 1232, version 0, no options. */
		__u8 opt[DNS_OPT_LEN] = {0, 0, DNS_TYPE_OPT, DNS_EDNS_UDP >> 8, DNS_EDNS_UDP & 0xff, 0, 0, 0, 0, 0, 0};
		if (bpf_skb_store_bytes(skb, at, opt, DNS_OPT_LEN, 0) < 0)
			return TC_ACT_SHOT;
	}

	/* MACs and addresses swapped, lengths set. */
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_SHOT;
	__u8 mac[ETH_ALEN];
	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	if (v6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		udp = (void *)(ip6 + 1);
		if ((void *)(udp + 1) > end)
			return TC_ACT_SHOT;
		struct in6_addr src = ip6->saddr;
		ip6->saddr = ip6->daddr;
		ip6->daddr = src;
		ip6->payload_len = bpf_htons(sizeof(*udp) + reply_len);
		ip6->hop_limit = 64;
		__u16 sport = udp->source;
		udp->source = udp->dest;
		udp->dest = sport;
		udp->len = bpf_htons(sizeof(*udp) + reply_len);
		udp->check = 0;
		/* IPv6 has no "no checksum": computed over what was written, then stored. */
		int check = udp6_checksum(skb, reply_len);
		if (check < 0)
			return TC_ACT_SHOT;
		__u16 check16 = check;
		if (bpf_skb_store_bytes(skb, DNS_OFF6 - sizeof(*udp) + offsetof(struct udphdr, check), &check16, sizeof(check16), 0) < 0)
			return TC_ACT_SHOT;
		count(DNS_STAT_ANSWERED6);
	} else {
		struct iphdr *ip = (void *)(eth + 1);
		udp = (void *)(ip + 1);
		if ((void *)(udp + 1) > end)
			return TC_ACT_SHOT;
		__u32 src = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = src;
		ip->tot_len = bpf_htons(sizeof(*ip) + sizeof(*udp) + reply_len);
		ip->ttl = 64;
		ip->check = 0;
		ip->check = ip_checksum(ip);
		__u16 sport = udp->source;
		udp->source = udp->dest;
		udp->dest = sport;
		udp->len = bpf_htons(sizeof(*udp) + reply_len);
		/* No UDP checksum (0: none, valid for IPv4). */
		udp->check = 0;
	}
	count(DNS_STAT_ANSWERED);
	/* Straight back into the sandbox's namespace, as the datapath delivers to a sandbox. */
	return bpf_redirect_peer(ifindex, 0);

pass:
	count(DNS_STAT_PASSED);
	return TC_PASS;
}

char LICENSE[] SEC("license") = "GPL";
