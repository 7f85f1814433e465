/* Kernel/user ABI of the probe programs (packet and byte counters on XDP and TC).
 * Mirrored once in src/datapath/abi.ts: both must change together. */
#ifndef BPFNET_SHARED_PROBE_H
#define BPFNET_SHARED_PROBE_H

/* Which attach point a counter slot belongs to. */
enum probe_slot {
	PROBE_SLOT_XDP = 0,
	PROBE_SLOT_TC_INGRESS = 1,
	PROBE_SLOT_TC_EGRESS = 2,
	PROBE_SLOTS = 3,
};

/* Value of probe_counters (per-CPU array indexed by enum probe_slot). */
struct probe_counter {
	__u64 packets;
	__u64 bytes;
};

/* One record in probe_events (ring buffer), emitted per counted packet when enabled. */
struct probe_event {
	__u32 slot;     /* enum probe_slot */
	__u32 ifindex;  /* interface the packet was seen on */
	__u32 len;      /* packet length in bytes */
	__u8 protocol;  /* IPv4 protocol number */
	__u8 pad[3];
	__u32 saddr;    /* network byte order */
	__u32 daddr;    /* network byte order */
};

#endif
