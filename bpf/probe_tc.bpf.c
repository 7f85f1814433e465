/* TC probe: counts packets at tc ingress and egress and lets them continue. */
#include "lib/probe.h"

SEC("tc")
int probe_tc_ingress(struct __sk_buff *skb)
{
	probe_count(PROBE_SLOT_TC_INGRESS, (void *)(long)skb->data, (void *)(long)skb->data_end, skb->ifindex);
	return TC_PASS;
}

SEC("tc")
int probe_tc_egress(struct __sk_buff *skb)
{
	probe_count(PROBE_SLOT_TC_EGRESS, (void *)(long)skb->data, (void *)(long)skb->data_end, skb->ifindex);
	return TC_PASS;
}

char LICENSE[] SEC("license") = "GPL";
