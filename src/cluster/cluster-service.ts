/**
 * The daemon's side of the cluster: joins etcd (and keeps trying while it cannot, so a
 * daemon starts and serves its local networks with etcd down), keeps this host's id and a
 * journal of its global-scope endpoints in the local store, and reconciles the two at every
 * join: an endpoint whose creation or removal was interrupted (a SIGKILL between the etcd
 * write and the local one) is withdrawn from etcd, an active one re-put under the new lease.
 *
 * Global endpoints here are the cluster half of a connect (address reservation, name,
 * VTEP); the overlay driver adds the kernel half around them. Every call that needs etcd
 * fails with a 503-style ServiceError while it cannot be reached.
 */
import { randomBytes } from 'node:crypto';
import { ServiceError, conflict, invalid, notFound, unavailable } from '../errors.js';
import type { Store } from '../store/store.js';
import { failpoint } from '../util/failpoint.js';
import { canonicalAddress, formatAddress, parseAddress, parsePrefix, prefixContains } from './addresses.js';
import {
  ClusterConflict,
  ClusterNotFound,
  ClusterUnavailable,
  addressHolder,
  type ClusterListener,
  type ClusterState,
  type GlobalNetwork,
  type HostInfo,
  type ReconcileReport,
  type RemoteEndpoint,
} from './cluster.js';
import { EtcdCluster, type EtcdClusterStats } from './etcd-cluster.js';

export interface ClusterSettings {
  /** etcd client URLs (from --cluster-store). */
  endpoints: string[];
  /** --advertise-addr: the VTEP address other hosts reach this one at. */
  advertiseAddr: string;
  /** --cluster-lease-ttl seconds. */
  leaseTtl: number;
}

interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

type JournalState = 'creating' | 'active' | 'removing';

/** One global endpoint of this host, as the local store remembers it. */
interface JournalEntry {
  state: JournalState;
  networkId: string;
  name: string;
  aliases: string[];
  ipv4?: string;
  ipv6?: string;
  mac?: string;
  /** Asked-for address (--ip): reserved as given, never another. */
  staticIp?: boolean;
  /**
   * Made through the cluster API alone (POST /cluster/networks/{id}/endpoints), with no local
   * endpoint behind it: the check for endpoints this host no longer has must leave it alone.
   */
  standalone?: boolean;
}

const HOST_ID_KEY = 'cluster.host-id';
const JOURNAL_KEY = 'cluster.endpoints';

export interface ConnectRequest {
  network: string;
  /** The local endpoint's id (the overlay driver's), else a new one. */
  endpointId?: string;
  name: string;
  aliases?: string[];
  ipv4?: string;
  /** A static IPv6 address (--ip6) on a network with an IPv6 subnet. */
  ipv6?: string;
}

export interface ClusterInfo {
  HostId: string;
  AdvertiseAddr: string;
  Store: string;
  Joined: boolean;
  LeaseId?: string;
  Hosts: HostInfo[];
  Stats?: EtcdClusterStats;
  LastReconcile?: ReconcileReport;
}

export class ClusterService {
  readonly hostId: string;
  readonly #store: Store;
  readonly #settings: ClusterSettings;
  readonly #log: Logger;
  #cluster?: EtcdCluster;
  #stopped = false;
  #joining?: Promise<void>;
  #lastReconcile?: ReconcileReport;
  readonly #listeners = new Set<ClusterListener>();

  constructor(store: Store, settings: ClusterSettings, log: Logger) {
    this.#store = store;
    this.#settings = settings;
    this.#log = log;
    let id = store.getMeta(HOST_ID_KEY);
    if (!id) {
      id = randomBytes(8).toString('hex');
      store.setMeta(HOST_ID_KEY, id);
    }
    this.hostId = id;
  }

