/**
 * The kernel's copy of the names (bpf/dns.bpf.c): the daemon publishes, per user-defined
 * network, each name its sandboxes answer to and their addresses there, and which host veth
 * belongs to which sandbox; a filter on every such veth answers A and AAAA queries for those
 * names before they reach a socket. Faster than any resolver process, and it keeps answering while
 * the daemon is down or restarting (the maps are pinned, the filters live with the veths).
 *
 * It answers only where the daemon would answer identically: queries from a sandbox to the
 * resolver of its first user-defined network (its IPv4 or its IPv6 gateway, over that family),
 * for names on that network (plain, or NAME.NETWORK), with at most DNS_ADDRS_MAX addresses.
 * Everything else falls through to the daemon's resolver, which remains the reference.
 *
 * Writes are diffs against what this daemon wrote last; the first sync after a start also
 * removes whatever a previous daemon left that is no longer wanted.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { DNS_ADDRS_MAX, DNS_NAME_MAX, DNS_STAT_MAX, DnsClientFlag, DnsMaps, DnsStat, dnsClient, dnsNameKey, dnsNameValue } from '../datapath/abi.js';
import { DNS_FILTER_PRIORITY } from '../datapath/ebpf/hooks.js';
import { BpfObject, isBpfError, openPinnedRaw, type BpfMap, type BpfProgram, type PerCpuMap } from '../datapath/libbpf/bpf.js';
import { encode, u32, u64 } from '../datapath/libbpf/codec.js';
import { bpfObject } from '../paths.js';
import { resolver6Of, resolverOf, type NetworkRecord } from '../networks/model.js';
import { namesOf, type NameIndex } from './name-index.js';

type NameValue = { count: number; turn: number; ttl: number; addrs: string[]; count6: number; turn6: number; addrs6: string[] };
type Client = { addr: string; gateway: string; addr6: string; gateway6: string; scope: string; flags: number };

/**
 * A network's scope in dns_names: its IPv4 resolver as ::ffff:a.b.c.d when it has one, else its
 * IPv6 resolver (an IPv6-only network); undefined for a network without either.
 */
export function scopeOf(net: NetworkRecord): string | undefined {
  const v4 = net.gateway ? resolverOf(net) : undefined;
  return v4 ? `::ffff:${v4}` : resolver6Of(net);
}

/** The key and value sizes (and entries) the pins must have: older layouts are replaced, not reused. */
const PINNED_LAYOUT: Record<string, { keySize: number; valueSize: number; maxEntries?: number }> = {
  [DnsMaps.names]: { keySize: dnsNameKey.size, valueSize: dnsNameValue.size },
  [DnsMaps.clients]: { keySize: u32.size, valueSize: dnsClient.size },
  [DnsMaps.stats]: { keySize: u32.size, valueSize: u64.size, maxEntries: DNS_STAT_MAX },
};

/**
 * Removes the pins a daemon with another layout left (an upgrade): libbpf would refuse to reuse
 * them and the in-kernel resolver would not load. The filters still attached keep the old maps
 * alive until the first sync replaces them; the new maps start empty and are filled by that sync.
 */
function dropStalePins(pinRoot: string): string[] {
  const dropped: string[] = [];
  for (const [name, want] of Object.entries(PINNED_LAYOUT)) {
    const path = join(pinRoot, name);
    if (!existsSync(path)) continue;
    const raw = openPinnedRaw(path);
    let info;
    try {
      info = raw.info();
    } finally {
      raw.close();
    }
    if (info.keySize === want.keySize && info.valueSize === want.valueSize && (want.maxEntries === undefined || info.maxEntries === want.maxEntries)) continue;
    unlinkSync(path);
    dropped.push(`${name} (key ${info.keySize}, value ${info.valueSize}, ${info.maxEntries} entries)`);
  }
  return dropped;
}

/** A name in DNS wire format (length-prefixed labels, final zero), zero padded to the key's size; undefined if it does not fit. */
export function wireName(name: string): Buffer | undefined {
  const out = Buffer.alloc(DNS_NAME_MAX);
  let at = 0;
  for (const label of name.split('.')) {
    const bytes = Buffer.from(label, 'latin1');
    if (bytes.length === 0 || bytes.length > 63 || at + 1 + bytes.length + 1 > DNS_NAME_MAX) return undefined;
    out[at++] = bytes.length;
    bytes.copy(out, at);
    at += bytes.length;
  }
  return out;
}

export interface KernelNamesOptions {
  /** The daemon's instance: maps are pinned under /sys/fs/bpf/<instance>/. */
  readonly instance: string;
  readonly ttl: number;
}

export interface KernelNameCounters {
  answered: number;
  passed: number;
  /** Of the answered ones, those asked over IPv6. */
  answered6: number;
}

