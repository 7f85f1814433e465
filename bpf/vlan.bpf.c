/* The macvlan driver's programs (the forwarding itself is the kernel's macvlan device):
 *  - vlan_trunk_in   tc ingress of a trunk (IF of -o parent=IF.VID): a tagged frame is untagged
 *                    and received by its VLAN's stand-in device (IF.VID, on which that VLAN's
 *                    macvlan children hang); an unknown VID is dropped.
 *  - vlan_member_out tc egress of a stand-in: what the VLAN's children send is tagged with the
 *                    VLAN's id and sent out of the trunk. (The stand-in is one end of a veth
 *                    pair only so that it has a carrier: frames never cross the pair.)
 *  - macvlan_guard   tc egress of a macvlan child inside its sandbox: only its own MAC and
 *                    addresses leave it (the datapath's anti-spoofing, for macvlan).
 *  - macvlan_hairpin tc egress of a lower device: frames between a child and the daemon's
 *                    resolver interface are turned back in (private/vepa children never meet
 *                    a sibling inside the kernel, and the resolver is one); on a passthru
 *                    parent, a child's frames to its resolver leave by the resolver's veth.
 *  - macvlan_passthru_in tc ingress of that veth's peer: the resolver's frames are received
 *                    by the passthru parent, which hands them to its child.
 * Used where the kernel has no 8021q; the daemon otherwise makes a kernel VLAN device as Docker. */
#include "lib/common.h"
#include "shared/vlan.h"

#ifndef MAX_VLAN_PORTS
#define MAX_VLAN_PORTS 8192
#endif
#ifndef MAX_MACVLAN_CHILDREN
#define MAX_MACVLAN_CHILDREN 65536
#endif

/* {ifindex, vid} -> {ifindex, vid}: both directions of every trunk (shared/vlan.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VLAN_PORTS);
	__type(key, struct vlan_port_key);
	__type(value, struct vlan_port);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vlan_ports SEC(".maps");

/* child MAC -> the addresses it may send from. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_MACVLAN_CHILDREN);
	__type(key, struct mvg_mac);
	__type(value, struct mvg_owner);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mvg_owners SEC(".maps");

/* resolver interface MAC -> 1. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VLAN_PORTS);
	__type(key, struct mvg_mac);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mvg_hairpin SEC(".maps");

/* passthru: resolver interface MAC -> the ifindex of its veth peer (frames from the child to the
 * resolver leave the parent by that peer, arriving on the resolver interface). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VLAN_PORTS);
	__type(key, struct mvg_mac);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mvg_passthru_out SEC(".maps");

/* passthru: veth peer ifindex -> the parent's ifindex (what the resolver sends the child is
 * received by the parent, whose passthru macvlan hands everything to the child). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VLAN_PORTS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mvg_passthru_in SEC(".maps");

/* enum vlan_stat -> packets. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VLAN_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vlan_stats SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&vlan_stats, &slot);
	if (n)
		*n += 1;
}

/* One exit for every drop: counted by reason. */
static __always_inline int drop(__u32 reason)
{
	count(reason);
	return TC_ACT_SHOT;
}

SEC("tc")
int vlan_trunk_in(struct __sk_buff *skb)
{
	/* The stack moved any in-band tag into vlan_tci before tc ingress. */
	if (!skb->vlan_present)
		return TC_PASS; /* untagged: the parent's own, and its untagged children's */
	struct vlan_port_key key = { .ifindex = skb->ifindex, .vid = skb->vlan_tci & 0x0fff };
	struct vlan_port *port = bpf_map_lookup_elem(&vlan_ports, &key);
	if (!port)
		return drop(VLAN_DROP_UNKNOWN_VID);
	__u32 target = port->ifindex;
	if (bpf_skb_vlan_pop(skb) < 0)
		return drop(VLAN_DROP_UNKNOWN_VID);
	count(VLAN_STAT_UNTAGGED);
	return bpf_redirect(target, BPF_F_INGRESS);
}

SEC("tc")
int vlan_member_out(struct __sk_buff *skb)
{
	struct ethhdr *eth = (void *)(long)skb->data;
	if ((void *)(eth + 1) > (void *)(long)skb->data_end)
		return drop(MVG_DROP_MALFORMED);
	/* A child's own tag would ride inside ours (VLAN hopping through QinQ). */
	if (skb->vlan_present || eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD))
		return drop(VLAN_DROP_NESTED);
	struct vlan_port_key key = { .ifindex = skb->ifindex, .vid = 0 };
	struct vlan_port *port = bpf_map_lookup_elem(&vlan_ports, &key);
	if (!port)
		return drop(VLAN_DROP_NO_PORT);
	__u32 trunk = port->ifindex;
	if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), port->vid) < 0)
		return drop(VLAN_DROP_NO_PORT);
	count(VLAN_STAT_TAGGED);
	return bpf_redirect(trunk, 0);
}

