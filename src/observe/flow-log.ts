/**
 * The flow log behind `bpfnet monitor --flows`: new tracked flows with their NAT translation
 * (from the datapath's flow_events ring buffer), their end with per-direction packet and byte
 * counts (flow_stats4/flow_stats6, read when the flow's connection-table entries are gone), and
 * drops, for both families.
 * It runs only while someone listens: the first subscriber sets DP_F_FLOW_EVENTS in cfg4 and
 * opens the ring buffer, the last one clears the flag, so with nobody listening the datapath
 * writes nothing and the daemon reads nothing.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { CtKind, DP_F_FLOW_EVENTS, DatapathMaps, DatapathMaps6, FlowMaps, FlowMaps6, ctEntry4, ctEntry6, ctKey4, ctKey6, dpConfig, flowCounts, flowEvent, flowEvent6 } from '../datapath/abi.js';
import type { DropInfo } from '../datapath/datapath.js';
import { BpfMap, RingBuffer, openPinnedRaw } from '../datapath/libbpf/bpf.js';
import { encode, u32 } from '../datapath/libbpf/codec.js';

type Decoded<C> = C extends { decodeFrom(b: Buffer, o: number): infer T } ? T : never;

export interface FlowRecord {
  Time: string;
  /** new: a tracked flow started; end: it is gone from the connection table; drop: a packet was dropped. */
  Event: 'new' | 'end' | 'drop';
  Verdict: 'forwarded' | 'dropped';
  Reason?: string;
  Protocol: string;
  /** snat (masquerade), dnat (published port), hairpin, local (host to published port). */
  Kind?: string;
  Source: string;
  Destination: string;
  /** The tuple after NAT. */
  Translated?: { Source: string; Destination: string };
  Sandbox?: string;
  Network?: string;
  /** end: what passed each way while someone listened. */
  Packets?: { Original: number; Reply: number };
  Bytes?: { Original: number; Reply: number };
}

export interface FlowFilter {
  sandbox?: string;
  network?: string;
  port?: number;
  verdict?: 'forwarded' | 'dropped';
}

export interface FlowOwner {
  sandbox: string;
  sandboxId: string;
  network: string;
}

export interface FlowLogOptions {
  pinRoot: string;
  /** Host veth ifindex -> its sandbox and network. */
  ownerOf(ifindex: number): FlowOwner | undefined;
  /** Host veth name -> its sandbox and network (drops name their interface). */
  ownerOfInterface(ifname: string): FlowOwner | undefined;
  onDrop(listener: (d: DropInfo) => void): () => void;
  /** How often ended flows are looked for, ms. */
  pollMs?: number;
}

const PROTO: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' };
const KIND: Record<number, string> = { [CtKind.SNAT]: 'snat', [CtKind.DNAT]: 'dnat', [CtKind.HAIRPIN]: 'hairpin', [CtKind.LOCAL]: 'local' };

interface Tracked {
  record: FlowRecord;
  origKey: string;
  replyKey: string;
  /** The family's tables, whose counts the two keys index. */
  tables: FamilyTables;
}

const endpoint = (addr: string, port: number, proto: number) => (proto === 6 || proto === 17 ? `${addr.includes(':') ? `[${addr}]` : addr}:${port}` : addr);

/** One family's tables: the new-flow ring, the per-direction counts, and the connection table whose entries say a flow lives. */
interface FamilyTables {
  key: typeof ctKey4 | typeof ctKey6;
  entry: typeof ctEntry4 | typeof ctEntry6;
  ring: RingBuffer<Decoded<typeof flowEvent> | Decoded<typeof flowEvent6>>;
  stats: BpfMap<any, Decoded<typeof flowCounts>>;
  ct: BpfMap<any, any>;
  /** Flows not yet assured live in ct*_new (an LRU) before they move to ct*. */
  ctNew: BpfMap<any, any>;
}
const portOf = (text: string) => Number(/:(\d+)$/.exec(text)?.[1] ?? NaN);

export function matchesFlow(r: FlowRecord, f: FlowFilter, sandboxId?: string): boolean {
  if (f.verdict && r.Verdict !== f.verdict) return false;
  if (f.network && r.Network !== f.network) return false;
  if (f.sandbox && r.Sandbox !== f.sandbox && sandboxId !== f.sandbox && !(f.sandbox.length >= 3 && sandboxId?.startsWith(f.sandbox))) return false;
  if (f.port !== undefined) {
    const ports = [r.Source, r.Destination, r.Translated?.Source, r.Translated?.Destination].filter((x): x is string => !!x).map(portOf);
    if (!ports.includes(f.port)) return false;
  }
  return true;
}