export class KernelNames {
  readonly #object: BpfObject;
  readonly #program: BpfProgram;
  readonly #names: BpfMap<{ scope: string; name: Buffer }, NameValue>;
  readonly #clients: BpfMap<number, Client>;
  readonly #stats: PerCpuMap<number, number>;
  readonly #ttl: number;
  /** What this daemon wrote: "gateway name" -> its addresses, space separated. */
  #written = new Map<string, string>();
  /** host veth ifindex -> its client, as text. */
  #clientsWritten = new Map<number, string>();
  /** endpoint id + host veth -> its ifindex, once our filter is on it. */
  #attached = new Map<string, number>();
  /** As of the last sync, for forget(): each sandbox's names, addresses and veths; entries by name and by address. */
  #sandboxes = new Map<string, { names: Set<string>; addrs: Set<string>; ifindexes: number[] }>();
  #endpointSandbox = new Map<string, string>();
  #entriesByName = new Map<string, string[]>();
  #entriesByAddr = new Map<string, string[]>();
  #first = true;
  /** Pins of an older layout this daemon replaced at start (said once in the log by the caller). */
  readonly replacedPins: string[];

  constructor(opts: KernelNamesOptions) {
    const pinRoot = join('/sys/fs/bpf', opts.instance);
    this.replacedPins = dropStalePins(pinRoot);
    this.#object = BpfObject.load(bpfObject('dns'), { pinRoot });
    this.#program = this.#object.program('dns_answer');
    this.#names = this.#object.map(DnsMaps.names, dnsNameKey, dnsNameValue);
    this.#clients = this.#object.map(DnsMaps.clients, u32, dnsClient);
    this.#stats = this.#object.perCpuMap(DnsMaps.stats, u32, u64);
    this.#ttl = opts.ttl;
  }

  /** Makes the kernel's names, clients and filters match `index`. */
  sync(index: NameIndex): void {
    // Compared as text ("gateway name" -> "addresses"), encoded only when new or changed: this
    // runs after every store write, and at thousands of sandboxes most names did not move.
    const wanted = new Map<string, string>();
    const byName = new Map<string, string[]>();
    const byAddr = new Map<string, string[]>();
    const add = (map: Map<string, string[]>, key: string, entry: string) => {
      const list = map.get(key);
      if (list) list.push(entry);
      else map.set(key, [entry]);
    };
    for (const net of index.networks) {
      const scope = scopeOf(net.net);
      if (!scope) continue;
      const suffix = `.${net.net.name.toLowerCase()}`;
      for (const [name, targets] of net.names) {
        // A and AAAA are answered from the name's addresses of each family (ANY for a name with
        // both goes to the daemon); a name with more than the kernel holds is the daemon's.
        const v4 = targets.filter((t) => t.ipv4 !== '');
        const v6 = targets.filter((t) => t.ipv6 !== '');
        if (v4.length > DNS_ADDRS_MAX || v6.length > DNS_ADDRS_MAX) continue;
        const addrs = `${v4.map((t) => t.ipv4).join(' ')}|${v6.map((t) => t.ipv6).join(' ')}`;
        for (const entry of [`${scope} ${name}`, `${scope} ${name}${suffix}`]) {
          wanted.set(entry, addrs);
          add(byName, name, entry);
          for (const t of v4) add(byAddr, t.ipv4, entry);
          for (const t of v6) add(byAddr, t.ipv6, entry);
        }
      }
    }
    this.#entriesByName = byName;
    this.#entriesByAddr = byAddr;
    this.#syncNames(wanted);
    this.#syncClients(index);
    this.#first = false;
  }

