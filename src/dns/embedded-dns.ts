/**
 * The embedded DNS as the daemon uses it: one resolver in the daemon process, listening on the
 * gateway address of every user-defined network (UDP and TCP port 53), answering each sandbox
 * with the names it may see and forwarding the rest. It also decides every sandbox's
 * resolv.conf nameservers: the gateway of its first user-defined network when it has one, the
 * host's resolvers otherwise (Docker's rule for the default bridge).
 *
 * Why the gateway and not Docker's 127.0.0.11: a socket on the gateway is reachable from every
 * sandbox on the network without entering any namespace (no setns, no per-sandbox socket or NAT
 * rule), and the query's source address plus the gateway it arrived on name the sandbox. One
 * socket pair per network, not per sandbox, is also what aardvark-dns does.
 */
import { resolver6Of, resolverOf, type EndpointRecord, type NetworkRecord, type SandboxRecord } from '../networks/model.js';
import { canonicalIp, parseIp } from '../ipam/ip.js';
import { isIPv4 } from '../ipam/ipv4.js';
import type { StoreWrite } from '../store/observed-store.js';
import { hasEmbeddedDns, LiveNameIndex, namesOf, type DnsSource } from './name-index.js';
import { KernelNames, type KernelNameCounters } from './kernel-names.js';
import { DEFAULT_TTL, failure, relay, Rcode, Resolver, type Decision, type QueryContext, type Upstream } from './resolver.js';
import { DnsServer, type DnsLog } from './server.js';
import { Forwarder, type ForwarderOptions } from './upstream.js';

/** What the embedded DNS reads from the store. */
export interface DnsStore extends DnsSource {
  readonly sandboxes: { all(): SandboxRecord[]; get(id: string): SandboxRecord | undefined };
  readonly networks: { all(): NetworkRecord[]; get(id: string): NetworkRecord | undefined };
  readonly endpoints: { all(): EndpointRecord[]; forSandbox(sandboxId: string): EndpointRecord[] };
}

/** The shortest wait between a write and the kernel's full sync of names, ms. */
const KERNEL_SYNC_MIN_MS = 20;

/** Docker's resolvers when the host has none a sandbox can use. */
export const FALLBACK_NAMESERVERS = ['8.8.8.8', '8.8.4.4'] as const;

export interface EmbeddedDnsOptions {
  readonly store: DnsStore;
  /** The daemon's --dns servers (empty: the host's). */
  readonly servers: readonly string[];
  /** The host's /etc/resolv.conf as the daemon read it. */
  readonly hostResolvConf: string;
  readonly log?: DnsLog;
  /** 53 but in tests. */
  readonly port?: number;
  /** The port of the default upstreams: 53 but in tests. */
  readonly upstreamPort?: number;
  readonly ttl?: number;
  readonly forwarder?: ForwarderOptions;
  /** Told how each query was answered (metrics): 'local' or 'forwarded' by rcode, and the upstream time. */
  readonly observe?: (answer: DnsOutcome, upstreamSeconds?: number) => void;
  /** Answer known names in the kernel too (bpf/dns.bpf.c), with maps pinned under /sys/fs/bpf/<instance>. */
  readonly kernel?: { readonly instance: string };
}

export type DnsOutcome = 'local' | 'forwarded' | 'nxdomain' | 'servfail' | 'refused' | 'dropped' | 'other';

function outcomeOf(packet: Buffer | null, answered: 'local' | 'forwarded'): DnsOutcome {
  if (!packet || packet.length < 4) return 'dropped';
  const rcode = packet.readUInt16BE(2) & 0xf;
  return rcode === 0 ? answered : rcode === 3 ? 'nxdomain' : rcode === 2 ? 'servfail' : rcode === 5 ? 'refused' : 'other';
}

export interface ResolvConfChoice {
  nameservers: string[];
  options: string[];
}

interface HostResolvers {
  /** Every IPv4 nameserver, loopback included: the daemon forwards from the host's namespace. */
  all: string[];
  /** Those a sandbox can reach itself. */
  reachable: string[];
  options: string[];
}

