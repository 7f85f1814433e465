/**
 * Connection-table timeouts changed while running (SIGHUP): rewrites the timeout fields of
 * the ebpf datapath's configuration entry (cfg4, pinned), leaving every other field as the
 * datapath set it. The programs read cfg4 on every packet, so the next packet uses them.
 */
import { join } from 'node:path';
import { DatapathMaps, dpConfig } from '../datapath/abi.js';
import { BpfMap } from '../datapath/libbpf/bpf.js';
import { u32 } from '../datapath/libbpf/codec.js';
import { DEFAULT_TIMEOUTS } from '../datapath/ebpf/ebpf-datapath.js';

const FIELD: Record<string, keyof ReturnType<typeof dpConfig.decodeFrom>> = {
  'tcp-syn': 'tcp_syn_timeout',
  'tcp-established': 'tcp_established_timeout',
  'tcp-fin': 'tcp_fin_timeout',
  'tcp-closed': 'tcp_closed_timeout',
  udp: 'udp_timeout',
  'udp-stream': 'udp_stream_timeout',
  icmp: 'icmp_timeout',
};

/** Sets every timeout: the given ones, the defaults for the rest. */
export function applyTimeouts(pinRoot: string, timeouts: Record<string, number>): void {
  const map = BpfMap.openPinned(join(pinRoot, DatapathMaps.config), u32, dpConfig);
  try {
    const cur = map.get(0);
    if (!cur) throw new Error(`${join(pinRoot, DatapathMaps.config)} has no configuration entry: is the datapath started?`);
    const next = { ...cur } as Record<string, unknown>;
    for (const [name, field] of Object.entries(FIELD)) next[field] = timeouts[name] ?? DEFAULT_TIMEOUTS[name];
    map.set(0, next as typeof cur);
  } finally {
    map.close();
  }
}

/** The timeouts the datapath uses now, by name (for tests and `bpfnet info`). */
export function readTimeouts(pinRoot: string): Record<string, number> {
  const map = BpfMap.openPinned(join(pinRoot, DatapathMaps.config), u32, dpConfig);
  try {
    const cur = map.get(0) as Record<string, unknown> | undefined;
    return Object.fromEntries(Object.entries(FIELD).map(([name, field]) => [name, Number(cur?.[field] ?? 0)]));
  } finally {
    map.close();
  }
}
