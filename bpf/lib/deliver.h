/* Delivering a packet into a sandbox (straight into its namespace, past the host veth and
 * the bridge) or to the host stack through lo. */
#ifndef BPFNET_LIB_DELIVER_H
#define BPFNET_LIB_DELIVER_H

#include "maps.h"
#include "csum.h"
#include "stats.h"
#include "verdict.h"

static const __u8 zero_mac[ETH_ALEN] = {};

/* Into endpoint ep's sandbox, as a packet the gateway routed: the sandbox's
 * MAC as destination, the bridge's as source. From TC ingress, redirect_peer lands in the
 * sandbox's namespace directly; from egress hooks a plain redirect sends it through the veth. */
static __always_inline int deliver_to_endpoint(struct __sk_buff *skb, const struct pkt4 *p, const struct endpoint_info *ep, int routed, int peer)
{
	__u32 ifindex = ep->ifindex;
	struct network_info *net = bpf_map_lookup_elem(&net4, &ep->net_ifindex);
	if (!net)
		return DROP(DROP_UNKNOWN_ENDPOINT);
	if (routed && ttl_decrement(skb, p) < 0)
		return DROP(DROP_MALFORMED);
	if (set_macs(skb, net->bridge_mac, ep->mac) < 0)
		return DROP(DROP_MALFORMED);
	stats_rx(ifindex, skb->len);
	return peer ? bpf_redirect_peer(ifindex, 0) : bpf_redirect(ifindex, 0);
}

/* deliver_to_endpoint for the sandbox behind host veth ifindex. */
static __always_inline int deliver_to_sandbox(struct __sk_buff *skb, const struct pkt4 *p, __u32 ifindex, int routed, int peer)
{
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep_ifx, &ifindex);
	if (!ep)
		return DROP(DROP_UNKNOWN_ENDPOINT);
	return deliver_to_endpoint(skb, p, ep, routed, peer);
}

/* To the host stack as if received on lo (replies to host processes' connections). */
static __always_inline int deliver_local(struct __sk_buff *skb, const struct dp_config *cfg)
{
	if (set_macs(skb, zero_mac, zero_mac) < 0)
		return DROP(DROP_MALFORMED);
	return bpf_redirect(cfg->lo_ifindex, BPF_F_INGRESS);
}

#endif
