/**
 * Who may see which names: an index of the sandboxes on user-defined networks, built from
 * the store's records and rebuilt whenever the store's version moves, so a query always sees
 * the current state (run, connect, disconnect, rename, rm) without a query touching SQLite.
 */
import { canonicalIp, parseIp, parsePrefix, prefixContains, type IpPrefix } from '../ipam/ip.js';
import { resolver6Of, resolverOf, type EndpointRecord, type NetworkRecord, type SandboxRecord } from '../networks/model.js';

/** The part of the store the resolver reads. */
export interface DnsSource {
  readonly version: number;
  readonly networks: { all(): NetworkRecord[] };
  readonly sandboxes: { all(): SandboxRecord[] };
  readonly endpoints: { all(): EndpointRecord[] };
}

/** One address a name stands for on one network. */
export interface Target {
  /** '' when the endpoint has no IPv4 address (IPv6-only network). */
  readonly ipv4: string;
  /** '' when the endpoint has no IPv6 address. */
  readonly ipv6: string;
  readonly sandbox: SandboxRecord;
}

/** A user-defined network with the names of its sandboxes (lower case, no trailing dot). */
export interface NetworkNames {
  readonly net: NetworkRecord;
  /** Its subnets, IPv4 first: where it is authoritative for reverse lookups. */
  readonly subnets: readonly IpPrefix[];
  readonly names: ReadonlyMap<string, readonly Target[]>;
}

/** A sandbox's address on one user-defined network. */
export interface Attachment {
  readonly sandbox: SandboxRecord;
  readonly endpoint: EndpointRecord;
  readonly network: NetworkNames;
}

/**
 * Networks that get embedded DNS: Docker's rule, user-defined bridges and overlays (not bridge,
 * host, none), and user-defined networks whose driver gave the resolver an address of its own (macvlan).
 */
export function hasEmbeddedDns(net: NetworkRecord): boolean {
  return !net.predefined && (net.driver === 'bridge' || net.driver === 'overlay' || net.dnsAddress !== undefined || net.dnsAddress6 !== undefined) && ((net.gateway !== undefined && net.subnet !== undefined) || (net.gateway6 !== undefined && net.subnet6 !== undefined));
}

/** A sandbox's names on a network, as Docker's DNSNames: its name, its short id, then the endpoint's aliases. */
export function namesOf(sb: SandboxRecord, ep: EndpointRecord): string[] {
  return [...new Set([sb.name, sb.id.slice(0, 12), ...ep.aliases].map((n) => n.toLowerCase()))];
}

