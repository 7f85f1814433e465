/* Why the datapath dropped a packet. One table for the C programs and for the
 * TypeScript that reports drops (src/datapath/abi.ts: DropReason): both must change
 * together, and values are never reused. */
#ifndef BPFNET_SHARED_DROP_REASONS_H
#define BPFNET_SHARED_DROP_REASONS_H

enum drop_reason {
	DROP_NONE = 0,
	DROP_SPOOFED_SRC_MAC = 1,   /* a sandbox sent with a MAC that is not its own */
	DROP_SPOOFED_SRC_IP = 2,    /* a sandbox sent with an IPv4 source that is not its own */
	DROP_ISOLATION = 3,         /* the two ends share no network */
	DROP_ICC_DISABLED = 4,      /* traffic inside a network with enable_icc=false */
	DROP_INTERNAL_NETWORK = 5,  /* an --internal network has no way out */
	DROP_CT_FULL = 6,           /* connection table full: new flow refused */
	DROP_NAT_NO_PORT = 7,       /* no free source port for masquerade */
	DROP_FIB_FAILED = 8,        /* no route to forward the packet */
	DROP_UNKNOWN_DEST = 9,      /* destination inside a sandbox subnet with no endpoint */
	DROP_UNSOLICITED = 10,      /* traffic into a sandbox that is neither a reply nor published */
	DROP_MALFORMED = 11,        /* truncated or invalid headers */
	DROP_UNKNOWN_ENDPOINT = 12, /* a program runs on an interface the maps do not know */
	DROP_NAT_UNSUPPORTED = 13,  /* would need masquerade but carries no ports (fragment, ICMP error) */
	DROP_MARTIAN_SRC = 14,      /* a source no packet may carry here (loopback, 0/8, multicast, a host address from outside) */
	DROP_MARTIAN_DST = 15,      /* a destination no packet may carry here (loopback, 0/8) */
	DROP_VLAN = 16,             /* an 802.1Q/802.1ad tagged frame: tags are not ours to strip */
	DROP_INET_SIX = 17,         /* IPv6 from or to an endpoint that has no IPv6 address */
	DROP_UNKNOWN_ETHERTYPE = 18,       /* an ethertype the datapath does not understand */
	DROP_CT_INVALID = 19,       /* a TCP segment other than a SYN that belongs to no flow */
	DROP_FRAGMENT = 20,         /* a fragment for a published port (no reassembly before DNAT) */
	DROP_SPOOFED_ND = 21,       /* a neighbour advertisement/solicitation for an address that is not the sandbox's, or a router message */
	DROP_CT_QUOTA = 22,         /* the sandbox already holds its quota of assured flows: new flow refused */
	DROP_NO_SHARED_LINK = 23,   /* broadcast, multicast or link-local unicast that only a shared link would carry: sandboxes are no bridge's ports (only the host hears a sandbox's) */
	DROP_REASONS = 24,
};

#endif
