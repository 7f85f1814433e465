/* The opt-in flow log: an event when a tracked flow starts (with its NAT translation), and
 * per-direction packet and byte counts while it lives, which the daemon reports when the
 * flow ends. Only while someone listens (DP_F_FLOW_EVENTS in cfg4, set by the daemon when
 * `bpfnet monitor --flows` subscribes): otherwise it costs one test of a flag in the
 * configuration every hook has already read. */
#ifndef BPFNET_LIB_FLOWLOG_H
#define BPFNET_LIB_FLOWLOG_H

#include "maps.h"

#ifndef FLOW_EVENTS_BYTES
#define FLOW_EVENTS_BYTES (1 << 20)
#endif
#ifndef FLOW_STATS_MAX
#define FLOW_STATS_MAX CT_MAX
#endif

/* flow_events: new-flow records for the daemon (ring buffer). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FLOW_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_events SEC(".maps");

/* flow_stats4: ct4 key of one direction -> packets and bytes (LRU: a listener that never reads cannot fill it). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FLOW_STATS_MAX);
	__type(key, struct ct_key4);
	__type(value, struct flow_counts);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_stats4 SEC(".maps");

/* The IPv6 half: its own ring (records of another size) and counts per ct6 key. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FLOW_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_events6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FLOW_STATS_MAX);
	__type(key, struct ct_key6);
	__type(value, struct flow_counts);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_stats6 SEC(".maps");

static __always_inline int flowlog_on(const struct dp_config *cfg)
{
	return cfg && (cfg->flags & DP_F_FLOW_EVENTS);
}

/* Counts a packet of an existing flow in its direction (k: its ct4 key at this hook). */
static __always_inline void flowlog_count4(const struct dp_config *cfg, const struct pkt4 *p, __u8 hook, __u32 len)
{
	if (!flowlog_on(cfg))
		return;
	struct ct_key4 k = p->t;
	k.hook = hook;
	struct flow_counts *c = bpf_map_lookup_elem(&flow_stats4, &k);
	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, len);
		return;
	}
	struct flow_counts first = { .packets = 1, .bytes = len };
	bpf_map_update_elem(&flow_stats4, &k, &first, BPF_NOEXIST);
}

/* A flow was created for p (original-direction entry e): report it and count its first packet. */
static __always_inline void flowlog_new4(const struct dp_config *cfg, const struct pkt4 *p, const struct ct_new *n, const struct ct_entry4 *e, __u32 ifindex, __u32 len)
{
	if (!flowlog_on(cfg))
		return;
	flowlog_count4(cfg, p, n->orig_hook, len);
	struct flow_event *ev = bpf_ringbuf_reserve(&flow_events, sizeof(*ev), 0);
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
	bpf_ringbuf_submit(ev, 0);
}

#endif
