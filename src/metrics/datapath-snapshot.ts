/**
 * The ebpf datapath's counters and table use, read for one scrape from the maps pinned under
 * /sys/fs/bpf/<instance>: one batch dump per map (stats4, ep_ifx, ct4, ports4), never a
 * lookup per endpoint, so a scrape costs a handful of syscalls whatever the number of
 * sandboxes. Read-only: nothing here writes a map.
 */
import { join } from 'node:path';
import { CtHook, CtKind, DROP_REASONS, DatapathMaps, ctEntry4, ctKey4, endpointInfo, epStats } from '../datapath/abi.js';
import { BpfMap, PerCpuMap } from '../datapath/libbpf/bpf.js';
import { portKey, portTarget } from '../datapath/abi.js';
import { u32 } from '../datapath/libbpf/codec.js';

/** Counters of one stats slot (a host veth, the uplink, the host), summed over CPUs. */
export interface SlotCounters {
  /** Packets/bytes the sandbox sent (from_container). */
  txPackets: number;
  txBytes: number;
  /** Packets/bytes delivered to the sandbox (or received on the uplink/host slot). */
  rxPackets: number;
  rxBytes: number;
  /** Drops by reason index (DROP_REASONS). */
  drops: number[];
}

export interface DatapathSnapshot {
  /** Stats slot (host veth ifindex, or StatsSlot.UPLINK/HOST) -> counters. */
  slots: Map<number, SlotCounters>;
  /** Host veth ifindex -> ifindex of its network's bridge (from ep_ifx). */
  endpointNetwork: Map<number, number>;
  conntrack: { entries: number; capacity: number; byKind: Record<string, number> };
  /** Masquerade ports held now (distinct protocol/port pairs of SNAT replies on the uplink). */
  natPortsInUse: number;
  ports: { entries: number; capacity: number; byProtocol: Record<string, number> };
  endpoints: { entries: number; capacity: number };
}

const KIND_NAME: Record<number, string> = { [CtKind.SNAT]: 'snat', [CtKind.DNAT]: 'dnat', [CtKind.HAIRPIN]: 'hairpin', [CtKind.LOCAL]: 'local' };
interface Maps {
  stats: PerCpuMap<number, unknown>;
  epIfx: BpfMap<number, unknown>;
  ct: BpfMap<unknown, unknown>;
  ports: BpfMap<unknown, unknown>;
}

const PROTO_NAME: Record<number, string> = { 6: 'tcp', 17: 'udp', 1: 'icmp' };

/** Opens the pinned maps once and dumps them on each read. */
export class DatapathSnapshotReader {
  readonly #pinRoot: string;
  #maps?: Maps;

  constructor(instance: string) {
    this.#pinRoot = join('/sys/fs/bpf', instance);
  }

  #open(): Maps {
    if (this.#maps) return this.#maps;
    const open = <M>(name: string, how: (path: string) => M): M => {
      try {
        return how(join(this.#pinRoot, name));
      } catch (err) {
        throw new Error(`metrics: cannot open the datapath's map ${join(this.#pinRoot, name)}: ${(err as Error).message}`);
      }
    };
    this.#maps = {
      stats: open(DatapathMaps.stats, (p) => PerCpuMap.openPinned(p, u32, epStats)),
      epIfx: open(DatapathMaps.endpointsByIfindex, (p) => BpfMap.openPinned(p, u32, endpointInfo)),
      ct: open(DatapathMaps.conntrack, (p) => BpfMap.openPinned(p, ctKey4, ctEntry4)),
      ports: open(DatapathMaps.ports, (p) => BpfMap.openPinned(p, portKey, portTarget)),
    };
    return this.#maps;
  }

  read(): DatapathSnapshot {
    const maps = this.#open();
    const endpointNetwork = readEndpoints(maps.epIfx);
    return {
      slots: readStats(maps.stats),
      endpointNetwork,
      ...readConntrack(maps.ct),
      ports: readPorts(maps.ports),
      endpoints: { entries: endpointNetwork.size, capacity: maps.epIfx.info.maxEntries },
    };
  }

  close(): void {
    if (this.#maps) for (const m of [this.#maps.stats, this.#maps.epIfx, this.#maps.ct, this.#maps.ports]) m.close();
    this.#maps = undefined;
  }
}

function readStats(map: Maps['stats']): Map<number, SlotCounters> {
  const info = map.info;
  const { keys, values, count } = map.dumpPacked();
  const stride = Math.ceil(epStats.size / 8) * 8;
  const o = epStats.offsets;
  const u64 = (buf: Buffer, off: number) => Number(buf.readBigUInt64LE(off));
  const out = new Map<number, SlotCounters>();
  for (let i = 0; i < count; i++) {
    const slot = keys.readUInt32LE(i * info.keySize);
    const c: SlotCounters = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, drops: DROP_REASONS.map(() => 0) };
    for (let cpu = 0; cpu < info.cpus; cpu++) {
      const base = i * info.valueBytes + cpu * stride;
      c.txPackets += u64(values, base + o.tx_packets);
      c.txBytes += u64(values, base + o.tx_bytes);
      c.rxPackets += u64(values, base + o.rx_packets);
      c.rxBytes += u64(values, base + o.rx_bytes);
      for (let r = 0; r < DROP_REASONS.length; r++) c.drops[r] += u64(values, base + o.drops + r * 8);
    }
    out.set(slot, c);
  }
  return out;
}

function readEndpoints(map: Maps['epIfx']): Map<number, number> {
  const { keys, values, count } = map.dumpPacked();
  const ks = map.info.keySize;
  const out = new Map<number, number>();
  for (let i = 0; i < count; i++) out.set(keys.readUInt32LE(i * ks), values.readUInt32LE(i * endpointInfo.size + endpointInfo.offsets.net_ifindex));
  return out;
}

function readConntrack(map: Maps['ct']): Pick<DatapathSnapshot, 'conntrack' | 'natPortsInUse'> {
  const { keys, values, count } = map.dumpPacked();
  const byKind: Record<string, number> = { snat: 0, dnat: 0, hairpin: 0, local: 0 };
  const natPorts = new Set<number>();
  for (let i = 0; i < count; i++) {
    const kind = KIND_NAME[values.readUInt8(i * ctEntry4.size + ctEntry4.offsets.kind)] ?? 'other';
    byKind[kind] = (byKind[kind] ?? 0) + 1;
    const k = i * ctKey4.size;
    if (kind === 'snat' && keys.readUInt8(k + ctKey4.offsets.hook) === CtHook.UPLINK)
      natPorts.add(keys.readUInt8(k + ctKey4.offsets.proto) * 65536 + keys.readUInt16BE(k + ctKey4.offsets.dport));
  }
  return { conntrack: { entries: count, capacity: map.info.maxEntries, byKind }, natPortsInUse: natPorts.size };
}

function readPorts(map: Maps['ports']): DatapathSnapshot['ports'] {
  const { keys, count } = map.dumpPacked();
  const ks = portKey.size;
  const byProtocol: Record<string, number> = { tcp: 0, udp: 0 };
  for (let i = 0; i < count; i++) {
    const proto = PROTO_NAME[keys.readUInt8(i * ks + portKey.offsets.proto)] ?? 'other';
    byProtocol[proto] = (byProtocol[proto] ?? 0) + 1;
  }
  return { entries: count, capacity: map.info.maxEntries, byProtocol };
}

