/* The uplink (tc ingress): replies to masqueraded and routed flows go back into their sandbox,
 * new connections to a published port are translated and delivered straight into the
 * target's namespace (redirect_peer), keeping the client's address (tracked, or stateless for
 * TCP ports that are the only way to their target: lib/stateless.h), and VXLAN from other hosts
 * is decapsulated into the sandbox it is for (lib/overlay_rx.h). Martian addresses aimed
 * at the host or its sandboxes are dropped; everything else is the host's. */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/pkt.h"
#include "lib/nat.h"
#include "lib/nat6.h"
#include "lib/icmp_err.h"
#include "lib/stateless.h"
#include "lib/overlay.h"
#include "lib/overlay_rx.h"

/* What ipv4_from_uplink returns for a VXLAN packet to this host's VTEP (not a TC verdict). */
#define UPLINK_VXLAN (-101)

/* again: the second look at a VXLAN packet the overlay fast path did not take (counted once). */
BPFNET_NOINLINE int ipv4_from_uplink(struct __sk_buff *skb, const struct dp_config *cfg, struct pkt4 *p, int again)
{
	if (pkt4_parse(skb, p) < 0)
		return TC_PASS; /* the stack judges what we cannot parse */
	/* No wire carries these: with route_localnet they would reach loopback-bound ports. */
	if (is_loopback_or_zero4(p->t.daddr))
		return DROP(DROP_MARTIAN_DST);
	int local = bpf_map_lookup_elem(&local4, &p->t.daddr) != NULL;
	if (!local && !bpf_map_lookup_elem(&ep4, &p->t.daddr))
		return TC_PASS; /* neither the host nor a sandbox: the host's business */
	if (is_martian_src4(p->t.saddr) || bpf_map_lookup_elem(&local4, &p->t.saddr))
		return DROP(DROP_MARTIAN_SRC);
	if (!again)
		stats_rx(STATS_UPLINK, skb->len);
	/* VXLAN to this host's VTEP from another host: from_uplink decapsulates it (in a call of its
	 * own, so the two frames never stack) or, when the fast path does not take it, asks again. */
	if (!again && local && p->t.proto == IPPROTO_UDP && p->t.dport == bpf_htons(OVERLAY_VXLAN_PORT) && !p->frag)
		return UPLINK_VXLAN;
	/* A stateless published port's segments need no connection table (lib/stateless.h). */
	int verdict;
	if (local && stateless_first(cfg, p->t.proto, p->t.dport, p->frag)) {
		verdict = stateless_in4(skb, p);
		if (verdict != CT_NO_FLOW)
			return verdict;
	}
	__u64 now = dp_now();
	verdict = ct_follow4(skb, p, CT_HOOK_UPLINK, cfg, now, 1);
	if (verdict != CT_NO_FLOW)
		return verdict;
	/* An error about a masqueraded, routed or published flow (PMTU, port unreachable): to its sandbox. */
	if (icmp4_is_error(p)) {
		verdict = icmp_error4(skb, p, CT_HOOK_UPLINK, cfg, now, 1, 0);
		if (verdict != CT_NO_FLOW)
			return verdict;
	}
	/* A sandbox's own address from outside: only replies of its flows come in (as Docker's
	 * raw PREROUTING drop of direct access). */
	if (!local)
		return DROP(DROP_UNSOLICITED);
	/* ICMP to the host, and later fragments (no port to judge: without their head the
	 * stack reassembles nothing), are the host's. */
	if (p->t.proto == IPPROTO_ICMP || !p->has_ports)
		return TC_PASS;
	struct port_target *t = port_lookup4(p->t.daddr, p->t.dport, p->t.proto);
	if (!t)
		return TC_PASS;
	/* We translate before any reassembly: the other fragments would miss the sandbox. */
	if (p->frag)
		return DROP(DROP_FRAGMENT);
	struct port_target target = *t;
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep4, &target.addr);
	if (!ep)
		return TC_PASS;
	/* Not tried above while the flow log listens: a connection that was stateless before goes on. */
	if (p->t.proto == IPPROTO_TCP && (target.flags & PORT_F_STATELESS) && !stateless_first(cfg, p->t.proto, p->t.dport, p->frag)) {
		verdict = stateless_in4(skb, p);
		if (verdict != CT_NO_FLOW)
			return verdict;
	}
	struct ct_new n = {
		.kind = CT_DNAT,
		.orig_hook = CT_HOOK_UPLINK,
		.reply_hook = CT_HOOK_CONTAINER,
		.alloc_port = 0,
		.orig_deliver = ep->ifindex,
		.reply_deliver = CT_DELIVER_ROUTE,
		.saddr = p->t.saddr,
		.daddr = target.addr,
		.sport = p->t.sport,
		.dport = target.port,
	};
	return ct_start4(skb, p, &n, cfg, now, 1);
}

