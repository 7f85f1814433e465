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
 * removes whatever a previous daemon left that is no longer wanted. After that a sync applies only
 * what the index changed (the names and sandboxes a write touched), so its cost follows the
 * change, not the number of sandboxes.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { DNS_ADDRS_MAX, DNS_NAME_MAX, DNS_STAT_MAX, DnsClientFlag, DnsMaps, DnsStat, dnsClient, dnsNameKey, dnsNameValue } from '../datapath/abi.js';
import { DNS_FILTER_PRIORITY } from '../datapath/ebpf/hooks.js';
import { BpfObject, isBpfError, openPinnedRaw, type BpfMap, type BpfProgram, type PerCpuMap } from '../datapath/libbpf/bpf.js';
import { encode, u32, u64 } from '../datapath/libbpf/codec.js';
import { bpfObject } from '../paths.js';
import { resolver6Of, resolverOf, type NetworkRecord } from '../networks/model.js';
import { namesOf, type Attachment, type NameIndex, type NetworkNames, type Target } from './name-index.js';

type NameValue = { count: number; turn: number; ttl: number; addrs: string[]; count6: number; turn6: number; addrs6: string[] };
type Client = { addr: string; gateway: string; addr6: string; gateway6: string; scope: string; flags: number };

/** As of the last sync, per sandbox: its names, addresses, veths with a filter, endpoints, and the filter ids (endpoint|veth). */
type SandboxEntry = { names: Set<string>; addrs: Set<string>; ifindexes: number[]; endpoints: string[]; attached: string[] };

function newSandboxEntry(): SandboxEntry {
  return { names: new Set(), addrs: new Set(), ifindexes: [], endpoints: [], attached: [] };
}

/** A name's two entries on a network ("scope name" and "scope name.network"); none for a network without a resolver. */
function entryKeys(net: NetworkNames, name: string): string[] {
  const scope = scopeOf(net.net);
  return scope ? [`${scope} ${name}`, `${scope} ${name}.${net.net.name.toLowerCase()}`] : [];
}

