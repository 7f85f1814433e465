/* The probe's maps, configuration and its one concern: count a packet and maybe report it. */
#ifndef BPFNET_LIB_PROBE_H
#define BPFNET_LIB_PROBE_H

#include "common.h"
#include "parse.h"
#include "../shared/probe.h"

#ifndef PROBE_MAX_EVENTS_BYTES
#define PROBE_MAX_EVENTS_BYTES (256 * 1024)
#endif

/* enum probe_slot -> packets and bytes seen there (per CPU). Pinned by name so
 * the XDP and TC objects loaded with one pin root share it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PROBE_SLOTS);
	__type(key, __u32);
	__type(value, struct probe_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} probe_counters SEC(".maps");

/* struct probe_event records, one per counted packet while probe_emit_events is set. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PROBE_MAX_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} probe_events SEC(".maps");

/* Count only IPv4 packets of this protocol (0: every frame). Set before load. */
const volatile __u8 probe_match_proto = 0;
/* Emit a probe_event per counted packet. Set before load. */
const volatile __u8 probe_emit_events = 0;

static __always_inline void probe_count(__u32 slot, void *data, void *data_end, __u32 ifindex)
{
	struct l3_view v;
	if (parse_l3(data, data_end, &v) < 0)
		return;
	if (probe_match_proto && (!v.ip4 || v.ip4->protocol != probe_match_proto))
		return;
	struct probe_counter *c = bpf_map_lookup_elem(&probe_counters, &slot);
	if (!c)
		return;
	__u32 len = data_end - data;
	c->packets++;
	c->bytes += len;
	if (!probe_emit_events)
		return;
	struct probe_event *e = bpf_ringbuf_reserve(&probe_events, sizeof(*e), 0);
	if (!e)
		return; /* full: the counter above still holds the truth */
	e->slot = slot;
	e->ifindex = ifindex;
	e->len = len;
	e->protocol = v.ip4 ? v.ip4->protocol : 0;
	e->pad[0] = e->pad[1] = e->pad[2] = 0;
	e->saddr = v.ip4 ? v.ip4->saddr : 0;
	e->daddr = v.ip4 ? v.ip4->daddr : 0;
	bpf_ringbuf_submit(e, 0);
}

#endif
