/* Forwarding a packet out of the host without the stack: a FIB lookup, then a redirect to
 * the egress device (or through the neighbour subsystem when the next hop is unresolved). */
#ifndef BPFNET_LIB_FIB_H
#define BPFNET_LIB_FIB_H

#include "maps.h"
#include "csum.h"

#define AF_INET 2

enum fib_verdict {
	FIB_REDIRECTED = 0,
	FIB_TO_BRIDGE = 1,  /* the route leads into a sandbox network: isolation decides */
	FIB_FAILED = 2,
};

/* Routes an IPv4 packet (already rewritten) out of the host; *verdict_out is the TC verdict.
 * Called from tc ingress only. When the route leaves through an uplink that is itself a veth
 * (nested hosts, the lab), the packet enters the uplink's peer directly (redirect_peer), sparing
 * it a transmit and a second receive queue; through a NIC it is transmitted (bpf_redirect). */
static __always_inline enum fib_verdict fib_redirect4(struct __sk_buff *skb, const struct pkt4 *p, __be32 saddr, __be32 daddr, int *verdict_out)
{
	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET;
	fib.l4_protocol = p->t.proto;
	fib.ipv4_src = saddr;
	fib.ipv4_dst = daddr;
	/* 0 skips the MTU check, which would refuse GSO packets larger than the MTU. */
	fib.tot_len = 0;
	/* Routes are only taken from a host veth's ingress: the sandbox side of the hop. */
	fib.ifindex = skb->ifindex;
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return FIB_FAILED;
	__u32 out = fib.ifindex;
	if (bpf_map_lookup_elem(&net4, &out))
		return FIB_TO_BRIDGE;
	if (ttl_decrement(skb, p) < 0)
		return FIB_FAILED;
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		*verdict_out = bpf_redirect_neigh(out, NULL, 0, 0);
		return FIB_REDIRECTED;
	}
	if (set_macs(skb, fib.smac, fib.dmac) < 0)
		return FIB_FAILED;
	struct dp_config *cfg = dp_config();
	if (cfg && (cfg->flags & DP_F_UPLINK_VETH) && out == cfg->uplink_ifindex)
		*verdict_out = bpf_redirect_peer(out, 0);
	else
		*verdict_out = bpf_redirect(out, 0);
	return FIB_REDIRECTED;
}

#endif
