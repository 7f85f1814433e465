/**
 * Who may see which names: an index of the sandboxes on user-defined networks, built from
 * the store's records and brought up to date whenever the store's version moves (the written
 * sandboxes alone when the store says which), so a query always sees the current state (run,
 * connect, disconnect, rename, rm) without a query touching SQLite.
 */
import { canonicalIp, parseIp, parsePrefix, prefixContains, type IpPrefix } from '../ipam/ip.js';
import { resolver6Of, resolverOf, type EndpointRecord, type NetworkRecord, type SandboxRecord } from '../networks/model.js';
import type { StoreWrite } from '../store/observed-store.js';

/** The part of the store the resolver reads. */
export interface DnsSource {
  /** Moves on every change. */
  readonly version: number;
  readonly networks: { all(): NetworkRecord[] };
  readonly sandboxes: { all(): SandboxRecord[]; get(id: string): SandboxRecord | undefined };
  readonly endpoints: { all(): EndpointRecord[]; forSandbox(sandboxId: string): EndpointRecord[] };
  /** Each write as it happens, one version step each (ObservedStore's): the index then reads back only what they touched. */
  readonly writeListeners?: Set<(write: StoreWrite) => void>;
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

/** A target with its endpoint's creation order, which orders a name's targets. */
interface SeqTarget extends Target {
  readonly seq: number;
}

interface NetworkEntry extends NetworkNames {
  readonly names: Map<string, SeqTarget[]>;
}

interface Contribution {
  addresses: Array<[string, Attachment]>;
  targets: Array<{ network: NetworkEntry; name: string; target: SeqTarget }>;
  endpoints: string[];
  attachments: Attachment[];
}

/** What replaceSandbox changed since it was last asked: the names whose targets moved, per network, and the sandboxes. */
export interface IndexChanges {
  readonly names: ReadonlyMap<NetworkNames, ReadonlySet<string>>;
  readonly sandboxes: ReadonlySet<string>;
}

/** Active endpoints with an address, in creation order. */
function activeInOrder(endpoints: readonly EndpointRecord[]): EndpointRecord[] {
  return endpoints.filter((e) => e.state === 'active' && (e.ipv4 !== undefined || e.ipv6 !== undefined)).sort((a, b) => a.seq - b.seq);
}

export class NameIndex {
  /** Every active endpoint on a user-defined network, by its address. */
  readonly #byAddress = new Map<string, Attachment>();
  /** Networks by the gateway address their resolver listens on. */
  readonly #byGateway = new Map<string, NetworkNames>();
  readonly #byName = new Map<string, NetworkNames>();
  /** Networks with embedded DNS by id, with their mutable name lists. */
  readonly #nets = new Map<string, NetworkEntry>();
  /** Each sandbox's user-defined networks, in attachment order. */
  readonly #bySandbox = new Map<string, NetworkNames[]>();
  /** What each sandbox put in the maps above, so replaceSandbox can take exactly that out. */
  readonly #contributions = new Map<string, Contribution>();
  /** endpoint id -> its sandbox, for endpoints in the index (a deleted endpoint's write names only its id). */
  readonly #sandboxOfEndpoint = new Map<string, string>();
  /** Since the last takeChanges(), for a copy that follows the index (the kernel's names). */
  #changes = { names: new Map<NetworkNames, Set<string>>(), sandboxes: new Set<string>() };

