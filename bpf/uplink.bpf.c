/* The uplink (tc ingress): replies to masqueraded flows go back into their sandbox, and new
 * connections to a published port are translated and delivered straight into the target's
 * namespace (redirect_peer), keeping the client's address. Everything else is the host's. */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/pkt.h"
#include "lib/nat.h"

SEC("tc")
int from_uplink(struct __sk_buff *skb)
{
	struct pkt4 p;
	struct dp_config *cfg = configured_ipv4(skb, &p);
	if (!cfg || !bpf_map_lookup_elem(&local4, &p.t.daddr))
		return TC_PASS;
	stats_rx(STATS_UPLINK, skb->len);
	__u64 now = bpf_ktime_get_ns();
	int verdict = ct_follow4(skb, &p, CT_HOOK_UPLINK, cfg, now, STATS_UPLINK, 1);
	if (verdict != CT_NO_FLOW)
		return verdict;
	if (p.t.proto == IPPROTO_ICMP)
		return TC_PASS;
	struct port_target *t = port_lookup4(p.t.daddr, p.t.dport, p.t.proto);
	if (!t)
		return TC_PASS;
	struct port_target target = *t;
	struct endpoint_info *ep = bpf_map_lookup_elem(&ep4, &target.addr);
	if (!ep)
		return TC_PASS;
	struct ct_new n = {
		.kind = CT_DNAT,
		.orig_hook = CT_HOOK_UPLINK,
		.reply_hook = CT_HOOK_CONTAINER,
		.alloc_port = 0,
		.orig_deliver = ep->ifindex,
		.reply_deliver = CT_DELIVER_ROUTE,
		.saddr = p.t.saddr,
		.daddr = target.addr,
		.sport = p.t.sport,
		.dport = target.port,
	};
	return ct_start4(skb, &p, &n, cfg, now, STATS_UPLINK, 1);
}

char LICENSE[] SEC("license") = "GPL";
