/* Maps of the in-kernel resolver (dns.bpf.c), pinned by name next to the datapath's so they
 * outlive the daemon: names keep resolving while it is down or restarting. */
#ifndef BPFNET_LIB_DNS_H
#define BPFNET_LIB_DNS_H

#include "common.h"
#include "../shared/dns.h"

#ifndef DNS_NAMES_MAX
#define DNS_NAMES_MAX 65536
#endif
#ifndef DNS_CLIENTS_MAX
#define DNS_CLIENTS_MAX 65536
#endif

/* Largest query handled here (a query with a name of DNS_NAME_MAX and an EDNS OPT fits). */
#define DNS_QUERY_MAX 256
/* Answers and OPT written after the question: DNS_ADDRS_MAX A records of 16 bytes (AAAA: 28), 11 of OPT. */
#define DNS_RR_A_LEN 16
#define DNS_RR_AAAA_LEN 28
#define DNS_OPT_LEN 11
/* Largest answer written here: the largest query and DNS_ADDRS_MAX AAAA records fit. */
#define DNS_REPLY_MAX 512
/* The IPv6 checksum's copy of an answer (pseudo-header addresses, UDP header, reply, padding). */
#define DNS_OUT_MAX 1024

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DNS_NAMES_MAX);
	__type(key, struct dns_name_key);
	__type(value, struct dns_name_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dns_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DNS_CLIENTS_MAX);
	__type(key, __u32);
	__type(value, struct dns_client);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dns_clients SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DNS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dns_stats SEC(".maps");

/* Per-CPU scratch: the query and the key built from it are too large for the stack. */
struct dns_scratch {
	__u8 msg[DNS_QUERY_MAX];
	struct dns_name_key key;
	__u8 rr[DNS_RR_AAAA_LEN];
	__u8 out[DNS_OUT_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_scratch);
} dns_scratch SEC(".maps");

#endif
