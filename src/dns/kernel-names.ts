/**
 * The kernel's copy of the names (bpf/dns.bpf.c): the daemon publishes, per user-defined
 * network, each name its sandboxes answer to and their addresses there, and which host veth
 * belongs to which sandbox; a filter on every such veth answers A queries for those names
 * before they reach a socket. Faster than any resolver process, and it keeps answering while
 * the daemon is down or restarting (the maps are pinned, the filters live with the veths).
 *
 * It answers only where the daemon would answer identically: queries from a sandbox to the
 * gateway of its first user-defined network (where its resolv.conf points), for names on that
 * network (plain, or NAME.NETWORK), with at most DNS_ADDRS_MAX addresses. Everything else
 * falls through to the daemon's resolver, which remains the reference.
 *
 * Writes are diffs against what this daemon wrote last; the first sync after a start also
 * removes whatever a previous daemon left that is no longer wanted.
 */
import { join } from 'node:path';
import { DNS_ADDRS_MAX, DNS_NAME_MAX, DnsMaps, DnsStat, dnsClient, dnsNameKey, dnsNameValue } from '../datapath/abi.js';
import { DNS_FILTER_PRIORITY } from '../datapath/ebpf/hooks.js';
import { BpfObject, isBpfError, type BpfMap, type BpfProgram, type PerCpuMap } from '../datapath/libbpf/bpf.js';
import { encode, u32, u64 } from '../datapath/libbpf/codec.js';
import { bpfObject } from '../paths.js';
import type { NameIndex } from './name-index.js';

type NameValue = { count: number; turn: number; ttl: number; addrs: string[] };
type Client = { addr: string; gateway: string };

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
}

export class KernelNames {
  readonly #object: BpfObject;
  readonly #program: BpfProgram;
  readonly #names: BpfMap<{ scope: string; name: Buffer }, NameValue>;
  readonly #clients: BpfMap<number, Client>;
  readonly #stats: PerCpuMap<number, number>;
  readonly #ttl: number;
  /** What this daemon wrote: encoded key (hex) -> encoded value (hex). */
  #written = new Map<string, string>();
  /** host veth ifindex -> "addr gateway". */
  #clientsWritten = new Map<number, string>();
  /** endpoint id + host veth -> its ifindex, once our filter is on it. */
  #attached = new Map<string, number>();
  #first = true;

  constructor(opts: KernelNamesOptions) {
    this.#object = BpfObject.load(bpfObject('dns'), { pinRoot: join('/sys/fs/bpf', opts.instance) });
    this.#program = this.#object.program('dns_answer');
    this.#names = this.#object.map(DnsMaps.names, dnsNameKey, dnsNameValue);
    this.#clients = this.#object.map(DnsMaps.clients, u32, dnsClient);
    this.#stats = this.#object.perCpuMap(DnsMaps.stats, u32, u64);
    this.#ttl = opts.ttl;
  }

  /** Makes the kernel's names, clients and filters match `index`. */
  sync(index: NameIndex): void {
    const names = new Map<string, { key: Buffer; value: Buffer }>();
    for (const net of index.networks) {
      const suffix = `.${net.net.name.toLowerCase()}`;
      for (const [name, targets] of net.names) {
        if (targets.length > DNS_ADDRS_MAX) continue;
        const addrs = targets.map((t) => t.ipv4);
        while (addrs.length < DNS_ADDRS_MAX) addrs.push('0.0.0.0');
        const value = encode(dnsNameValue, { count: targets.length, turn: 0, ttl: this.#ttl, addrs });
        for (const spelled of [name, name + suffix]) {
          const wire = wireName(spelled);
          if (!wire) continue;
          const key = encode(dnsNameKey, { scope: net.net.gateway!, name: wire });
          names.set(key.toString('hex'), { key, value });
        }
      }
    }
    this.#syncNames(names);
    this.#syncClients(index);
    this.#first = false;
  }

  #syncNames(wanted: Map<string, { key: Buffer; value: Buffer }>): void {
    if (this.#first) {
      const { keys, count } = this.#names.dumpPacked();
      for (let i = 0; i < count; i++) {
        const key = keys.subarray(i * dnsNameKey.size, (i + 1) * dnsNameKey.size);
        if (!wanted.has(key.toString('hex'))) this.#names.deleteEncoded(key);
      }
    }
    for (const hex of this.#written.keys()) if (!wanted.has(hex)) this.#names.deleteEncoded(Buffer.from(hex, 'hex'));
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    const written = new Map<string, string>();
    for (const [hex, { key, value }] of wanted) {
      const valueHex = value.toString('hex');
      written.set(hex, valueHex);
      // Rewriting an unchanged entry would only reset its round-robin position.
      if (this.#written.get(hex) === valueHex) continue;
      keys.push(key);
      values.push(value);
    }
    if (keys.length > 0) this.#names.setPacked(Buffer.concat(keys), Buffer.concat(values));
    this.#written = written;
  }

  #syncClients(index: NameIndex): void {
    const wanted = new Map<number, Client>();
    const attached = new Map<string, number>();
    for (const at of index.attachments) {
      const hostIfname = at.endpoint.hostIfname;
      // Only the first user-defined network's resolver, where the daemon's answer is the same.
      if (!hostIfname || index.networksOf(at.sandbox.id)[0] !== at.network) continue;
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
      wanted.set(ifindex, { addr: at.endpoint.ipv4!, gateway: at.network.net.gateway! });
    }
    this.#attached = attached;
    if (this.#first) for (const k of this.#clients.keys()) if (!wanted.has(k)) this.#clients.delete(k);
    for (const k of this.#clientsWritten.keys()) if (!wanted.has(k)) this.#clients.delete(k);
    const written = new Map<number, string>();
    for (const [ifindex, client] of wanted) {
      const text = `${client.addr} ${client.gateway}`;
      written.set(ifindex, text);
      if (this.#clientsWritten.get(ifindex) !== text) this.#clients.set(ifindex, client);
    }
    this.#clientsWritten = written;
  }

  /** Queries answered in the kernel, and those handed to the daemon, since the maps were made. */
  counters(): KernelNameCounters {
    const sum = (slot: number) => (this.#stats.get(slot) ?? []).reduce((a, b) => a + b, 0);
    return { answered: sum(DnsStat.ANSWERED), passed: sum(DnsStat.PASSED) };
  }

  /** Daemon exit: handles go, the maps and filters stay (names keep resolving). */
  close(): void {
    this.#object.close();
  }
}
