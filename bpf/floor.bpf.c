/* The benchmark's floor (bench/setups/floor.ts), not part of the datapath: the least any eBPF
 * published port can do on the datapath's own hooks. A fixed, stateless translation of one
 * address and two ports, with the datapath's own parser and rewrite helpers and the same
 * deliveries — redirect_peer into the server's namespace from the uplink, a plain redirect out
 * of the uplink (as through a NIC) for its replies — and nothing else: no map, no connection
 * table, no check. Whatever host networking ÷ this reaches bounds every ratio the datapath
 * can reach on this path; the datapath ÷ this is what its state and checks cost. */
#include "lib/common.h"
#include "lib/pkt.h"
#include "lib/csum.h"

/* Set by the loader (bench/setups/floor.ts) before load. */
const volatile __be32 floor_host_addr = 0;   /* the uplink address the client connects to */
const volatile __be32 floor_server_addr = 0; /* the server's address behind its host veth */
const volatile __be16 floor_pub_a = 0, floor_srv_a = 0; /* published port -> server port */
const volatile __be16 floor_pub_b = 0, floor_srv_b = 0;
const volatile __u32 floor_server_ifindex = 0; /* the server's host veth */
const volatile __u32 floor_uplink_ifindex = 0;
const volatile __u8 floor_gw_mac[ETH_ALEN] = {};       /* the host veth's own MAC */
const volatile __u8 floor_server_mac[ETH_ALEN] = {};
const volatile __u8 floor_uplink_mac[ETH_ALEN] = {};
const volatile __u8 floor_client_mac[ETH_ALEN] = {};   /* the uplink's peer */

/* tc ingress of the uplink: the client's packets to a published port, into the server. */
SEC("tc")
int floor_from_uplink(struct __sk_buff *skb)
{
	struct pkt4 p = {};
	if (pkt4_parse(skb, &p) < 0 || p.t.daddr != floor_host_addr || p.t.proto != IPPROTO_TCP || p.frag)
		return TC_PASS;
	__be16 to;
	if (p.t.dport == floor_pub_a)
		to = floor_srv_a;
	else if (p.t.dport == floor_pub_b)
		to = floor_srv_b;
	else
		return TC_PASS;
	if (nat_rewrite4(skb, &p, p.t.saddr, floor_server_addr, p.t.sport, to) < 0 || ttl_decrement(skb, &p) < 0 ||
	    set_const_macs(skb, floor_gw_mac, floor_server_mac) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect_peer(floor_server_ifindex, 0);
}

/* tc ingress of the server's host veth: its replies, translated back and out of the uplink. */
SEC("tc")
int floor_from_server(struct __sk_buff *skb)
{
	struct pkt4 p = {};
	if (pkt4_parse(skb, &p) < 0 || p.t.saddr != floor_server_addr || p.t.proto != IPPROTO_TCP || p.frag)
		return TC_PASS;
	__be16 from;
	if (p.t.sport == floor_srv_a)
		from = floor_pub_a;
	else if (p.t.sport == floor_srv_b)
		from = floor_pub_b;
	else
		return TC_PASS;
	if (nat_rewrite4(skb, &p, floor_host_addr, p.t.daddr, from, p.t.dport) < 0 || ttl_decrement(skb, &p) < 0 ||
	    set_const_macs(skb, floor_uplink_mac, floor_client_mac) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(floor_uplink_ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