  /**
   * A sandbox (or one of its endpoints) is being written: until the next sync, the kernel must
   * not answer anything it could have changed — its names (old and `names`, the new ones), its
   * addresses, its queries. Removed here at once; the daemon answers those meanwhile, and the
   * next sync writes them back as they are now.
   */
  forget(sandboxId: string, names: readonly string[]): void {
    const known = this.#sandboxes.get(sandboxId);
    const entries = new Set<string>();
    for (const name of [...names, ...(known?.names ?? [])]) for (const e of this.#entriesByName.get(name) ?? []) entries.add(e);
    for (const addr of known?.addrs ?? []) for (const e of this.#entriesByAddr.get(addr) ?? []) entries.add(e);
    for (const entry of entries) {
      if (!this.#written.delete(entry)) continue;
      const key = this.#key(entry);
      if (key) this.#names.deleteEncoded(key);
    }
    for (const ifindex of known?.ifindexes ?? []) if (this.#clientsWritten.delete(ifindex)) this.#clients.delete(ifindex);
  }

  /** The sandbox of an endpoint as of the last sync. */
  sandboxOfEndpoint(endpointId: string): string | undefined {
    return this.#endpointSandbox.get(endpointId);
  }

  /** The map key of "scope name"; undefined for a name the kernel cannot hold. */
  #key(entry: string): Buffer | undefined {
    const space = entry.indexOf(' ');
    const wire = wireName(entry.slice(space + 1));
    return wire && encode(dnsNameKey, { scope: entry.slice(0, space), name: wire });
  }

  #syncNames(wanted: Map<string, string>): void {
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    const kept = new Set<string>();
    for (const [entry, addrs] of wanted) {
      // Rewriting an unchanged entry would only reset its round-robin position.
      if (!this.#first && this.#written.get(entry) === addrs) continue;
      const key = this.#key(entry);
      if (!key) continue;
      if (this.#first) kept.add(key.toString('hex'));
      const [four, six] = addrs.split('|').map((l) => (l ? l.split(' ') : []));
      const count = four!.length;
      const count6 = six!.length;
      while (four!.length < DNS_ADDRS_MAX) four!.push('0.0.0.0');
      while (six!.length < DNS_ADDRS_MAX) six!.push('::');
      keys.push(key);
      values.push(encode(dnsNameValue, { count, turn: 0, ttl: this.#ttl, addrs: four!, count6, turn6: 0, addrs6: six! }));
    }
    if (this.#first) {
      // What a previous daemon left and nobody wants any more.
      const { keys: packed, count } = this.#names.dumpPacked();
      for (let i = 0; i < count; i++) {
        const key = packed.subarray(i * dnsNameKey.size, (i + 1) * dnsNameKey.size);
        if (!kept.has(key.toString('hex'))) this.#names.deleteEncoded(key);
      }
    }
    for (const entry of this.#written.keys()) {
      if (wanted.has(entry)) continue;
      const key = this.#key(entry);
      if (key) this.#names.deleteEncoded(key);
    }
    if (keys.length > 0) this.#names.setPacked(Buffer.concat(keys), Buffer.concat(values));
    this.#written = wanted;
  }

  #syncClients(index: NameIndex): void {
    const wanted = new Map<number, Client>();
    const attached = new Map<string, number>();
    const sandboxes = new Map<string, { names: Set<string>; addrs: Set<string>; ifindexes: number[] }>();
    const endpointSandbox = new Map<string, string>();
    for (const at of index.attachments) {
      let mine = sandboxes.get(at.sandbox.id);
      if (!mine) sandboxes.set(at.sandbox.id, (mine = { names: new Set(), addrs: new Set(), ifindexes: [] }));
      for (const name of namesOf(at.sandbox, at.endpoint)) mine.names.add(name);
      if (at.endpoint.ipv4) mine.addrs.add(at.endpoint.ipv4);
      if (at.endpoint.ipv6) mine.addrs.add(at.endpoint.ipv6);
      endpointSandbox.set(at.endpoint.id, at.sandbox.id);
      const hostIfname = at.endpoint.hostIfname;
      // Only the first user-defined network's resolver, where the daemon's answer is the same;
      // per family, only when the sandbox has an address of it and the network a resolver there.
      const net = at.network.net;
      const scope = scopeOf(net);
      const v4 = at.endpoint.ipv4 && net.gateway ? resolverOf(net) : undefined;
      const v6 = at.endpoint.ipv6 ? resolver6Of(net) : undefined;
      if (!hostIfname || !scope || (!v4 && !v6) || index.networksOf(at.sandbox.id)[0] !== at.network) continue;
      const id = `${at.endpoint.id}|${hostIfname}`;
      let ifindex = this.#first ? undefined : this.#attached.get(id);
      if (ifindex === undefined) {
        try {
          ifindex = this.#program.attachTcFilter({ netns: null, ifname: hostIfname }, 'ingress', DNS_FILTER_PRIORITY).ifindex;
        } catch (err) {
          // The veth is not there (being built or torn down): the next sync tries again.
          if (isBpfError(err, 'ENODEV')) continue;
          throw err;
        }
      }
      attached.set(id, ifindex);
      mine.ifindexes.push(ifindex);
      wanted.set(ifindex, {
        addr: (v4 && at.endpoint.ipv4) || '0.0.0.0',
        gateway: v4 ?? '0.0.0.0',
        addr6: (v6 && at.endpoint.ipv6) || '::',
        gateway6: v6 ?? '::',
        scope,
        flags: (v4 ? DnsClientFlag.V4 : 0) | (v6 ? DnsClientFlag.V6 : 0),
      });
    }
    this.#attached = attached;
    this.#sandboxes = sandboxes;
    this.#endpointSandbox = endpointSandbox;
    if (this.#first) for (const k of this.#clients.keys()) if (!wanted.has(k)) this.#clients.delete(k);
    for (const k of this.#clientsWritten.keys()) if (!wanted.has(k)) this.#clients.delete(k);
    const written = new Map<number, string>();
    for (const [ifindex, client] of wanted) {
      const text = `${client.addr} ${client.gateway} ${client.addr6} ${client.gateway6} ${client.scope} ${client.flags}`;
      written.set(ifindex, text);
      if (this.#clientsWritten.get(ifindex) !== text) this.#clients.set(ifindex, client);
    }
    this.#clientsWritten = written;
  }

  /** Queries answered in the kernel, and those handed to the daemon, since the maps were made. */
  counters(): KernelNameCounters {
    const sum = (slot: number) => (this.#stats.get(slot) ?? []).reduce((a, b) => a + b, 0);
    return { answered: sum(DnsStat.ANSWERED), passed: sum(DnsStat.PASSED), answered6: sum(DnsStat.ANSWERED6) };
  }

  /** Daemon exit: handles go, the maps and filters stay (names keep resolving). */
  close(): void {
    this.#object.close();
  }
}