/* clang 14 has no BPF memcmp: small fixed compares by hand. */
static __always_inline int mac_equal(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

static __always_inline int guard_ipv4(struct __sk_buff *skb, const struct mvg_owner *o)
{
	struct iphdr *iph = (void *)(long)skb->data + ETH_HLEN;
	if ((void *)(iph + 1) > (void *)(long)skb->data_end)
		return drop(MVG_DROP_MALFORMED);
	if (!(o->flags & MVG_HAS_IPV4) || iph->saddr != o->ipv4)
		return drop(MVG_DROP_IPV4);
	return TC_PASS;
}

/* ARP for Ethernet/IPv4: 8 bytes of header, then sender MAC and sender address. */
struct arp_eth4 {
	struct arphdr h;
	__u8 sha[6];
	__u8 sip[4];
} __attribute__((packed));

static __always_inline int guard_arp(struct __sk_buff *skb, const struct mvg_owner *o, const __u8 *src)
{
	struct arp_eth4 *arp = (void *)(long)skb->data + ETH_HLEN;
	if ((void *)(arp + 1) > (void *)(long)skb->data_end)
		return drop(MVG_DROP_MALFORMED);
	if (!mac_equal(arp->sha, src))
		return drop(MVG_DROP_MAC);
	__u32 sip;
	__builtin_memcpy(&sip, arp->sip, 4);
	if (!(o->flags & MVG_HAS_IPV4) || sip != o->ipv4)
		return drop(MVG_DROP_IPV4);
	return TC_PASS;
}

/* fe80::/64 with the modified EUI-64 of mac: the link-local address the kernel gives a child
 * (addrgenmode eui64 on IPv6 networks), the only link-local source it may send from. */
static __always_inline void mvg_linklocal(const __u8 *mac, __u32 *out)
{
	out[0] = bpf_htonl(0xfe800000);
	out[1] = 0;
	out[2] = bpf_htonl(((__u32)(mac[0] ^ 2) << 24) | ((__u32)mac[1] << 16) | ((__u32)mac[2] << 8) | 0xff);
	out[3] = bpf_htonl(0xfe000000 | ((__u32)mac[3] << 16) | ((__u32)mac[4] << 8) | mac[5]);
}

static __always_inline int addr6_equal(const __u32 *a, const __u32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

#define MVG_ICMPV6 58
#define MVG_ND_ROUTER_ADVERT 134
#define MVG_ND_NEIGHBOR_SOLICIT 135
#define MVG_ND_NEIGHBOR_ADVERT 136
#define MVG_ND_REDIRECT 137

/* Neighbour discovery from a child, judged as the bridge's nd_from_container judges it: it
 * answers (NA) only for its own addresses with its own MAC, asks (NS) with its own MAC, and
 * sends no router messages (the LAN's router is not a child). */
static __always_inline int guard_nd(struct __sk_buff *skb, const __u32 *own, const __u32 *ll, const __u8 *src)
{
	__u32 off = ETH_HLEN + sizeof(struct ipv6hdr);
	__u8 type;
	if (bpf_skb_load_bytes(skb, off, &type, 1) < 0)
		return drop(MVG_DROP_MALFORMED);
	if (type == MVG_ND_ROUTER_ADVERT || type == MVG_ND_REDIRECT)
		return drop(MVG_DROP_ND);
	if (type != MVG_ND_NEIGHBOR_ADVERT && type != MVG_ND_NEIGHBOR_SOLICIT)
		return TC_PASS;
	if (type == MVG_ND_NEIGHBOR_ADVERT) {
		__u32 target[4];
		if (bpf_skb_load_bytes(skb, off + 8, target, sizeof(target)) < 0)
			return drop(MVG_DROP_MALFORMED);
		if (!addr6_equal(target, own) && !addr6_equal(target, ll))
			return drop(MVG_DROP_ND);
	}
	/* The first option, when it is a link-layer address (source in NS, target in NA), must be its MAC. */
	__u8 opt[8];
	if (bpf_skb_load_bytes(skb, off + 24, opt, sizeof(opt)) < 0)
		return TC_PASS; /* no option */
	__u8 want = type == MVG_ND_NEIGHBOR_ADVERT ? 2 : 1;
	if (opt[0] == want && opt[1] == 1 && !mac_equal(&opt[2], src))
		return drop(MVG_DROP_ND);
	return TC_PASS;
}

static __always_inline int guard_ipv6(struct __sk_buff *skb, const struct mvg_owner *o, const __u8 *src)
{
	struct ipv6hdr *ip6 = (void *)(long)skb->data + ETH_HLEN;
	if ((void *)(ip6 + 1) > (void *)(long)skb->data_end)
		return drop(MVG_DROP_MALFORMED);
	if (!(o->flags & MVG_HAS_IPV6))
		return drop(MVG_DROP_IPV6);
	__u32 s[4], own[4], ll[4];
	__builtin_memcpy(s, &ip6->saddr, 16);
	__u8 next = ip6->nexthdr;
	__builtin_memcpy(own, o->ipv6, 16);
	mvg_linklocal(src, ll);
	/* Its own address, its own link-local, or the unspecified source of duplicate address detection. */
	if (!addr6_equal(s, own) && !addr6_equal(s, ll) && (s[0] | s[1] | s[2] | s[3]))
		return drop(MVG_DROP_IPV6);
	if (next == MVG_ICMPV6)
		return guard_nd(skb, own, ll, src);
	return TC_PASS;
}

SEC("tc")
int macvlan_guard(struct __sk_buff *skb)
{
	struct ethhdr *eth = (void *)(long)skb->data;
	if ((void *)(eth + 1) > (void *)(long)skb->data_end)
		return drop(MVG_DROP_MALFORMED);
	struct mvg_mac key = {};
	__builtin_memcpy(key.addr, eth->h_source, 6);
	struct mvg_owner *o = bpf_map_lookup_elem(&mvg_owners, &key);
	if (!o)
		return drop(MVG_DROP_MAC);
	if (skb->vlan_present)
		return drop(VLAN_DROP_NESTED);
	switch (eth->h_proto) {
	case bpf_htons(ETH_P_IP):
		return guard_ipv4(skb, o);
	case bpf_htons(ETH_P_ARP):
		return guard_arp(skb, o, key.addr);
	case bpf_htons(ETH_P_IPV6):
		return guard_ipv6(skb, o, key.addr);
	case bpf_htons(ETH_P_8021Q):
	case bpf_htons(ETH_P_8021AD):
		return drop(VLAN_DROP_NESTED);
	default:
		return drop(MVG_DROP_ETHERTYPE);
	}
}

SEC("tc")
int macvlan_hairpin(struct __sk_buff *skb)
{
	struct ethhdr *eth = (void *)(long)skb->data;
	/* Tagged frames are a trunk's, on their way out of it. */
	if ((void *)(eth + 1) > (void *)(long)skb->data_end || skb->vlan_present)
		return TC_PASS;
	struct mvg_mac dst = {}, src = {};
	__builtin_memcpy(dst.addr, eth->h_dest, 6);
	__builtin_memcpy(src.addr, eth->h_source, 6);
	/* passthru: a child's frame to its resolver leaves by the resolver's veth peer instead. */
	__u32 *peer = bpf_map_lookup_elem(&mvg_passthru_out, &dst);
	if (peer && bpf_map_lookup_elem(&mvg_owners, &src)) {
		count(VLAN_STAT_HAIRPIN);
		return bpf_redirect(*peer, 0);
	}
	/* Only unicast between a child of ours and a resolver: everything else goes on the wire. */
	if (!((bpf_map_lookup_elem(&mvg_hairpin, &dst) && bpf_map_lookup_elem(&mvg_owners, &src)) ||
	      (bpf_map_lookup_elem(&mvg_hairpin, &src) && bpf_map_lookup_elem(&mvg_owners, &dst))))
		return TC_PASS;
	count(VLAN_STAT_HAIRPIN);
	return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
}

/* tc ingress of a passthru resolver's veth peer: what the resolver sends (to the child, by the
 * host's /32 route and a permanent neighbour entry) is received by the parent, whose passthru
 * macvlan hands every frame to its one child. */
SEC("tc")
int macvlan_passthru_in(struct __sk_buff *skb)
{
	__u32 key = skb->ifindex;
	__u32 *parent = bpf_map_lookup_elem(&mvg_passthru_in, &key);
	if (!parent)
		return drop(VLAN_DROP_NO_PORT);
	count(VLAN_STAT_HAIRPIN);
	return bpf_redirect(*parent, BPF_F_INGRESS);
}

char LICENSE[] SEC("license") = "GPL";
