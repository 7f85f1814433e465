/**
 * ClusterState in one process: a MemoryClusterBackend plays etcd (the authoritative maps,
 * conditional writes, host leases) and every MemoryCluster joined to it plays a host, its
 * cache fed synchronously by the backend. For single-host tests of the overlay driver and
 * for the contract suite; `expire(hostId)` is a host's lease running out.
 */
import { canonicalAddress } from './addresses.js';
import { ClusterCache } from './cluster-cache.js';
import {
  ClusterConflict,
  ClusterNotFound,
  ClusterUnavailable,
  addressHolder,
  type ClusterReservation,
  type GlobalNetwork,
  type HostInfo,
  type OwnedState,
  type ReconcileReport,
  type RemoteEndpoint,
} from './cluster.js';

interface Reserved {
  holder: string;
  hostId: string;
}

export class MemoryClusterBackend {
  readonly hosts = new Map<string, HostInfo>();
  readonly networks = new Map<string, GlobalNetwork>();
  readonly endpoints = new Map<string, RemoteEndpoint>();
  readonly reservations = new Map<string, Reserved>();
  readonly members = new Set<MemoryCluster>();
  /** While true every write rejects with ClusterUnavailable (a store outage). */
  down = false;

  /** A host joins: its lease starts, its cache is filled with what exists. */
  join(hostId: string, advertiseAddr: string): MemoryCluster {
    const member = new MemoryCluster(this, hostId, advertiseAddr);
    this.members.add(member);
    member.load();
    this.hosts.set(hostId, { hostId, advertiseAddr, joined: new Date().toISOString() });
    for (const m of this.members) m.deliver({ host: this.hosts.get(hostId)! });
    return member;
  }

  /** A host's lease runs out: it and everything bound to its lease go. */
  expire(hostId: string): void {
    for (const m of [...this.members]) if (m.hostId === hostId) this.members.delete(m);
    this.hosts.delete(hostId);
    for (const m of this.members) m.deliver({ hostGone: hostId });
    for (const [key, ep] of [...this.endpoints]) {
      if (ep.hostId !== hostId) continue;
      this.endpoints.delete(key);
      for (const m of this.members) m.deliver({ endpointGone: [ep.networkId, ep.endpointId] });
    }
    for (const [key, r] of [...this.reservations]) {
      if (r.hostId !== hostId) continue;
      this.reservations.delete(key);
      const [networkId, address] = splitKey(key);
      for (const m of this.members) m.deliver({ reservationGone: [networkId, address] });
    }
  }

  check(): void {
    if (this.down) throw new ClusterUnavailable('cluster store unreachable (memory backend is down)');
  }
}

const joinKey = (a: string, b: string) => `${a}\u0000${b}`;
const splitKey = (k: string): [string, string] => k.split('\u0000') as [string, string];

type Change =
  | { host: HostInfo }
  | { hostGone: string }
  | { network: GlobalNetwork }
  | { networkGone: string }
  | { endpoint: RemoteEndpoint }
  | { endpointGone: [string, string] }
  | { reservation: [string, string, string] }
  | { reservationGone: [string, string] };

export class MemoryCluster extends ClusterCache {
  readonly #backend: MemoryClusterBackend;
  #closed = false;

  constructor(backend: MemoryClusterBackend, hostId: string, advertiseAddr: string) {
    super(hostId, advertiseAddr);
    this.#backend = backend;
  }

