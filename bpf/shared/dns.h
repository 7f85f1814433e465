/* The in-kernel half of the embedded DNS (bpf/dns.bpf.c): the names the daemon publishes for
 * it and what it counts. Mirrored in src/datapath/abi.ts. */
#ifndef BPFNET_SHARED_DNS_H
#define BPFNET_SHARED_DNS_H

/* A query name in wire format (length-prefixed labels, the final zero included), lower case,
 * zero padded; longer names are left to the daemon. */
#define DNS_NAME_MAX 128
/* Addresses one name stands for at most in the kernel; names with more are the daemon's. */
#define DNS_ADDRS_MAX 8

/* dns_names key: a name as seen from one network, whose gateway (network byte order) is the
 * resolver the sandbox queries. */
struct dns_name_key {
	__u32 scope;
	__u8 name[DNS_NAME_MAX];
};

struct dns_name_value {
	__u32 count;
	/* Round-robin position, advanced by every A answer (several sandboxes sharing an alias). */
	__u32 turn;
	__u32 ttl;
	__u32 addrs[DNS_ADDRS_MAX]; /* network byte order */
	/* The name's IPv6 addresses (AAAA answers, asked over IPv4 on a dual-stack network). */
	__u32 count6;
	__u32 turn6;
	__u8 addrs6[DNS_ADDRS_MAX][16];
};

/* dns_clients: host veth ifindex -> the sandbox behind it, for the sandbox's first user-defined
 * network only (where its resolv.conf points and where the daemon would answer the same way). */
struct dns_client {
	__u32 addr;
	__u32 gateway;
};

enum dns_stat {
	DNS_STAT_ANSWERED = 0,
	/* Queries to the resolver handed to the daemon: unknown names, PTR, TCP, EDNS options we do not keep... */
	DNS_STAT_PASSED = 1,
	DNS_STAT_MAX = 2,
};

#endif