/** Normalises a query name: lower case, without the root dot. */
export function canonical(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

const VISIBLE: ReadonlySet<SandboxRecord['state']> = new Set(['created', 'running', 'exited']);

export class NameIndex {
  /** Every active endpoint on a user-defined network, by its address. */
  readonly #byAddress = new Map<string, Attachment>();
  /** Networks by the gateway address their resolver listens on. */
  readonly #byGateway = new Map<string, NetworkNames>();
  readonly #byName = new Map<string, NetworkNames>();
  /** Each sandbox's user-defined networks, in attachment order. */
  readonly #bySandbox = new Map<string, NetworkNames[]>();

  constructor(networks: readonly NetworkRecord[], sandboxes: readonly SandboxRecord[], endpoints: readonly EndpointRecord[]) {
    const nets = new Map<string, { net: NetworkRecord; subnets: IpPrefix[]; names: Map<string, Target[]> }>();
    for (const net of networks) {
      if (!hasEmbeddedDns(net)) continue;
      const subnets = [net.subnet, net.subnet6].flatMap((t) => (t ? [parsePrefix(t)!] : []));
      const entry = { net, subnets, names: new Map<string, Target[]>() };
      nets.set(net.id, entry);
      // The resolver listens on each of the network's resolver addresses, IPv4 and IPv6.
      for (const gateway of [resolverOf(net), resolver6Of(net)]) if (gateway) this.#byGateway.set(gateway, entry);
      if (!this.#byName.has(net.name.toLowerCase())) this.#byName.set(net.name.toLowerCase(), entry);
    }
    const boxes = new Map(sandboxes.filter((s) => VISIBLE.has(s.state)).map((s) => [s.id, s]));
    const active = endpoints.filter((e) => e.state === 'active' && (e.ipv4 !== undefined || e.ipv6 !== undefined)).sort((a, b) => a.seq - b.seq);
    for (const ep of active) {
      const sandbox = boxes.get(ep.sandboxId);
      const network = nets.get(ep.networkId);
      if (!sandbox || !network) continue;
      for (const address of [ep.ipv4, ep.ipv6]) if (address) this.#byAddress.set(address, { sandbox, endpoint: ep, network });
      const target: Target = { ipv4: ep.ipv4 ?? '', ipv6: ep.ipv6 ?? '', sandbox };
      for (const name of namesOf(sandbox, ep)) {
        const targets = network.names.get(name);
        if (targets) targets.push(target);
        else network.names.set(name, [target]);
      }
      const list = this.#bySandbox.get(sandbox.id);
      if (list) list.push(network);
      else this.#bySandbox.set(sandbox.id, [network]);
    }
  }

  static from(source: DnsSource): NameIndex {
    return new NameIndex(source.networks.all(), source.sandboxes.all(), source.endpoints.all());
  }

  /** The networks with embedded DNS and their names, for the kernel's copy (kernel-names.ts). */
  get networks(): IterableIterator<NetworkNames> {
    return new Set(this.#byGateway.values()).values();
  }

  /** Every active endpoint of a visible sandbox on those networks (once, whatever its families). */
  get attachments(): IterableIterator<Attachment> {
    return new Set(this.#byAddress.values()).values();
  }

  /** Gateway addresses of the networks with embedded DNS: where the resolver listens. */
  get gateways(): string[] {
    return [...this.#byGateway.keys()];
  }

  /**
   * The sandbox behind a query: its source address must be an endpoint on the network whose
   * gateway received it (so nothing else, host or default bridge, is answered).
   */
  querier(source: string, local: string): Attachment | undefined {
    // An IPv6 socket may report an address in another spelling than the stored (canonical) one.
    const at = this.#byAddress.get(source) ?? this.#byAddress.get(canonicalIp(source) ?? '');
    if (!at) return undefined;
    const arrived = this.#byGateway.get(local) ?? this.#byGateway.get(canonicalIp(local) ?? '');
    return arrived && arrived.net.id === at.network.net.id ? at : undefined;
  }

  /** A sandbox's user-defined networks, in attachment order. */
  networksOf(sandboxId: string): readonly NetworkNames[] {
    return this.#bySandbox.get(sandboxId) ?? [];
  }

  /**
   * What `name` stands for as seen from `sandboxId`: on the first of its networks that knows
   * the name (Docker's order), or, for NAME.NETWORK, on that network if the sandbox is on it.
   */
  lookup(sandboxId: string, name: string): { network: NetworkNames; key: string; targets: readonly Target[] } | undefined {
    const key = canonical(name);
    const mine = this.networksOf(sandboxId);
    for (const network of mine) {
      const targets = network.names.get(key);
      if (targets) return { network, key, targets };
    }
    for (let dot = key.indexOf('.'); dot > 0; dot = key.indexOf('.', dot + 1)) {
      const network = this.#byName.get(key.slice(dot + 1));
      if (!network || !mine.includes(network)) continue;
      const targets = network.names.get(key.slice(0, dot));
      if (targets) return { network, key, targets };
    }
    return undefined;
  }

  /**
   * The name of an address as seen from `sandboxId`: `NAME.NETWORK` when a sandbox holds it
   * on one of the querier's networks; 'unknown' when the address lies in one of those
   * networks' subnets but nothing holds it (we are authoritative there); undefined otherwise.
   */
  reverse(sandboxId: string, address: string): string | 'unknown' | undefined {
    const mine = this.networksOf(sandboxId);
    const at = this.#byAddress.get(address);
    if (at && mine.includes(at.network)) return `${at.sandbox.name}.${at.network.net.name}`;
    const a = parseIp(address);
    if (a !== undefined && mine.some((net) => net.subnets.some((s) => prefixContains(s, a)))) return 'unknown';
    return undefined;
  }
}

/** A NameIndex that rebuilds itself when the source's version moves. */
export class LiveNameIndex {
  readonly #source: DnsSource;
  #built = -1;
  #index?: NameIndex;
  /** Called after each rebuild (the resolver resets its rotation). */
  onRebuild?: () => void;

  constructor(source: DnsSource) {
    this.#source = source;
  }

  get current(): NameIndex {
    const version = this.#source.version;
    if (!this.#index || version !== this.#built) {
      this.#index = NameIndex.from(this.#source);
      this.#built = version;
      this.onRebuild?.();
    }
    return this.#index;
  }
}
