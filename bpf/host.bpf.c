/* The host's own processes (tc egress on lo): a connection to a published port on any host
 * address — 127.0.0.1 included — is translated here and sent into the sandbox, without a
 * userland proxy; replies come back through from_container and re-enter on lo. */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/pkt.h"
#include "lib/nat.h"
#include "lib/nat6.h"

#define STATS_HOST 1

BPFNET_NOINLINE int ipv4_from_host(struct __sk_buff *skb, const struct dp_config *cfg, struct pkt4 *p)
{
	if (pkt4_parse(skb, p) < 0 || !p->has_ports || (p->t.proto != IPPROTO_TCP && p->t.proto != IPPROTO_UDP))
		return TC_PASS; /* the stack judges what we cannot parse */
	__u64 now = dp_now();
	int verdict = ct_follow4(skb, p, CT_HOOK_LOCAL, cfg, now, 0);
	if (verdict != CT_NO_FLOW)
		return verdict;
	if (!bpf_map_lookup_elem(&local4, &p->t.daddr))
		return TC_PASS;
	struct port_target *t = port_lookup4(p->t.daddr, p->t.dport, p->t.proto);
	if (!t)
		return TC_PASS;
	struct port_target target = *t;
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep4, &target.addr);
	if (!ep)
		return TC_PASS;
	struct network_info *net = bpf_map_lookup_elem(&net4, &ep->net_ifindex);
	if (!net)
		return TC_PASS;
	struct ct_new n = {
		.kind = CT_LOCAL,
		.orig_hook = CT_HOOK_LOCAL,
		.reply_hook = CT_HOOK_CONTAINER,
		.alloc_port = 1,
		.orig_deliver = ep->ifindex,
		.reply_deliver = CT_DELIVER_LOCAL,
		.saddr = net->gateway,
		.daddr = target.addr,
		.sport = p->t.sport,
		.dport = target.port,
	};
	return ct_start4(skb, p, &n, cfg, now, 0);
}

/* A host process to a published port over IPv6 ([::1] or any host IPv6 address). */
BPFNET_NOINLINE int ipv6_from_host(struct __sk_buff *skb, const struct dp_config *cfg, struct pkt6 *p)
{
	if (pkt6_parse(skb, p) < 0 || !p->has_ports || (p->t.proto != IPPROTO_TCP && p->t.proto != IPPROTO_UDP))
		return TC_PASS;
	__u64 now = dp_now();
	int verdict = ct_follow6(skb, p, CT_HOOK_LOCAL, cfg, now, 0);
	if (verdict != CT_NO_FLOW)
		return verdict;
	if (!bpf_map_lookup_elem(&local6, &p->t.daddr))
		return TC_PASS;
	struct port_target6 *t = port_lookup6(&p->t.daddr, p->t.dport, p->t.proto);
	if (!t)
		return TC_PASS;
	struct port_target6 target = *t;
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep6, &target.addr);
	if (!ep)
		return TC_PASS;
	struct network_info6 *net = bpf_map_lookup_elem(&net6, &ep->net_ifindex);
	if (!net)
		return TC_PASS;
	struct ct6_new_flow n = {
		.kind = CT_LOCAL,
		.orig_hook = CT_HOOK_LOCAL,
		.reply_hook = CT_HOOK_CONTAINER,
		.alloc_port = 1,
		.orig_deliver = ep->ifindex,
		.reply_deliver = CT_DELIVER_LOCAL,
		.saddr = net->gateway,
		.daddr = target.addr,
		.sport = p->t.sport,
		.dport = target.port,
	};
	return ct_start6(skb, p, &n, cfg, now, 0);
}

SEC("tc")
int from_host(struct __sk_buff *skb)
{
	struct pkt4 p = {};
	struct pkt6 p6 = {};
	struct dp_config *cfg = dp_config();
	if (!cfg || !(cfg->flags & DP_F_CONFIGURED))
		return TC_PASS;
	struct ethhdr *eth = (void *)(long)skb->data;
	if ((void *)(eth + 1) > (void *)(long)skb->data_end)
		return TC_PASS;
	int verdict;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		verdict = ipv4_from_host(skb, cfg, &p);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		verdict = ipv6_from_host(skb, cfg, &p6);
	else
		return TC_PASS;
	return tc_exit_dual(STATS_HOST, verdict, &p, &p6, skb->protocol == bpf_htons(ETH_P_IPV6));
}

char LICENSE[] SEC("license") = "GPL";