export class FlowLog {
  readonly #opts: FlowLogOptions;
  readonly #emitter = new EventEmitter();
  readonly #tracked = new Map<string, Tracked>();
  /** record -> owning sandbox id, for filters by id. */
  readonly #ids = new WeakMap<FlowRecord, string>();
  /** IPv4's tables and IPv6's, while someone listens. */
  #families: FamilyTables[] = [];
  #timer?: NodeJS.Timeout;
  #unsubscribeDrops?: () => void;

  constructor(opts: FlowLogOptions) {
    this.#opts = opts;
    this.#emitter.setMaxListeners(0);
  }

  get active(): boolean {
    return this.#families.length > 0;
  }

  /** Subscribes with a filter; the first subscriber turns the flow log on. Returns the unsubscribe. */
  subscribe(filter: FlowFilter, listener: (r: FlowRecord) => void): () => void {
    const wrapped = (r: FlowRecord) => {
      if (matchesFlow(r, filter, this.#ids.get(r))) listener(r);
    };
    this.#emitter.on('flow', wrapped);
    if (!this.active) {
      try {
        this.#start();
      } catch (err) {
        this.#emitter.off('flow', wrapped);
        this.#stop();
        throw err;
      }
    }
    return () => {
      this.#emitter.off('flow', wrapped);
      if (this.#emitter.listenerCount('flow') === 0) this.#stop();
    };
  }

  #setFlag(on: boolean): void {
    const cfg = BpfMap.openPinned(join(this.#opts.pinRoot, DatapathMaps.config), u32, dpConfig);
    try {
      const cur = cfg.get(0);
      if (!cur) throw new Error(`${join(this.#opts.pinRoot, DatapathMaps.config)} has no configuration: is the ebpf datapath started?`);
      cfg.set(0, { ...cur, flags: on ? cur.flags | DP_F_FLOW_EVENTS : cur.flags & ~DP_F_FLOW_EVENTS });
    } finally {
      cfg.close();
    }
  }

  #start(): void {
    const root = this.#opts.pinRoot;
    const open = (maps: { events: string; stats: string }, ct: { conntrack: string; conntrackNew: string }, key: typeof ctKey4 | typeof ctKey6, entry: typeof ctEntry4 | typeof ctEntry6, event: typeof flowEvent | typeof flowEvent6): FamilyTables => {
      const stats = BpfMap.openPinned<any, Decoded<typeof flowCounts>>(join(root, maps.stats), key as typeof ctKey4, flowCounts);
      // Counts left from an earlier listener would be added to flows they do not belong to.
      const stale = stats.dumpPacked();
      if (stale.count > 0) stats.deletePacked(stale.keys);
      const tables: FamilyTables = {
        key,
        entry,
        stats,
        ct: BpfMap.openPinned(join(root, ct.conntrack), key as typeof ctKey4, entry as typeof ctEntry4),
        ctNew: BpfMap.openPinned(join(root, ct.conntrackNew), key as typeof ctKey4, entry as typeof ctEntry4),
        // Records name their family's tables (their keys index its counts).
        ring: new RingBuffer(openPinnedRaw(join(root, maps.events)), event as typeof flowEvent, (e) => this.#onNew(e, tables), () => undefined),
      };
      tables.ring.ref(false);
      return tables;
    };
    this.#families.push(open(FlowMaps, DatapathMaps, ctKey4, ctEntry4, flowEvent));
    this.#families.push(open(FlowMaps6, DatapathMaps6, ctKey6, ctEntry6, flowEvent6));
    this.#setFlag(true);
    this.#unsubscribeDrops = this.#opts.onDrop((d) => this.#onDrop(d));
    this.#timer = setInterval(() => this.#poll(), this.#opts.pollMs ?? 1000);
    this.#timer.unref();
  }

  #stop(): void {
    try {
      this.#setFlag(false);
    } catch {
      /* the datapath is gone: nothing is writing */
    }
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#unsubscribeDrops?.();
    this.#unsubscribeDrops = undefined;
    for (const f of this.#families) {
      f.ring.close();
      f.stats.close();
      f.ct.close();
      f.ctNew.close();
    }
    this.#families = [];
    this.#tracked.clear();
  }

  close(): void {
    this.#emitter.removeAllListeners('flow');
    if (this.active) this.#stop();
  }

  #owner(ifindex: number, deliver: number): FlowOwner | undefined {
    return (ifindex > 1 ? this.#opts.ownerOf(ifindex) : undefined) ?? (deliver > 1 ? this.#opts.ownerOf(deliver) : undefined);
  }

  #emit(r: FlowRecord, sandboxId?: string): void {
    if (sandboxId) this.#ids.set(r, sandboxId);
    this.#emitter.emit('flow', r);
  }

  #onNew(e: Decoded<typeof flowEvent> | Decoded<typeof flowEvent6>, tables: FamilyTables): void {
    const o = e.orig;
    const owner = this.#owner(e.ifindex, e.deliver);
    const record: FlowRecord = {
      Time: new Date().toISOString(),
      Event: 'new',
      Verdict: 'forwarded',
      Protocol: PROTO[o.proto] ?? `proto-${o.proto}`,
      Kind: KIND[e.kind] ?? `kind-${e.kind}`,
      Source: endpoint(o.saddr, o.sport, o.proto),
      Destination: endpoint(o.daddr, o.dport, o.proto),
      Translated: { Source: endpoint(e.nat_saddr, e.nat_sport, o.proto), Destination: endpoint(e.nat_daddr, e.nat_dport, o.proto) },
      ...(owner ? { Sandbox: owner.sandbox, Network: owner.network } : {}),
    };
    // Keys of the two families differ in length: one map tracks both.
    const k = tables.key as typeof ctKey4;
    const origKey = encode(k, { saddr: o.saddr, daddr: o.daddr, sport: o.sport, dport: o.dport, proto: o.proto, hook: o.hook }).toString('hex');
    const replyKey = encode(k, { saddr: e.nat_daddr, daddr: e.nat_saddr, sport: e.nat_dport, dport: e.nat_sport, proto: o.proto, hook: e.reply_hook }).toString('hex');
    this.#tracked.set(origKey, { record, origKey, replyKey, tables });
    this.#emit(record, owner?.sandboxId);
  }

  /** Flows whose connection-table entries are gone or expired have ended: report them with their counts. */
  #poll(): void {
    if (!this.active || this.#tracked.size === 0) return;
    for (const f of this.#families) f.ring.drain();
    const now = process.hrtime.bigint();
    const live = new Set<string>();
    for (const f of this.#families)
      for (const table of [f.ct, f.ctNew]) {
        const ct = table.dumpPacked();
        for (let i = 0; i < ct.count; i++) {
          const expires = ct.values.readBigUInt64LE(i * f.entry.size + f.entry.offsets.expires);
          if (expires >= now) live.add(ct.keys.toString('hex', i * f.key.size, (i + 1) * f.key.size));
        }
      }
    const ended = [...this.#tracked.values()].filter((t) => !live.has(t.origKey) && !live.has(t.replyKey));
    if (ended.length === 0) return;
    const counts = new Map<string, { packets: number; bytes: number }>();
    for (const f of this.#families) {
      const stats = f.stats.dumpPacked();
      for (let i = 0; i < stats.count; i++) {
        const o = i * flowCounts.size;
        counts.set(stats.keys.toString('hex', i * f.key.size, (i + 1) * f.key.size), {
          packets: Number(stats.values.readBigUInt64LE(o + flowCounts.offsets.packets)),
          bytes: Number(stats.values.readBigUInt64LE(o + flowCounts.offsets.bytes)),
        });
      }
    }
    const gone = new Map<FamilyTables, Buffer[]>();
    for (const t of ended) {
      this.#tracked.delete(t.origKey);
      const a = counts.get(t.origKey) ?? { packets: 0, bytes: 0 };
      const b = counts.get(t.replyKey) ?? { packets: 0, bytes: 0 };
      for (const k of [t.origKey, t.replyKey]) {
        if (!counts.has(k)) continue;
        let keys = gone.get(t.tables);
        if (!keys) gone.set(t.tables, (keys = []));
        keys.push(Buffer.from(k, 'hex'));
      }
      const r: FlowRecord = { ...t.record, Time: new Date().toISOString(), Event: 'end', Packets: { Original: a.packets, Reply: b.packets }, Bytes: { Original: a.bytes, Reply: b.bytes } };
      this.#emit(r, this.#ids.get(t.record));
    }
    for (const [f, keys] of gone) {
      try {
        f.stats.deletePacked(Buffer.concat(keys));
      } catch {
        /* LRU may have evicted some already */
      }
    }
  }

  #onDrop(d: DropInfo): void {
    const owner = this.#opts.ownerOfInterface(d.interface);
    this.#emit(
      {
        Time: d.time.toISOString(),
        Event: 'drop',
        Verdict: 'dropped',
        Reason: d.reason,
        Protocol: d.protocol,
        Source: d.source,
        Destination: d.destination,
        ...(owner ? { Sandbox: owner.sandbox, Network: owner.network } : {}),
      },
      owner?.sandboxId,
    );
  }
}
