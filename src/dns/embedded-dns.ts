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
import type { EndpointRecord, NetworkRecord, SandboxRecord } from '../networks/model.js';
import { isIPv4 } from '../ipam/ipv4.js';
import { hasEmbeddedDns, LiveNameIndex, type DnsSource } from './name-index.js';
import { failure, relay, Rcode, Resolver, type Decision, type QueryContext, type Upstream } from './resolver.js';
import { DnsServer, type DnsLog } from './server.js';
import { Forwarder, type ForwarderOptions } from './upstream.js';

/** What the embedded DNS reads from the store. */
export interface DnsStore extends DnsSource {
  readonly networks: { all(): NetworkRecord[]; get(id: string): NetworkRecord | undefined };
  readonly endpoints: { all(): EndpointRecord[]; forSandbox(sandboxId: string): EndpointRecord[] };
}

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
    return this.#server.sync(this.#index.current.gateways);
  }

  stop(): Promise<void> {
    return this.#server.close();
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
      .map((e) => this.#store.networks.get(e.networkId))
      .find((n): n is NetworkRecord => n !== undefined && hasEmbeddedDns(n));
    if (first) return { nameservers: [first.gateway!], options: [...this.#host.options.filter((o) => !o.startsWith('ndots:')), 'ndots:0'] };
    const nameservers = sb.dns.length > 0 ? sb.dns : this.#servers.length > 0 ? this.#servers : this.#host.reachable.length > 0 ? this.#host.reachable : FALLBACK_NAMESERVERS;
    return { nameservers: [...nameservers], options: [...this.#host.options] };
  }
}