/* IPv6 from outside, as IPv4: replies of NAT66 and routed flows, published ports on the
 * host's IPv6 addresses (ports6), and nothing unsolicited to a sandbox's own address. */
BPFNET_NOINLINE int ipv6_from_uplink(struct __sk_buff *skb, const struct dp_config *cfg, struct pkt6 *p)
{
	if (pkt6_parse(skb, p) < 0)
		return TC_PASS;
	/* Link-local and multicast (neighbour discovery, router advertisements) are the host's. */
	if (addr6_multicast(&p->t.daddr) || addr6_linklocal(&p->t.daddr))
		return TC_PASS;
	if (addr6_loopback_or_zero(&p->t.daddr))
		return DROP(DROP_MARTIAN_DST);
	int local = bpf_map_lookup_elem(&local6, &p->t.daddr) != NULL;
	if (!local && !bpf_map_lookup_elem(&ep6, &p->t.daddr))
		return TC_PASS;
	if (addr6_martian_src(&p->t.saddr) || bpf_map_lookup_elem(&local6, &p->t.saddr))
		return DROP(DROP_MARTIAN_SRC);
	stats_rx(STATS_UPLINK, skb->len);
	int verdict;
	if (local && stateless_first(cfg, p->t.proto, p->t.dport, p->frag)) {
		verdict = stateless_in6(skb, p);
		if (verdict != CT_NO_FLOW)
			return verdict;
	}
	__u64 now = dp_now();
	verdict = ct_follow6(skb, p, CT_HOOK_UPLINK, cfg, now, 1);
	if (verdict != CT_NO_FLOW)
		return verdict;
	if (icmp6_is_error(p)) {
		verdict = icmp_error6(skb, p, CT_HOOK_UPLINK, cfg, now, 1, 0);
		if (verdict != CT_NO_FLOW)
			return verdict;
	}
	if (!local)
		return DROP(DROP_UNSOLICITED);
	if (p->t.proto == IPPROTO_ICMPV6 || !p->has_ports)
		return TC_PASS;
	struct port_target6 *t = port_lookup6(&p->t.daddr, p->t.dport, p->t.proto);
	if (!t)
		return TC_PASS;
	if (p->frag)
		return DROP(DROP_FRAGMENT);
	struct port_target6 target = *t;
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep6, &target.addr);
	if (!ep)
		return TC_PASS;
	if (p->t.proto == IPPROTO_TCP && (target.flags & PORT_F_STATELESS) && !stateless_first(cfg, p->t.proto, p->t.dport, p->frag)) {
		verdict = stateless_in6(skb, p);
		if (verdict != CT_NO_FLOW)
			return verdict;
	}
	struct ct6_new_flow n = {
		.kind = CT_DNAT,
		.orig_hook = CT_HOOK_UPLINK,
		.reply_hook = CT_HOOK_CONTAINER,
		.alloc_port = 0,
		.orig_deliver = ep->ifindex,
		.reply_deliver = CT_DELIVER_ROUTE,
		.saddr = p->t.saddr,
		.daddr = target.addr,
		.sport = p->t.sport,
		.dport = target.port,
	};
	return ct_start6(skb, p, &n, cfg, now, 1);
}

SEC("tc")
int from_uplink(struct __sk_buff *skb)
{
	struct pkt4 p = {};
	struct pkt6 p6 = {};
	struct dp_config *cfg = dp_config();
	if (!cfg || !(cfg->flags & DP_F_CONFIGURED))
		return TC_PASS;
	struct ethhdr *eth = (void *)(long)skb->data;
	if ((void *)(eth + 1) > (void *)(long)skb->data_end || skb->vlan_present)
		return TC_PASS; /* the host's own VLANs */
	int verdict;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		verdict = ipv4_from_uplink(skb, cfg, &p, 0);
		if (verdict == UPLINK_VXLAN) {
			verdict = overlay_rx4(skb, &p);
			if (verdict == CT_NO_FLOW)
				verdict = ipv4_from_uplink(skb, cfg, &p, 1);
		}
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		verdict = ipv6_from_uplink(skb, cfg, &p6);
	else
		return TC_PASS; /* ARP and the rest: the host's */
	return tc_exit_dual(STATS_UPLINK, verdict, &p, &p6, skb->protocol == bpf_htons(ETH_P_IPV6));
}

char LICENSE[] SEC("license") = "GPL";