  /** Starts joining; resolves once joined or after the first failed attempt (joining goes on in the background). */
  async start(): Promise<void> {
    let first!: () => void;
    const firstAttempt = new Promise<void>((r) => (first = r));
    this.#joining = (async () => {
      for (let delay = 250; !this.#stopped; delay = Math.min(delay * 2, 2000)) {
        try {
          await this.#join();
          first();
          return;
        } catch (err) {
          this.#log.warn(`cluster: cannot join ${this.#settings.endpoints.join(',')} (${(err as Error).message}); retrying in ${delay} ms`);
          first();
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    })();
    await firstAttempt;
  }

  async #join(): Promise<void> {
    const cluster = await EtcdCluster.join({
      endpoints: this.#settings.endpoints,
      hostId: this.hostId,
      advertiseAddr: this.#settings.advertiseAddr,
      leaseTtl: this.#settings.leaseTtl,
      log: (level, msg) => this.#log[level](msg),
    });
    try {
      // The networks this host has endpoints on are listed first: reconcile's writes then know what they hold.
      await cluster.follow(this.#journalNetworks());
      const report = await this.#reconcile(cluster);
      await cluster.follow(this.#journalNetworks());
      this.#lastReconcile = report;
      this.#log.info(
        `cluster: joined as host ${this.hostId} (${this.#settings.advertiseAddr}), lease ${cluster.leaseId}; ` +
          `republished ${report.republished.length}, withdrew ${report.withdrawn.length}${report.lost.length ? `, lost ${report.lost.join('; ')}` : ''}`,
      );
    } catch (err) {
      await cluster.close();
      throw err;
    }
    if (this.#stopped) {
      await cluster.close();
      return;
    }
    cluster.onChange((e) => {
      for (const l of this.#listeners) l(e);
    });
    this.#cluster = cluster;
    // What was listed at join came before anyone could subscribe: followers re-read the whole view.
    for (const l of this.#listeners) l({ kind: 'resync' });
  }

  /** Every change the watch sees, across re-joins; returns an unsubscribe. */
  onChange(listener: ClusterListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The journal against etcd: interrupted creations and removals are undone/finished, active endpoints re-put. */
  async #reconcile(cluster: EtcdCluster): Promise<ReconcileReport> {
    const journal = this.#journal();
    const owned = Object.entries(journal)
      .filter(([, e]) => e.state === 'active' && (e.ipv4 !== undefined || e.ipv6 !== undefined))
      .map(([id, e]) => ({
        networkId: e.networkId,
        endpointId: id,
        name: e.name,
        aliases: e.aliases,
        ...(e.ipv4 !== undefined ? { ipv4: e.ipv4 } : {}),
        ...(e.ipv6 !== undefined ? { ipv6: e.ipv6 } : {}),
        mac: e.mac ?? macFor(e.ipv4 ?? e.ipv6!),
      }));
    const report = await cluster.reconcile({ endpoints: owned, reservations: [] });
    const lost = new Set(report.lost.map((l) => l.split(':')[0]));
    this.#editJournal((j) => {
      for (const [id, e] of Object.entries(j)) {
        // Not active: its etcd keys were just withdrawn (reconcile removes what `owned` omits).
        if (e.state !== 'active' || lost.has(`${e.networkId}/${id}`)) delete j[id];
      }
    });
    return report;
  }

