/* The macvlan driver's kernel half (bpf/vlan.bpf.c): 802.1Q trunks tagged in eBPF where the
 * kernel has no 8021q, the anti-spoofing guard on each macvlan child, and the resolver hairpin.
 * Mirrored in src/drivers/macvlan/vlan-abi.ts: both change together. */
#ifndef BPFNET_SHARED_VLAN_H
#define BPFNET_SHARED_VLAN_H

/* vlan_ports: one key per direction of a trunk.
 *   {trunk ifindex, vid}  -> {stand-in ifindex, 0}: a frame tagged vid arriving on the trunk
 *                            is untagged and received by that VLAN's stand-in device;
 *   {stand-in ifindex, 0} -> {trunk ifindex, vid}: a frame the VLAN's children send (the
 *                            stand-in's egress) is tagged vid and sent out of the trunk.
 * vid 0 is never a VLAN (802.1p priority tags only), so the two kinds never collide. */
struct vlan_port_key {
	__u32 ifindex;
	__u16 vid;
	__u16 pad;
};

struct vlan_port {
	__u32 ifindex;
	__u16 vid;
	__u16 pad;
};

/* mvg_owners: a macvlan child's MAC -> the addresses it may send from (per family). */
struct mvg_mac {
	__u8 addr[6];
	__u16 pad;
};

#define MVG_HAS_IPV4 1
#define MVG_HAS_IPV6 2

struct mvg_owner {
	__u32 flags;
	__u32 ipv4; /* network byte order */
	__u8 ipv6[16];
};

/* mvg_hairpin: MACs of the daemon's resolver interfaces; a frame to or from one that leaves a
 * lower device is turned back in, so private- and vepa-mode children reach their resolver. */

/* mvg_passthru_out: a passthru network's resolver MAC -> ifindex of its veth peer (u32);
 * mvg_passthru_in: that peer's ifindex -> the passthru parent's ifindex (u32). The kernel allows
 * no second macvlan on a passthru parent, so the resolver sits on a veth pair instead. */

enum vlan_stat {
	VLAN_STAT_TAGGED = 0,       /* frames tagged and sent out of a trunk */
	VLAN_STAT_UNTAGGED = 1,     /* frames untagged and delivered into a VLAN */
	VLAN_STAT_HAIRPIN = 2,      /* frames to/from a resolver turned back in */
	VLAN_DROP_UNKNOWN_VID = 3,  /* tagged for a VLAN no network of ours is on */
	VLAN_DROP_NESTED = 4,       /* a child sent a frame that already carried a tag */
	VLAN_DROP_NO_PORT = 5,      /* a stand-in with no trunk entry (being torn down) */
	MVG_DROP_MAC = 6,           /* a child sent with a MAC that is not its own */
	MVG_DROP_IPV4 = 7,          /* ... with an IPv4 source (or ARP sender) not its own */
	MVG_DROP_IPV6 = 8,          /* ... with an IPv6 source not its own */
	MVG_DROP_ETHERTYPE = 9,     /* ... a frame that is neither IPv4, ARP nor IPv6 */
	MVG_DROP_MALFORMED = 10,    /* ... a frame too short for its own headers */
	MVG_DROP_ND = 11,           /* ... a neighbour advertisement for an address not its own, an ND
	                             * option with another MAC, or a router message (DROP_SPOOFED_ND) */
	VLAN_STAT_MAX = 12,
};

#endif
