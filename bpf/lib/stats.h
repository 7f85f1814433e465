/* Per-endpoint counters and drop accounting (with an event per drop for `bpfnet monitor`). */
#ifndef BPFNET_LIB_STATS_H
#define BPFNET_LIB_STATS_H

#include "maps.h"

#define STATS_UPLINK 0

static __always_inline void stats_tx(__u32 ifindex, __u32 len)
{
	struct ep_stats *s = bpf_map_lookup_elem(&stats4, &ifindex);
	if (s) {
		s->tx_packets++;
		s->tx_bytes += len;
	}
}

static __always_inline void stats_rx(__u32 ifindex, __u32 len)
{
	struct ep_stats *s = bpf_map_lookup_elem(&stats4, &ifindex);
	if (s) {
		s->rx_packets++;
		s->rx_bytes += len;
	}
}

/* What a drop event reports about the packet (filled as far as parsing got). */
struct drop_ctx {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;            /* 4: saddr/daddr; 6: the addresses passed beside it */
};

/* Counts a drop and, while someone listens, reports it. s6/d6 (family 6 only) point at the
 * parsed packet's addresses, so no IPv6 address is copied onto the caller's stack. */
static __always_inline void drop_record(__u32 ifindex, __u32 reason, const struct drop_ctx *d, const struct addr6 *s6, const struct addr6 *d6)
{
	/* An out-of-table reason is a bug, counted where it shows rather than out of bounds. */
	if (reason >= DROP_REASONS)
		reason = DROP_NONE;
	/* Keeps the verifier's bound on reason through the 32-bit arithmetic clang emits. */
	asm volatile("" : "+r"(reason));
	reason &= 31;
	if (reason >= DROP_REASONS)
		reason = DROP_NONE;
	struct ep_stats *s = bpf_map_lookup_elem(&stats4, &ifindex);
	if (s)
		s->drops[reason]++;
	struct dp_config *cfg = dp_config();
	if (!cfg || !(cfg->flags & DP_F_DROP_EVENTS))
		return;
	struct drop_event *e = bpf_ringbuf_reserve(&drop_events, sizeof(*e), 0);
	if (!e)
		return; /* full: the counter above still tells */
	e->ts = bpf_ktime_get_ns();
	e->ifindex = ifindex;
	e->reason = reason;
	e->proto = d ? d->proto : 0;
	e->sport = d ? d->sport : 0;
	e->dport = d ? d->dport : 0;
	e->saddr = d ? d->saddr : 0;
	e->daddr = d ? d->daddr : 0;
	e->family = d ? d->family : 0;
	e->pad = 0;
	e->pad2 = 0;
	if (s6 && d6) {
		e->saddr6 = *s6;
		e->daddr6 = *d6;
	} else {
		__builtin_memset(&e->saddr6, 0, sizeof(e->saddr6));
		__builtin_memset(&e->daddr6, 0, sizeof(e->daddr6));
	}
	bpf_ringbuf_submit(e, 0);
}

#endif
