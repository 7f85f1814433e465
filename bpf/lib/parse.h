/* Bounds-checked header access for XDP and TC: every pointer the verifier sees
 * has been compared against data_end first. */
#ifndef BPFNET_LIB_PARSE_H
#define BPFNET_LIB_PARSE_H

#include "common.h"

struct l3_view {
	struct ethhdr *eth;
	struct iphdr *ip4; /* NULL unless the frame is IPv4 with a full header */
};

/* Fills v from [data, data_end); returns 0 for any Ethernet frame, -1 if too short. */
static __always_inline int parse_l3(void *data, void *data_end, struct l3_view *v)
{
	struct ethhdr *eth = data;
	v->eth = NULL;
	v->ip4 = NULL;
	if ((void *)(eth + 1) > data_end)
		return -1;
	v->eth = eth;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl < 5)
		return 0;
	v->ip4 = ip;
	return 0;
}

#endif