function clientText(c: Client): string {
  return `${c.addr} ${c.gateway} ${c.addr6} ${c.gateway6} ${c.scope} ${c.flags}`;
}

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
  #sandboxes = new Map<string, SandboxEntry>();
  #endpointSandbox = new Map<string, string>();
  #entriesByName = new Map<string, string[]>();
  #entriesByAddr = new Map<string, string[]>();
  /** entry -> its name and the addresses it is filed under in #entriesByAddr. */
  #entryInfo = new Map<string, { name: string; addrs: string[] }>();
  /** Entries forget() took out since the last sync: the next one writes them back as they are then. */
  #forgotten = new Set<string>();
  /** The index the last sync followed: its changes since then are all a sync needs. */
  #synced?: NameIndex;
  /** Sandboxes whose veth was not there yet for its filter: the next sync tries them again. */
  #retry = new Set<string>();
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

  /**
   * Makes the kernel's names, clients and filters match `index`: in full for a new index (or
   * the first time), else only the names and sandboxes it changed since the last sync, so a
   * sync after one create costs the same with 4,000 sandboxes as with 4.
   */
  sync(index: NameIndex): void {
    if (this.#first || index !== this.#synced) {
      index.takeChanges();
      this.#syncAll(index);
      this.#synced = index;
      return;
    }
    const changes = index.takeChanges();
    const sets: Array<[string, string]> = [];
    const done = new Set<string>();
    const syncName = (net: NetworkNames, name: string) => {
      const key = `${net.net.id} ${name}`;
      if (done.has(key)) return;
      done.add(key);
      this.#syncName(net, name, sets);
    };
    for (const [net, names] of changes.names) for (const name of names) syncName(net, name);
    // What forget() took out for another sandbox's sake (an address once theirs) comes back too.
    if (this.#forgotten.size > 0) {
      const byScope = new Map([...index.networks].map((n) => [scopeOf(n.net), n] as const));
      for (const entry of this.#forgotten) {
        const name = this.#entryInfo.get(entry)?.name;
        const net = byScope.get(entry.slice(0, entry.indexOf(' ')));
        if (name !== undefined && net) syncName(net, name);
      }
      this.#forgotten.clear();
    }
    this.#writeNames(sets);
    const retry = this.#retry;
    this.#retry = new Set();
    for (const sandboxId of new Set([...changes.sandboxes, ...retry])) this.#syncSandbox(index, sandboxId);
  }

  #syncAll(index: NameIndex): void {
    // Compared as text ("gateway name" -> "addresses"), encoded only when new or changed: most
    // names did not move.
    const wanted = new Map<string, string>();
    this.#entriesByName = new Map();
    this.#entriesByAddr = new Map();
    this.#entryInfo = new Map();
    this.#forgotten.clear();
    this.#retry.clear();
    for (const net of index.networks)
      for (const [name, targets] of net.names)
        for (const [entry, addrs, list] of this.#entriesOf(net, name, targets)) {
          wanted.set(entry, addrs);
          this.#link(entry, name, list);
        }
    this.#syncNames(wanted);
    this.#syncClients(index);
    this.#first = false;
  }

  /**
   * The kernel's entries for one name on one network ("scope name" and "scope name.network"),
   * with its addresses as text and as a list; none for a network without a resolver or a name
   * with more addresses than the kernel holds (A and AAAA are answered from the addresses of each
   * family; such a name, and ANY for a name with both, is the daemon's).
   */
  #entriesOf(net: NetworkNames, name: string, targets: readonly Target[]): Array<[string, string, string[]]> {
    if (targets.length === 0) return [];
    const v4 = targets.filter((t) => t.ipv4 !== '').map((t) => t.ipv4);
    const v6 = targets.filter((t) => t.ipv6 !== '').map((t) => t.ipv6);
    if (v4.length > DNS_ADDRS_MAX || v6.length > DNS_ADDRS_MAX) return [];
    const addrs = `${v4.join(' ')}|${v6.join(' ')}`;
    const list = [...v4, ...v6];
    return entryKeys(net, name).map((entry) => [entry, addrs, list]);
  }

  /** Files an entry under its name and addresses, for forget(). */
  #link(entry: string, name: string, addrs: readonly string[]): void {
    const add = (map: Map<string, string[]>, key: string) => {
      const list = map.get(key);
      if (list) list.push(entry);
      else map.set(key, [entry]);
    };
    add(this.#entriesByName, name);
    for (const a of addrs) add(this.#entriesByAddr, a);
    this.#entryInfo.set(entry, { name, addrs: [...addrs] });
  }

  #unlink(entry: string, name: string): void {
    const drop = (map: Map<string, string[]>, key: string) => {
      const rest = (map.get(key) ?? []).filter((e) => e !== entry);
      if (rest.length > 0) map.set(key, rest);
      else map.delete(key);
    };
    drop(this.#entriesByName, name);
    for (const a of this.#entryInfo.get(entry)?.addrs ?? []) drop(this.#entriesByAddr, a);
    this.#entryInfo.delete(entry);
  }

  /** One name of one network brought up to date: its entries written, rewritten or removed. */
  #syncName(net: NetworkNames, name: string, sets: Array<[string, string]>): void {
    const now = new Map(this.#entriesOf(net, name, net.names.get(name) ?? []).map(([entry, addrs, list]) => [entry, { addrs, list }]));
    for (const entry of entryKeys(net, name)) {
      this.#unlink(entry, name);
      const want = now.get(entry);
      if (!want) {
        if (this.#written.delete(entry)) {
          const key = this.#key(entry);
          if (key) this.#names.deleteEncoded(key);
        }
        continue;
      }
      this.#link(entry, name, want.list);
      if (this.#written.get(entry) !== want.addrs) sets.push([entry, want.addrs]);
    }
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
      this.#forgotten.add(entry);
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

  /** Writes entries ("scope name" -> addresses as text) to the kernel in one batch, and records them as written. */
  #writeNames(entries: Iterable<[string, string]>): Set<string> {
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    const written = new Set<string>();
    for (const [entry, addrs] of entries) {
      const key = this.#key(entry);
      if (!key) continue;
      written.add(key.toString('hex'));
      const [four, six] = addrs.split('|').map((l) => (l ? l.split(' ') : []));
      const count = four!.length;
      const count6 = six!.length;
      while (four!.length < DNS_ADDRS_MAX) four!.push('0.0.0.0');
      while (six!.length < DNS_ADDRS_MAX) six!.push('::');
      keys.push(key);
      values.push(encode(dnsNameValue, { count, turn: 0, ttl: this.#ttl, addrs: four!, count6, turn6: 0, addrs6: six! }));
      this.#written.set(entry, addrs);
    }
    if (keys.length > 0) this.#names.setPacked(Buffer.concat(keys), Buffer.concat(values));
    return written;
  }

  #syncNames(wanted: Map<string, string>): void {
    // Rewriting an unchanged entry would only reset its round-robin position.
    const changed = [...wanted].filter(([entry, addrs]) => this.#first || this.#written.get(entry) !== addrs);
    const gone = [...this.#written.keys()].filter((entry) => !wanted.has(entry));
    const kept = this.#writeNames(changed);
    if (this.#first) {
      // What a previous daemon left and nobody wants any more.
      const { keys: packed, count } = this.#names.dumpPacked();
      for (let i = 0; i < count; i++) {
        const key = packed.subarray(i * dnsNameKey.size, (i + 1) * dnsNameKey.size);
        if (!kept.has(key.toString('hex'))) this.#names.deleteEncoded(key);
      }
    }
    for (const entry of gone) {
      const key = this.#key(entry);
      if (key) this.#names.deleteEncoded(key);
    }
    this.#written = wanted;
  }

  #syncClients(index: NameIndex): void {
    const wanted = new Map<number, Client>();
    const attached = new Map<string, number>();
    const sandboxes = new Map<string, SandboxEntry>();
    const endpointSandbox = new Map<string, string>();
    for (const at of index.attachments) {
      const mine = sandboxes.get(at.sandbox.id) ?? newSandboxEntry();
      sandboxes.set(at.sandbox.id, mine);
      endpointSandbox.set(at.endpoint.id, at.sandbox.id);
      const c = this.#clientOf(index, at, mine, this.#first ? undefined : this.#attached);
      if (!c) continue;
      attached.set(c.id, c.ifindex);
      wanted.set(c.ifindex, c.client);
    }
    this.#attached = attached;
    this.#sandboxes = sandboxes;
    this.#endpointSandbox = endpointSandbox;
    if (this.#first) for (const k of this.#clients.keys()) if (!wanted.has(k)) this.#clients.delete(k);
    for (const k of this.#clientsWritten.keys()) if (!wanted.has(k)) this.#clients.delete(k);
    const written = new Map<number, string>();
    for (const [ifindex, client] of wanted) this.#writeClient(ifindex, client, written);
    this.#clientsWritten = written;
  }

  /** Writes a client to the kernel unless it holds it as it is already; records it in `written`. */
  #writeClient(ifindex: number, client: Client, written: Map<number, string>): void {
    const text = clientText(client);
    if (this.#clientsWritten.get(ifindex) !== text) this.#clients.set(ifindex, client);
    written.set(ifindex, text);
  }

  /** One sandbox's clients, filters and bookkeeping brought up to date (it may be gone). */
  #syncSandbox(index: NameIndex, sandboxId: string): void {
    const old = this.#sandboxes.get(sandboxId);
    const mine = newSandboxEntry();
    const wanted = new Map<number, Client>();
    for (const id of old?.endpoints ?? []) this.#endpointSandbox.delete(id);
    const previous = new Map(old?.attached.map((id) => [id, this.#attached.get(id)!] as const));
    for (const id of old?.attached ?? []) this.#attached.delete(id);
    for (const at of index.attachmentsOf(sandboxId)) {
      this.#endpointSandbox.set(at.endpoint.id, sandboxId);
      const c = this.#clientOf(index, at, mine, previous);
      if (!c) continue;
      this.#attached.set(c.id, c.ifindex);
      wanted.set(c.ifindex, c.client);
    }
    for (const ifindex of old?.ifindexes ?? [])
      if (!wanted.has(ifindex) && this.#clientsWritten.delete(ifindex)) this.#clients.delete(ifindex);
    for (const [ifindex, client] of wanted) this.#writeClient(ifindex, client, this.#clientsWritten);
    if (mine.endpoints.length > 0) this.#sandboxes.set(sandboxId, mine);
    else this.#sandboxes.delete(sandboxId);
  }

  /**
   * An attachment's names and addresses filed in mine and, for the sandbox's first user-defined
   * network only (where the daemon's answer is the same), its client: the filter on its host
   * veth (attached now unless `attached` knows it) and what the kernel answers it from.
   */
  #clientOf(index: NameIndex, at: Attachment, mine: SandboxEntry, attached: ReadonlyMap<string, number> | undefined): { id: string; ifindex: number; client: Client } | undefined {
    for (const name of namesOf(at.sandbox, at.endpoint)) mine.names.add(name);
    if (at.endpoint.ipv4) mine.addrs.add(at.endpoint.ipv4);
    if (at.endpoint.ipv6) mine.addrs.add(at.endpoint.ipv6);
    mine.endpoints.push(at.endpoint.id);
    const hostIfname = at.endpoint.hostIfname;
    // Per family, only when the sandbox has an address of it and the network a resolver there.
    const net = at.network.net;
    const scope = scopeOf(net);
    const v4 = at.endpoint.ipv4 && net.gateway ? resolverOf(net) : undefined;
    const v6 = at.endpoint.ipv6 ? resolver6Of(net) : undefined;
    if (!hostIfname || !scope || (!v4 && !v6) || index.networksOf(at.sandbox.id)[0] !== at.network) return undefined;
    const id = `${at.endpoint.id}|${hostIfname}`;
    let ifindex = attached?.get(id);
    if (ifindex === undefined) {
      try {
        ifindex = this.#program.attachTcFilter({ netns: null, ifname: hostIfname }, 'ingress', DNS_FILTER_PRIORITY).ifindex;
      } catch (err) {
        // The veth is not there (being built or torn down): the next sync tries again.
        if (isBpfError(err, 'ENODEV')) {
          this.#retry.add(at.sandbox.id);
          return undefined;
        }
        throw err;
      }
    }
    mine.ifindexes.push(ifindex);
    mine.attached.push(id);
    return {
      id,
      ifindex,
      client: {
        addr: (v4 && at.endpoint.ipv4) || '0.0.0.0',
        gateway: v4 ?? '0.0.0.0',
        addr6: (v6 && at.endpoint.ipv6) || '::',
        gateway6: v6 ?? '::',
        scope,
        flags: (v4 ? DnsClientFlag.V4 : 0) | (v6 ? DnsClientFlag.V6 : 0),
      },
    };
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
