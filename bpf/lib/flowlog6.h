/* The flow log's IPv6 half (bpf/lib/flowlog.h has the maps and the IPv4 half). */
#ifndef BPFNET_LIB_FLOWLOG6_H
#define BPFNET_LIB_FLOWLOG6_H

#include "flowlog.h"
#include "ct6.h"

/* flowlog_count4 for IPv6, given the flow's ct6 key at this hook (no copy of it on the stack). */
static __always_inline void flowlog_count6(const struct dp_config *cfg, const struct ct_key6 *k, __u32 len)
{
	if (!flowlog_on(cfg))
		return;
	struct flow_counts *c = bpf_map_lookup_elem(&flow_stats6, k);
	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, len);
		return;
	}
	struct flow_counts first = { .packets = 1, .bytes = len };
	bpf_map_update_elem(&flow_stats6, k, &first, BPF_NOEXIST);
}

/* flowlog_new4 for IPv6: the record is built in the ring buffer, and its key counts the first packet. */
static __always_inline void flowlog_new6(const struct dp_config *cfg, const struct pkt6 *p, const struct ct6_new_flow *n, const struct ct_entry6 *e, __u32 ifindex, __u32 len)
{
	if (!flowlog_on(cfg))
		return;
	struct flow_event6 *ev = bpf_ringbuf_reserve(&flow_events6, sizeof(*ev), 0);
	if (!ev)
		return; /* full: the listener is behind; the flow still works */
	ev->ts = bpf_ktime_get_ns();
	ev->ifindex = ifindex;
	ev->deliver = e->deliver;
	ev->orig = p->t;
	ev->orig.hook = n->orig_hook;
	ev->orig.pad = 0;
	ev->nat_saddr = e->saddr;
	ev->nat_daddr = e->daddr;
	ev->nat_sport = e->sport;
	ev->nat_dport = e->dport;
	ev->type = FLOW_EV_NEW;
	ev->kind = n->kind;
	ev->reply_hook = n->reply_hook;
	ev->pad = 0;
	flowlog_count6(cfg, &ev->orig, len);
	bpf_ringbuf_submit(ev, 0);
}

#endif