  /** The joined cluster, or a 503 naming the store. */
  get cluster(): ClusterState {
    if (!this.#cluster) throw unavailable(`cluster store ${this.#settings.endpoints.join(',')} unreachable: this host has not joined the cluster yet`);
    return this.#cluster;
  }

  info(): ClusterInfo {
    const c = this.#cluster;
    return {
      HostId: this.hostId,
      AdvertiseAddr: this.#settings.advertiseAddr,
      Store: this.#settings.endpoints.join(','),
      Joined: c !== undefined && c.leaseId !== undefined,
      ...(c?.leaseId ? { LeaseId: c.leaseId } : {}),
      Hosts: c?.hosts() ?? [],
      ...(c ? { Stats: c.stats } : {}),
      ...(this.#lastReconcile ? { LastReconcile: this.#lastReconcile } : {}),
    };
  }

  networks(): GlobalNetwork[] {
    return this.cluster.networks();
  }

  /** A network with an IPv4 subnet, an IPv6 one or both; each family's gateway is its subnet's first address. */
  async createNetwork(req: { name: string; subnet?: string; subnet6?: string; vni?: number; id?: string; internal?: boolean; labels?: Record<string, string> }): Promise<GlobalNetwork> {
    const prefix = req.subnet === undefined ? undefined : parsePrefix(req.subnet);
    if (req.subnet !== undefined && (!prefix || prefix.family !== 4 || prefix.bits > 30)) throw invalid(`invalid subnet "${req.subnet}": an IPv4 CIDR of /30 or larger`);
    const prefix6 = req.subnet6 === undefined ? undefined : parsePrefix(req.subnet6);
    if (req.subnet6 !== undefined && (!prefix6 || prefix6.family !== 6 || prefix6.bits > 126)) throw invalid(`invalid subnet "${req.subnet6}": an IPv6 CIDR of /126 or larger`);
    if (!prefix && !prefix6) throw invalid(`network ${req.name}: an IPv4 or an IPv6 subnet is needed`);
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(req.name)) throw invalid(`invalid network name "${req.name}"`);
    const c = this.cluster;
    if (req.vni !== undefined && !(Number.isInteger(req.vni) && req.vni >= 1 && req.vni <= 0xffffff)) throw invalid(`invalid VXLAN id ${req.vni}: 1 to 16777215`);
    const network: GlobalNetwork = {
      id: req.id ?? randomBytes(32).toString('hex'),
      name: req.name,
      driver: 'overlay',
      vni: req.vni ?? c.freeVni(),
      ...(prefix ? { subnet: `${formatAddress(4, prefix.base)}/${prefix.bits}`, gateway: formatAddress(4, prefix.base + 1n) } : {}),
      ...(prefix6 ? { subnet6: `${formatAddress(6, prefix6.base)}/${prefix6.bits}`, gateway6: formatAddress(6, prefix6.base + 1n) } : {}),
      internal: req.internal ?? false,
      attachable: true,
      options: {},
      labels: req.labels ?? {},
      created: new Date().toISOString(),
    };
    await wrap(() => createPickingVni(c, network, req.vni === undefined));
    return network;
  }

  async deleteNetwork(idOrName: string): Promise<void> {
    const c = this.cluster;
    const net = c.network(idOrName);
    if (!net) throw notFound(`network ${idOrName} not found`);
    await wrap(() => c.deleteNetwork(net.id));
  }

  /** A network's endpoints (or every network's): from the cache where this host follows it, else read from the store. */
  async endpoints(networkIdOrName?: string): Promise<RemoteEndpoint[]> {
    const c = this.cluster;
    const of = (id: string) => (c.following(id) ? Promise.resolve(c.endpoints(id)) : wrap(() => c.readEndpoints(id)));
    if (networkIdOrName === undefined) return (await Promise.all(c.networks().map((n) => of(n.id)))).flat();
    const net = c.network(networkIdOrName);
    if (!net) throw notFound(`network ${networkIdOrName} not found`);
    return of(net.id);
  }

  /** The networks this host has (or is making or removing) endpoints on: the ones it follows. */
  #journalNetworks(): Set<string> {
    return new Set(Object.values(this.#journal()).map((e) => e.networkId));
  }

  /** Follows exactly the journal's networks (after an endpoint left: its network may be dropped). */
  #refollow(): void {
    const c = this.#cluster;
    if (!c) return;
    c.follow(this.#journalNetworks()).catch((err: Error) => this.#log.warn(`cluster: following this host's networks: ${err.message}`));
  }

  /**
   * The cluster half of a connect: journal "creating", reserve an address (CAS), publish the
   * endpoint (lease-bound), journal "active". A failure undoes what was done; a crash leaves
   * "creating" for the next start to undo against etcd.
   */
  async connect(req: ConnectRequest): Promise<RemoteEndpoint> {
    const c = this.cluster;
    const net = c.network(req.network);
    if (!net) throw notFound(`network ${req.network} not found`);
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(req.name)) throw invalid(`invalid endpoint name "${req.name}"`);
    if (req.ipv4 !== undefined) {
      const p = parsePrefix(net.subnet ?? '');
      if (parseAddress(req.ipv4)?.family !== 4 || !p || !prefixContains(p, req.ipv4)) throw invalid(`address ${req.ipv4} is not in network ${net.name}'s subnet ${net.subnet}`);
    }
    if (req.ipv6 !== undefined) {
      const p = parsePrefix(net.subnet6 ?? '');
      if (parseAddress(req.ipv6)?.family !== 6 || !p || !prefixContains(p, req.ipv6)) throw invalid(`address ${req.ipv6} is not in network ${net.name}'s IPv6 subnet ${net.subnet6 ?? '(none)'}`);
    }
    const id = req.endpointId ?? randomBytes(32).toString('hex');
    if (this.#journal()[id]) throw conflict(`endpoint ${id} is already connected on this host`);
    const holder = addressHolder(id, this.hostId);
    const aliases = req.aliases ?? [];
    this.#editJournal((j) => (j[id] = { state: 'creating', networkId: net.id, name: req.name, aliases, staticIp: req.ipv4 !== undefined, ...(req.endpointId === undefined ? { standalone: true } : {}) }));
    // One address per family the network has: the asked one (compare-and-swap), else a free one.
    const claim = async (family: 4 | 6, asked: string | undefined): Promise<string> => {
      if (asked === undefined) return wrap(() => c.allocateAddress(net.id, holder, family));
      const r = await wrap(() => c.reserveAddress(net.id, asked, holder));
      if (!r.reserved) throw conflict(`address ${asked} is already in use on network ${net.name} (held by ${r.holder})`);
      return canonicalAddress(asked);
    };
    try {
      // Its endpoints and reservations listed before an address is picked from them.
      await wrap(() => c.follow(this.#journalNetworks()));
      const ipv4 = net.subnet ? await claim(4, req.ipv4) : undefined;
      if (ipv4) this.#editJournal((j) => (j[id] = { ...j[id]!, ipv4 }));
      const ipv6 = net.subnet6 ? await claim(6, req.ipv6) : undefined;
      if (ipv6) this.#editJournal((j) => (j[id] = { ...j[id]!, ipv6 }));
      await failpoint('cluster:after-reserve');
      const endpoint = { networkId: net.id, endpointId: id, name: req.name, aliases, ...(ipv4 ? { ipv4 } : {}), ...(ipv6 ? { ipv6 } : {}), mac: macFor(ipv4 ?? ipv6!) };
      await wrap(() => c.publishEndpoint(endpoint));
      await failpoint('cluster:after-publish');
      // Per name too, so a test can arm one connect of a daemon that serves others meanwhile.
      await failpoint(`cluster:after-publish:${req.name}`);
      this.#editJournal((j) => (j[id] = { ...j[id]!, state: 'active', mac: endpoint.mac }));
      return { ...endpoint, hostId: this.hostId, hostAddress: c.advertiseAddr };
    } catch (err) {
      // A write that failed as "unreachable" may still have committed (the answer was lost, not
      // the write), and a failed allocation may hold an address we never learnt: undo until etcd says it is undone.
      void this.#undo(net.id, id, holder);
      throw err;
    }
  }

  /** Withdraws a failed connect's endpoint and addresses, retrying while etcd is unreachable; a re-join's reconcile also does it. */
  async #undo(networkId: string, endpointId: string, holder: string): Promise<void> {
    for (let delay = 250; !this.#stopped && this.#journal()[endpointId]?.state === 'creating'; delay = Math.min(delay * 2, 2000)) {
      try {
        const c = this.cluster;
        await c.withdrawEndpoint(networkId, endpointId);
        await c.releaseHolder(networkId, holder);
        this.#editJournal((j) => delete j[endpointId]);
        this.#refollow();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Whether this host made the endpoint for a local one (an overlay connect), not through the cluster API alone. */
  backsLocalEndpoint(endpointId: string): boolean {
    const entry = this.#journal()[endpointId];
    return entry !== undefined && entry.standalone !== true;
  }

  /** The cluster half of a disconnect: journal "removing", withdraw (which frees the address), forget. */
  async disconnect(networkIdOrName: string, endpointId: string): Promise<void> {
    const c = this.cluster;
    const net = c.network(networkIdOrName);
    if (!net) throw notFound(`network ${networkIdOrName} not found`);
    const entry = this.#journal()[endpointId];
    if (!entry || entry.networkId !== net.id) throw notFound(`endpoint ${endpointId} is not on this host's part of network ${net.name}`);
    this.#editJournal((j) => (j[endpointId] = { ...entry, state: 'removing' }));
    await wrap(() => c.withdrawEndpoint(net.id, endpointId));
    this.#editJournal((j) => delete j[endpointId]);
    this.#refollow();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    // Not revoked: sandboxes keep forwarding while the daemon is down, so their endpoints stay
    // published until the TTL (a restart within it re-binds them); a host that is gone for good
    // drops out when its lease expires.
    await this.#cluster?.detach();
    this.#cluster = undefined;
  }

  #journal(): Record<string, JournalEntry> {
    const text = this.#store.getMeta(JOURNAL_KEY);
    return text ? (JSON.parse(text) as Record<string, JournalEntry>) : {};
  }

  #editJournal(edit: (j: Record<string, JournalEntry>) => void): void {
    this.#store.transaction(() => {
      const j = this.#journal();
      edit(j);
      this.#store.setMeta(JOURNAL_KEY, JSON.stringify(j));
    });
  }
}

/** Docker's MAC for an IPv4 endpoint: 02:42 and the address's four bytes; for an IPv6-only one the last four (as the bridge driver's). */
export function macFor(address: string): string {
  const a = parseAddress(address);
  if (!a) throw new Error(`"${address}" is not an IP address`);
  const low = Number(a.value & 0xffffffffn);
  return ['02', '42', ...[24, 16, 8, 0].map((s) => ((low >>> s) & 0xff).toString(16).padStart(2, '0'))].join(':');
}

/**
 * Creates network in the cluster. A VNI this host picked from its cache (none was asked for)
 * that a network another host created at the same moment took is replaced by the next free
 * one: two hosts creating networks at once both succeed. A conflict on the id or name stands.
 */
async function createPickingVni(c: ClusterState, network: GlobalNetwork, picked: boolean): Promise<void> {
  const tried = new Set<number>();
  for (;;) {
    try {
      return await c.createNetwork(network);
    } catch (err) {
      const vniTaken = err instanceof ClusterConflict && err.message.startsWith(`VXLAN id ${network.vni} `);
      if (!picked || !vniTaken || tried.size >= 8) throw err;
      tried.add(network.vni);
      let next = c.freeVni(); // the cache may not show the winner yet: skip what lost already
      while (tried.has(next)) next++;
      network.vni = next;
    }
  }
}

/** Cluster errors as the API's kinds: unreachable 503, conflict 409, missing 404. */
async function wrap<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ServiceError) throw err;
    if (err instanceof ClusterUnavailable) throw unavailable(err.message);
    if (err instanceof ClusterConflict) throw conflict(err.message);
    if (err instanceof ClusterNotFound) throw notFound(err.message);
    throw err;
  }
}
