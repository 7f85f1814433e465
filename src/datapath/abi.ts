/**
 * The TypeScript mirror of bpf/shared/*.h: the one place key and value layouts,
 * enums and map names are restated. When a header changes, change this file with it;
 * test/kernel/abi.test.ts compares both against the objects' BTF.
 */
import { ipv4, struct, u32, u64, u8, pad } from './libbpf/codec.js';

// ---- bpf/shared/probe.h ----

export const ProbeSlot = { XDP: 0, TC_INGRESS: 1, TC_EGRESS: 2 } as const;
export type ProbeSlot = (typeof ProbeSlot)[keyof typeof ProbeSlot];

export const probeCounter = struct({ packets: u64, bytes: u64 });

export const probeEvent = struct({
  slot: u32,
  ifindex: u32,
  len: u32,
  protocol: u8,
  pad: pad(3),
  saddr: ipv4,
  daddr: ipv4,
});

export const ProbeMaps = { counters: 'probe_counters', events: 'probe_events' } as const;