export function parseHostResolvers(text: string): HostResolvers {
  const out: HostResolvers = { all: [], reachable: [], options: [] };
  for (const raw of text.split('\n')) {
    const [key, ...rest] = raw.replace(/[#;].*$/, '').trim().split(/\s+/);
    if (key === 'nameserver' && rest[0] && isIPv4(rest[0])) {
      out.all.push(rest[0]);
      if (!rest[0].startsWith('127.')) out.reachable.push(rest[0]);
    } else if (key === 'nameserver' && rest[0] && parseIp(rest[0])?.family === 6) {
      // An IPv6 upstream the daemon forwards to over IPv6 (a zone-scoped fe80::%if one is not parsed, so not used).
      out.all.push(canonicalIp(rest[0])!);
    } else if (key === 'options') out.options.push(...rest);
  }
  return out;
}

export class EmbeddedDns {
  readonly #store: DnsStore;
  readonly #index: LiveNameIndex;
  readonly #resolver: Resolver;
  readonly #forwarder: Forwarder;
  readonly #server: DnsServer;
  #servers: readonly string[];
  readonly #host: HostResolvers;
  #upstreams: readonly Upstream[];
  readonly #upstreamPort: number;
  readonly #observe: NonNullable<EmbeddedDnsOptions['observe']>;
  readonly #log?: DnsLog;
  #kernel?: KernelNames;
  #kernelPending = false;
  #kernelSyncMs = 0;
  /** Until the daemon's first sync (after reconcile), the previous daemon's kernel names keep answering untouched. */
  #kernelLive = false;

  constructor(opts: EmbeddedDnsOptions) {
    this.#observe = opts.observe ?? (() => undefined);
    this.#store = opts.store;
    this.#servers = opts.servers;
    this.#host = parseHostResolvers(opts.hostResolvConf);
    this.#upstreamPort = opts.upstreamPort ?? 53;
    this.#upstreams = this.#defaults(opts.servers);
    this.#index = new LiveNameIndex(opts.store);
    this.#resolver = new Resolver(this.#index, { ttl: opts.ttl, upstreams: () => this.#upstreams });
    this.#forwarder = new Forwarder(opts.forwarder);
    this.#server = new DnsServer((query, ctx) => this.handle(query, ctx), { port: opts.port, log: opts.log });
    this.#log = opts.log;
    if (opts.kernel) {
      try {
        this.#kernel = new KernelNames({ instance: opts.kernel.instance, ttl: opts.ttl ?? DEFAULT_TTL });
        if (this.#kernel.replacedPins.length > 0) opts.log?.warn(`dns: replaced pinned maps of an older layout: ${this.#kernel.replacedPins.join(', ')}`);
      } catch (err) {
        // The daemon's resolver answers everything then; only the kernel's speed and its answers while the daemon is down are lost.
        opts.log?.warn(`dns: cannot load the in-kernel resolver (${(err as Error).message}); names are answered by the daemon only`);
      }
    }
  }

  /** Queries the kernel answered and handed on; undefined without the in-kernel resolver. */
  get kernelCounters(): KernelNameCounters | undefined {
    return this.#kernel?.counters();
  }

  /**
   * The store was written. What the write may have changed leaves the kernel at once (before
   * the API answers; the daemon answers those names meanwhile), and a full sync follows a little
   * later: at thousands of sandboxes a sync takes milliseconds, so it runs at most once per
   * KERNEL_SYNC_MIN_MS or per four times its own last duration, never once per write.
   */
  namesChanged(write: StoreWrite): void {
    const kernel = this.#kernel;
    if (!kernel || !this.#kernelLive) return;
    if (write.table === 'other') return;
    try {
      const sandboxId =
        write.table === 'sandboxes' ? (write.record?.id ?? write.id) : write.table === 'endpoints' ? ((write.record as EndpointRecord | undefined)?.sandboxId ?? kernel.sandboxOfEndpoint(write.id ?? '')) : undefined;
      if (sandboxId) kernel.forget(sandboxId, this.#namesNow(sandboxId));
    } catch (err) {
      // Not knowing what to forget would leave stale answers: forget everything until the sync.
      this.#log?.warn(`dns: updating the in-kernel names failed: ${(err as Error).message}`);
    }
    this.#scheduleKernelSync();
  }

  /** A sandbox's names as the store has them now (none once it is gone). */
  #namesNow(sandboxId: string): string[] {
    const sb = this.#store.sandboxes.get(sandboxId);
    if (!sb) return [];
    return this.#store.endpoints.forSandbox(sandboxId).flatMap((ep) => namesOf(sb, ep));
  }

  #scheduleKernelSync(): void {
    if (this.#kernelPending) return;
    this.#kernelPending = true;
    const wait = Math.max(KERNEL_SYNC_MIN_MS, 4 * this.#kernelSyncMs);
    setTimeout(() => {
      this.#kernelPending = false;
      this.#syncKernel();
    }, wait).unref();
  }

  #syncKernel(): void {
    const t0 = performance.now();
    try {
      this.#kernel?.sync(this.#index.current);
    } catch (err) {
      this.#log?.warn(`dns: updating the in-kernel names failed: ${(err as Error).message}`);
    }
    this.#kernelSyncMs = performance.now() - t0;
  }

  #defaults(servers: readonly string[]): Upstream[] {
    const list = servers.length > 0 ? servers : this.#host.all.length > 0 ? this.#host.all : FALLBACK_NAMESERVERS;
    return list.map((address) => ({ address, port: this.#upstreamPort }));
  }

  /** New daemon --dns servers (SIGHUP): the next forwarded query uses them. */
  setServers(servers: readonly string[]): void {
    this.#servers = [...servers];
    this.#upstreams = this.#defaults(servers);
  }

  /** The daemon's default upstreams. */
  get upstreams(): readonly Upstream[] {
    return this.#upstreams;
  }

  /** Addresses with a listening resolver now. */
  get listening(): string[] {
    return this.#server.addresses;
  }

  /** Listens on the gateway of every user-defined network, and only there. */
  sync(): Promise<void> {
    this.#kernelLive = true;
    this.#syncKernel();
    return this.#server.sync(this.#index.current.gateways);
  }

  /** Closes the sockets; the kernel's names stay and keep answering. */
  async stop(): Promise<void> {
    await this.#server.close();
    this.#kernel?.close();
    this.#kernel = undefined;
  }

  /** One query: answered here, or forwarded; resolves with the bytes to send back (null: none). */
  handle(query: Buffer, ctx: QueryContext): Buffer | null | Promise<Buffer | null> {
    const d: Decision = this.#resolver.resolve(query, ctx);
    if (d.kind === 'drop') {
      this.#observe('dropped');
      return null;
    }
    if (d.kind === 'reply') {
      this.#observe(outcomeOf(d.packet, 'local'));
      return d.packet;
    }
    const started = process.hrtime.bigint();
    return this.#forwarder.forward(d.query, d.question, d.upstreams, d.transport).then((r) => {
      const answer = r.kind === 'answer' ? relay(d, r.response) : failure(d, r.kind === 'busy' ? Rcode.REFUSED : Rcode.SERVFAIL);
      this.#observe(outcomeOf(answer, 'forwarded'), Number(process.hrtime.bigint() - started) / 1e9);
      return answer;
    });
  }

  /**
   * A sandbox's resolv.conf nameservers and options. On a user-defined network: that network's
   * gateway, `ndots:0` (Docker's: a bare name goes out as it is first); its --dns servers are
   * then its upstreams, not resolv.conf entries. Elsewhere (default bridge, none): its --dns,
   * else the daemon's --dns, else the host's non-loopback nameservers, else 8.8.8.8 and 8.8.4.4.
   */
  resolverFor(sb: SandboxRecord): ResolvConfChoice {
    const first = this.#store.endpoints
      .forSandbox(sb.id)
      .filter((e) => e.state === 'active')
      .sort((a, b) => a.seq - b.seq)
      .map((e) => ({ e, n: this.#store.networks.get(e.networkId) }))
      .find((x): x is { e: typeof x.e; n: NetworkRecord } => x.n !== undefined && hasEmbeddedDns(x.n));
    // The gateway of the family the sandbox has there: IPv4 when it has it, else IPv6 (IPv6-only networks).
    const gateway = first && (first.e.ipv4 && first.n.gateway ? resolverOf(first.n) : resolver6Of(first.n));
    if (gateway) return { nameservers: [gateway], options: [...this.#host.options.filter((o) => !o.startsWith('ndots:')), 'ndots:0'] };
    const nameservers = sb.dns.length > 0 ? sb.dns : this.#servers.length > 0 ? this.#servers : this.#host.reachable.length > 0 ? this.#host.reachable : FALLBACK_NAMESERVERS;
    return { nameservers: [...nameservers], options: [...this.#host.options] };
  }
}
