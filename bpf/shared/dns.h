/* The in-kernel half of the embedded DNS (bpf/dns.bpf.c): the names the daemon publishes for
 * it and what it counts. Mirrored in src/datapath/abi.ts. */
#ifndef BPFNET_SHARED_DNS_H
#define BPFNET_SHARED_DNS_H

/* A query name in wire format (length-prefixed labels, the final zero included), lower case,
 * zero padded; longer names are left to the daemon. */
#define DNS_NAME_MAX 128
/* Addresses one name stands for at most in the kernel; names with more are the daemon's. */
#define DNS_ADDRS_MAX 8

/* dns_names key: a name as seen from one network. The scope is the network's resolver address:
 * its IPv4 one as ::ffff:a.b.c.d when it has one, else its IPv6 one (an IPv6-only network);
 * a query over either family to that network's resolver looks up the same scope. */
struct dns_name_key {
	__u8 scope[16];
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

/* dns_client flags: which families' queries the kernel answers for this sandbox. */
#define DNS_CLIENT_V4 1
#define DNS_CLIENT_V6 2

/* dns_clients: host veth ifindex -> the sandbox behind it, for the sandbox's first user-defined
 * network only (where its resolv.conf points and where the daemon would answer the same way).
 * A query is answered only from the sandbox's own address to its resolver of that family. */
struct dns_client {
	__u32 addr;    /* network byte order */
	__u32 gateway; /* the IPv4 resolver address */
	__u8 addr6[16];
	__u8 gateway6[16]; /* the IPv6 resolver address */
	__u8 scope[16];    /* the network's dns_name_key scope */
	__u32 flags;       /* DNS_CLIENT_V4 | DNS_CLIENT_V6 */
};

enum dns_stat {
	/* Every query answered here, either family. */
	DNS_STAT_ANSWERED = 0,
	/* Queries to the resolver handed to the daemon: unknown names, PTR, TCP, EDNS options we do not keep... */
	DNS_STAT_PASSED = 1,
	/* Of the answered ones, those asked over IPv6. */
	DNS_STAT_ANSWERED6 = 2,
	DNS_STAT_MAX = 3,
};

#endif