  constructor(networks: readonly NetworkRecord[], sandboxes: readonly SandboxRecord[], endpoints: readonly EndpointRecord[]) {
    for (const net of networks) {
      if (!hasEmbeddedDns(net)) continue;
      const subnets = [net.subnet, net.subnet6].flatMap((t) => (t ? [parsePrefix(t)!] : []));
      const entry: NetworkEntry = { net, subnets, names: new Map<string, SeqTarget[]>() };
      this.#nets.set(net.id, entry);
      // The resolver listens on each of the network's resolver addresses, IPv4 and IPv6.
      for (const gateway of [resolverOf(net), resolver6Of(net)]) if (gateway) this.#byGateway.set(gateway, entry);
      if (!this.#byName.has(net.name.toLowerCase())) this.#byName.set(net.name.toLowerCase(), entry);
    }
    const boxes = new Map(sandboxes.filter((s) => VISIBLE.has(s.state)).map((s) => [s.id, s]));
    for (const ep of activeInOrder(endpoints)) {
      const sandbox = boxes.get(ep.sandboxId);
      if (sandbox) this.#attach(sandbox, ep);
    }
  }

  /**
   * Brings one sandbox up to date (its record, or undefined once it is gone, and all its
   * endpoints) without touching the others: what a create, connect, disconnect, rename or rm
   * changes, at the cost of that one sandbox whatever the number of the rest.
   */
  replaceSandbox(sandboxId: string, sandbox: SandboxRecord | undefined, endpoints: readonly EndpointRecord[]): void {
    const old = this.#contributions.get(sandboxId);
    if (old) {
      for (const [address, at] of old.addresses) if (this.#byAddress.get(address) === at) this.#byAddress.delete(address);
      for (const { network, name, target } of old.targets) {
        const list = network.names.get(name);
        const rest = list?.filter((t) => t !== target) ?? [];
        if (rest.length > 0) network.names.set(name, rest);
        else network.names.delete(name);
        this.#changed(network, name);
      }
      for (const id of old.endpoints) this.#sandboxOfEndpoint.delete(id);
      this.#contributions.delete(sandboxId);
      this.#bySandbox.delete(sandboxId);
    }
    this.#changes.sandboxes.add(sandboxId);
    if (!sandbox || !VISIBLE.has(sandbox.state)) return;
    for (const ep of activeInOrder(endpoints)) if (ep.sandboxId === sandboxId) this.#attach(sandbox, ep);
  }

  /** The names and sandboxes replaceSandbox changed since the last call (a copy applies them instead of re-reading everything). */
  takeChanges(): IndexChanges {
    const taken = this.#changes;
    this.#changes = { names: new Map(), sandboxes: new Set() };
    return taken;
  }

  /** A sandbox's attachments to networks with embedded DNS, in attachment order. */
  attachmentsOf(sandboxId: string): readonly Attachment[] {
    return this.#contributions.get(sandboxId)?.attachments ?? [];
  }

  #changed(network: NetworkNames, name: string): void {
    const names = this.#changes.names.get(network);
    if (names) names.add(name);
    else this.#changes.names.set(network, new Set([name]));
  }

  /** The sandbox of an endpoint in the index. */
  sandboxOfEndpoint(endpointId: string): string | undefined {
    return this.#sandboxOfEndpoint.get(endpointId);
  }

  /** Adds one active endpoint of a visible sandbox; its names keep the endpoints' creation order (seq). */
  #attach(sandbox: SandboxRecord, ep: EndpointRecord): void {
    const network = this.#nets.get(ep.networkId);
    if (!network || (ep.ipv4 === undefined && ep.ipv6 === undefined)) return;
    let mine = this.#contributions.get(sandbox.id);
    if (!mine) this.#contributions.set(sandbox.id, (mine = { addresses: [], targets: [], endpoints: [], attachments: [] }));
    mine.endpoints.push(ep.id);
    this.#sandboxOfEndpoint.set(ep.id, sandbox.id);
    const at: Attachment = { sandbox, endpoint: ep, network };
    mine.attachments.push(at);
    for (const address of [ep.ipv4, ep.ipv6])
      if (address) {
        this.#byAddress.set(address, at);
        mine.addresses.push([address, at]);
      }
    const target: SeqTarget = { ipv4: ep.ipv4 ?? '', ipv6: ep.ipv6 ?? '', sandbox, seq: ep.seq };
    for (const name of namesOf(sandbox, ep)) {
      const list = network.names.get(name);
      if (!list) network.names.set(name, [target]);
      else {
        // After every target of a lower or equal seq: the order a whole build gives.
        let pos = list.length;
        while (pos > 0 && list[pos - 1].seq > target.seq) pos--;
        list.splice(pos, 0, target);
      }
      mine.targets.push({ network, name, target });
      this.#changed(network, name);
    }
    const list = this.#bySandbox.get(sandbox.id);
    if (list) list.push(network);
    else this.#bySandbox.set(sandbox.id, [network]);
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

/**
 * A NameIndex that follows the source: when the source reports its writes (writeListeners, the
 * daemon's ObservedStore) and every version step since the last look is one of them, only the
 * sandboxes those writes touched are read back (replaceSandbox); anything else (a network
 * written, a change the source did not report, such as a remote endpoint) rebuilds it whole.
 */
export class LiveNameIndex {
  readonly #source: DnsSource;
  #built = -1;
  #index?: NameIndex;
  /** Writes reported since the last look: how many, the sandboxes they touched, whether a network was among them. */
  #reported = { count: 0, sandboxes: new Set<string>(), endpoints: new Set<string>(), network: false };
  /** Called after each change (the resolver resets its rotation). */
  onRebuild?: () => void;

  constructor(source: DnsSource) {
    this.#source = source;
    source.writeListeners?.add((w) => {
      const r = this.#reported;
      r.count++;
      if (w.table === 'networks') r.network = true;
      else if (w.table === 'sandboxes') r.sandboxes.add(w.record?.id ?? w.id ?? '');
      else if (w.table === 'endpoints') {
        const sandboxId = (w.record as EndpointRecord | undefined)?.sandboxId;
        if (sandboxId) r.sandboxes.add(sandboxId);
        else if (w.id) r.endpoints.add(w.id);
      }
    });
  }

  get current(): NameIndex {
    const version = this.#source.version;
    if (this.#index && version === this.#built) return this.#index;
    const r = this.#reported;
    this.#reported = { count: 0, sandboxes: new Set(), endpoints: new Set(), network: false };
    if (this.#index && !r.network && version - this.#built === r.count) {
      const index = this.#index;
      for (const id of r.endpoints) {
        const sandboxId = index.sandboxOfEndpoint(id);
        if (sandboxId) r.sandboxes.add(sandboxId);
      }
      for (const id of r.sandboxes) index.replaceSandbox(id, this.#source.sandboxes.get(id), this.#source.endpoints.forSandbox(id));
    } else {
      this.#index = NameIndex.from(this.#source);
    }
    this.#built = version;
    this.onRebuild?.();
    return this.#index;
  }
}