  /** Fills the cache's hosts and networks from the backend (a join's initial list). */
  load(): void {
    this.clearGlobal();
    for (const h of this.#backend.hosts.values()) this.hostMap.set(h.hostId, h);
    for (const n of this.#backend.networks.values()) this.networkMap.set(n.id, n);
  }

  protected override async loadNetwork(networkId: string): Promise<void> {
    this.#ready();
    const b = this.#backend;
    const endpoints = [...b.endpoints.values()].filter((e) => e.networkId === networkId);
    const reservations = [...b.reservations].flatMap(([k, r]): Array<[string, string]> => {
      const [n, a] = splitKey(k);
      return n === networkId ? [[a, r.holder]] : [];
    });
    this.replaceNetwork(networkId, endpoints, reservations);
  }

  async readEndpoints(networkId: string): Promise<RemoteEndpoint[]> {
    this.#ready();
    return [...this.#backend.endpoints.values()].filter((e) => e.networkId === networkId);
  }

  protected override unloadNetwork(): void {
    /* the backend delivers every change; the cache keeps only followed networks' */
  }

  /** The backend's watch delivery. */
  deliver(c: Change): void {
    if ('host' in c) this.applyHost(c.host);
    else if ('hostGone' in c) this.applyHostGone(c.hostGone);
    else if ('network' in c) this.applyNetwork(c.network);
    else if ('networkGone' in c) this.applyNetworkGone(c.networkGone);
    else if ('endpoint' in c) this.applyEndpoint(c.endpoint);
    else if ('endpointGone' in c) this.applyEndpointGone(...c.endpointGone);
    else if ('reservation' in c) this.applyReservation(...c.reservation);
    else this.applyReservationGone(...c.reservationGone);
  }

  #broadcast(c: Change): void {
    for (const m of this.#backend.members) m.deliver(c);
  }

  #ready(): void {
    if (this.#closed) throw new ClusterUnavailable(`host ${this.hostId} has left the cluster`);
    this.#backend.check();
  }

  async createNetwork(network: GlobalNetwork): Promise<void> {
    this.#ready();
    const b = this.#backend;
    if (b.networks.has(network.id)) throw new ClusterConflict(`network with id ${network.id} already exists in the cluster`);
    for (const n of b.networks.values()) {
      if (n.name === network.name) throw new ClusterConflict(`network with name ${network.name} already exists in the cluster`);
      if (n.vni === network.vni) throw new ClusterConflict(`VXLAN id ${network.vni} is already used by network ${n.name}`);
    }
    b.networks.set(network.id, network);
    this.#broadcast({ network });
  }

  async deleteNetwork(networkId: string): Promise<void> {
    this.#ready();
    const b = this.#backend;
    const net = b.networks.get(networkId);
    if (!net) return;
    const used = [...b.endpoints.values()].filter((e) => e.networkId === networkId);
    if (used.length > 0) throw new ClusterConflict(`network ${net.name} has active endpoints (${used.map((e) => e.name).join(', ')})`);
    b.networks.delete(networkId);
    for (const k of [...b.reservations.keys()]) {
      const [n, a] = splitKey(k);
      if (n !== networkId) continue;
      b.reservations.delete(k);
      this.#broadcast({ reservationGone: [n, a] });
    }
    this.#broadcast({ networkGone: networkId });
  }

  async reserveAddress(networkId: string, address: string, holder: string): Promise<ClusterReservation> {
    this.#ready();
    const a = canonicalAddress(address);
    if (!this.#backend.networks.has(networkId)) throw new ClusterNotFound(`network ${networkId} not found in the cluster`);
    const key = joinKey(networkId, a);
    const current = this.#backend.reservations.get(key);
    if (current) return current.holder === holder ? { reserved: true } : { reserved: false, holder: current.holder };
    this.#backend.reservations.set(key, { holder, hostId: this.hostId });
    this.#broadcast({ reservation: [networkId, a, holder] });
    return { reserved: true };
  }

  async releaseAddress(networkId: string, address: string, holder: string): Promise<void> {
    this.#ready();
    const a = canonicalAddress(address);
    const key = joinKey(networkId, a);
    if (this.#backend.reservations.get(key)?.holder !== holder) return;
    this.#backend.reservations.delete(key);
    this.#broadcast({ reservationGone: [networkId, a] });
  }

  async releaseHolder(networkId: string, holder: string): Promise<string[]> {
    this.#ready();
    const released: string[] = [];
    for (const [key, r] of [...this.#backend.reservations]) {
      const [n, a] = splitKey(key);
      if (n !== networkId || r.holder !== holder || r.hostId !== this.hostId) continue;
      this.#backend.reservations.delete(key);
      this.#broadcast({ reservationGone: [n, a] });
      released.push(a);
    }
    return released;
  }

  async publishEndpoint(ep: Omit<RemoteEndpoint, 'hostId' | 'hostAddress'>): Promise<void> {
    this.#ready();
    if (!this.#backend.networks.has(ep.networkId)) throw new ClusterNotFound(`network ${ep.networkId} not found in the cluster`);
    const key = joinKey(ep.networkId, ep.endpointId);
    const existing = this.#backend.endpoints.get(key);
    if (existing && existing.hostId !== this.hostId) throw new ClusterConflict(`endpoint ${ep.endpointId} belongs to host ${existing.hostId}`);
    const holder = addressHolder(ep.endpointId, this.hostId);
    for (const addr of [ep.ipv4, ep.ipv6]) {
      if (addr === undefined) continue;
      const r = await this.reserveAddress(ep.networkId, addr, holder);
      if (!r.reserved) throw new ClusterConflict(`address ${addr} of endpoint ${ep.name} is held by ${r.holder}`);
    }
    const endpoint: RemoteEndpoint = { ...ep, hostId: this.hostId, hostAddress: this.advertiseAddr };
    this.#backend.endpoints.set(key, endpoint);
    this.#broadcast({ endpoint });
  }

  async withdrawEndpoint(networkId: string, endpointId: string): Promise<void> {
    this.#ready();
    const key = joinKey(networkId, endpointId);
    const ep = this.#backend.endpoints.get(key);
    if (!ep) return;
    if (ep.hostId !== this.hostId) throw new ClusterConflict(`endpoint ${endpointId} belongs to host ${ep.hostId}`);
    this.#backend.endpoints.delete(key);
    this.#broadcast({ endpointGone: [networkId, endpointId] });
    const holder = addressHolder(endpointId, this.hostId);
    for (const addr of [ep.ipv4, ep.ipv6]) if (addr !== undefined) await this.releaseAddress(networkId, addr, holder);
  }

  async reconcile(owned: OwnedState): Promise<ReconcileReport> {
    this.#ready();
    const b = this.#backend;
    const report: ReconcileReport = { republished: [], withdrawn: [], lost: [] };
    const wantedEps = new Set(owned.endpoints.map((e) => joinKey(e.networkId, e.endpointId)));
    const wantedHolders = new Set([
      ...owned.endpoints.map((e) => addressHolder(e.endpointId, this.hostId)),
      ...owned.reservations.map((r) => r.holder),
    ]);
    for (const [key, ep] of [...b.endpoints]) {
      if (ep.hostId !== this.hostId || wantedEps.has(key)) continue;
      b.endpoints.delete(key);
      this.#broadcast({ endpointGone: [ep.networkId, ep.endpointId] });
      report.withdrawn.push(`endpoints/${ep.networkId}/${ep.endpointId}`);
    }
    for (const [key, r] of [...b.reservations]) {
      if (r.hostId !== this.hostId || wantedHolders.has(r.holder)) continue;
      b.reservations.delete(key);
      const [n, a] = splitKey(key);
      this.#broadcast({ reservationGone: [n, a] });
      report.withdrawn.push(`reservations/${n}/${a}`);
    }
    for (const r of owned.reservations) {
      const got = await this.reserveAddress(r.networkId, r.address, r.holder).catch(() => undefined);
      if (!got?.reserved) report.lost.push(`${r.networkId}/${r.address}`);
    }
    for (const e of owned.endpoints) {
      try {
        await this.publishEndpoint(e);
        report.republished.push(`${e.networkId}/${e.endpointId}`);
      } catch (err) {
        report.lost.push(`${e.networkId}/${e.endpointId}: ${(err as Error).message}`);
      }
    }
    return report;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#backend.expire(this.hostId);
    this.#closed = true;
  }
}
