/**
 * The part every ClusterState implementation shares: the cached view the watch keeps
 * current (hosts and networks always; endpoints and reservations of the followed networks
 * only), the listeners, and address allocation as a loop of conditional reservations over
 * that view. Implementations feed it with apply*() as their watch reports changes, list a
 * network when it is first followed (loadNetwork) and implement the writes.
 */
import { createHash } from 'node:crypto';
import { candidates, canonicalAddress, formatAddress, parsePrefix, type Prefix } from './addresses.js';
import {
  ClusterNotFound,
  ClusterUnavailable,
  VNI_FIRST,
  VNI_LAST,
  type ClusterEvent,
  type ClusterListener,
  type ClusterReservation,
  type ClusterState,
  type GlobalNetwork,
  type HostInfo,
  type OwnedState,
  type ReconcileReport,
  type RemoteEndpoint,
} from './cluster.js';

/** How many lost races allocateAddress tolerates before it reports the network as contended. */
export const MAX_ALLOCATE_CONFLICTS = 64;

export abstract class ClusterCache implements ClusterState {
  readonly hostId: string;
  readonly advertiseAddr: string;
  protected readonly hostMap = new Map<string, HostInfo>();
  protected readonly networkMap = new Map<string, GlobalNetwork>();
  /** networkId -> endpointId -> endpoint */
  protected readonly endpointMap = new Map<string, Map<string, RemoteEndpoint>>();
  /** networkId -> address -> holder */
  protected readonly reservationMap = new Map<string, Map<string, string>>();
  /** networkId/family -> the address this host allocated last (next-fit, as the local IPAM does). */
  readonly #lastAllocated = new Map<string, string>();
  readonly #listeners = new Set<ClusterListener>();
  readonly #inflight = new Set<string>();
  /** Followed networks -> their first listing (resolved once the cache holds the network). */
  readonly #followed = new Map<string, Promise<void>>();

  constructor(hostId: string, advertiseAddr: string) {
    this.hostId = hostId;
    this.advertiseAddr = advertiseAddr;
  }

  hosts(): HostInfo[] {
    return [...this.hostMap.values()];
  }

  networks(): GlobalNetwork[] {
    return [...this.networkMap.values()];
  }

  network(idOrName: string): GlobalNetwork | undefined {
    return this.networkMap.get(idOrName) ?? [...this.networkMap.values()].find((n) => n.name === idOrName);
  }

  endpoints(networkId: string): RemoteEndpoint[] {
    return [...(this.endpointMap.get(networkId)?.values() ?? [])];
  }

  remoteEndpoints(networkId: string): RemoteEndpoint[] {
    return this.endpoints(networkId).filter((e) => e.hostId !== this.hostId);
  }

  addressHolder(networkId: string, address: string): string | undefined {
    return this.reservationMap.get(networkId)?.get(canonicalAddress(address));
  }

  freeVni(): number {
    const taken = new Set([...this.networkMap.values()].map((n) => n.vni));
    for (let v = VNI_FIRST; v <= VNI_LAST; v++) if (!taken.has(v)) return v;
    throw new ClusterUnavailable('no free VXLAN network identifier left');
  }

  following(networkId: string): boolean {
    return this.#followed.has(networkId);
  }

  /** The networks this host follows. */
  protected followedNetworks(): string[] {
    return [...this.#followed.keys()];
  }

  async follow(networkIds: Iterable<string>): Promise<void> {
    const want = new Set(networkIds);
    for (const id of [...this.#followed.keys()]) {
      if (want.has(id)) continue;
      this.#followed.delete(id);
      this.unloadNetwork(id);
      this.replaceNetwork(id, [], []);
    }
    for (const id of want) {
      if (this.#followed.has(id)) continue;
      const loading = this.loadNetwork(id);
      // A failed listing leaves the network unfollowed: the next follow() lists it again.
      loading.catch(() => {
        if (this.#followed.get(id) === loading) this.#followed.delete(id);
      });
      this.#followed.set(id, loading);
    }
    await Promise.all([...want].map((id) => this.#followed.get(id)));
  }

  onChange(listener: ClusterListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async allocateAddress(networkId: string, holder: string, family: 4 | 6 = 4): Promise<string> {
    const net = this.networkMap.get(networkId);
    if (!net) throw new ClusterNotFound(`network ${networkId} not found in the cluster`);
    const subnet = family === 4 ? net.subnet : net.subnet6;
    const prefix = subnet === undefined ? undefined : parsePrefix(subnet);
    if (!prefix) throw new ClusterNotFound(`network ${net.name} has no IPv${family} subnet`);
    const gateway = family === 4 ? net.gateway : net.gateway6;
    const skip = new Set(gateway ? [canonicalAddress(gateway)] : []);
    const key = `${networkId}/${family}`;
    let conflicts = 0;
    for (const address of candidates(prefix, skip, this.#lastAllocated.get(key) ?? hostStart(prefix, this.hostId))) {
      // The cache is a hint: skip what it shows taken, let the store decide the rest.
      const cached = this.reservationMap.get(networkId)?.get(address);
      if (cached !== undefined && cached !== holder) continue;
      // Concurrent allocations on this host try different addresses instead of racing each other.
      const flight = `${networkId}/${address}`;
      if (this.#inflight.has(flight)) continue;
      this.#inflight.add(flight);
      let r: ClusterReservation;
      try {
        r = await this.reserveAddress(networkId, address, holder);
      } finally {
        this.#inflight.delete(flight);
      }
      if (r.reserved) {
        this.#lastAllocated.set(key, address);
        return address;
      }
      if (++conflicts >= MAX_ALLOCATE_CONFLICTS) break;
    }
    throw new ClusterUnavailable(
      conflicts >= MAX_ALLOCATE_CONFLICTS
        ? `could not reserve an address on network ${net.name}: ${conflicts} reservations lost to other hosts in a row`
        : `no available IPv${family} address on network ${net.name}`,
    );
  }

  protected emit(event: ClusterEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch {
        /* a listener's failure is its own; the cache stays consistent */
      }
    }
  }

  protected applyHost(host: HostInfo): void {
    this.hostMap.set(host.hostId, host);
    this.emit({ kind: 'host-up', host });
  }

  protected applyHostGone(hostId: string): void {
    if (this.hostMap.delete(hostId)) this.emit({ kind: 'host-down', hostId });
  }

  protected applyNetwork(network: GlobalNetwork): void {
    this.networkMap.set(network.id, network);
    this.emit({ kind: 'network-put', network });
  }

  protected applyNetworkGone(networkId: string): void {
    if (this.networkMap.delete(networkId)) this.emit({ kind: 'network-delete', networkId });
  }

  /** Endpoints and reservations are cached for followed networks only (`force`: the one being listed or dropped). */
  protected applyEndpoint(endpoint: RemoteEndpoint, force = false): void {
    if (!force && !this.#followed.has(endpoint.networkId)) return;
    let m = this.endpointMap.get(endpoint.networkId);
    if (!m) this.endpointMap.set(endpoint.networkId, (m = new Map()));
    m.set(endpoint.endpointId, endpoint);
    this.emit({ kind: 'endpoint-put', endpoint });
  }

  protected applyEndpointGone(networkId: string, endpointId: string, force = false): void {
    if (!force && !this.#followed.has(networkId)) return;
    const m = this.endpointMap.get(networkId);
    if (m?.delete(endpointId)) {
      if (m.size === 0) this.endpointMap.delete(networkId);
      this.emit({ kind: 'endpoint-delete', networkId, endpointId });
    }
  }

  protected applyReservation(networkId: string, address: string, holder: string, force = false): void {
    if (!force && !this.#followed.has(networkId)) return;
    let m = this.reservationMap.get(networkId);
    if (!m) this.reservationMap.set(networkId, (m = new Map()));
    m.set(address, holder);
  }

  protected applyReservationGone(networkId: string, address: string, force = false): void {
    if (!force && !this.#followed.has(networkId)) return;
    const m = this.reservationMap.get(networkId);
    if (m?.delete(address) && m.size === 0) this.reservationMap.delete(networkId);
  }

  /** Empties the hosts and networks (before a re-list); no events: the caller emits `resync` once refilled. */
  protected clearGlobal(): void {
    this.hostMap.clear();
    this.networkMap.clear();
  }

  /**
   * Makes the cache hold exactly `endpoints` and `reservations` for a network (a listing, or
   * nothing for one no longer followed): what vanished is reported as endpoint-delete, what is
   * new or changed as endpoint-put.
   */
  protected replaceNetwork(networkId: string, endpoints: RemoteEndpoint[], reservations: Array<[string, string]>): void {
    const listed = new Set(endpoints.map((e) => e.endpointId));
    for (const ep of this.endpoints(networkId)) if (!listed.has(ep.endpointId)) this.applyEndpointGone(networkId, ep.endpointId, true);
    for (const ep of endpoints) {
      const had = this.endpointMap.get(networkId)?.get(ep.endpointId);
      if (!had || JSON.stringify(had) !== JSON.stringify(ep)) this.applyEndpoint(ep, true);
    }
    this.reservationMap.delete(networkId);
    for (const [address, holder] of reservations) this.applyReservation(networkId, address, holder, true);
  }

  /** Lists a network's endpoints and reservations into the cache (replaceNetwork) and follows its changes from then on. */
  protected abstract loadNetwork(networkId: string): Promise<void>;
  /** Stops following a network's changes (follow() then drops its cached endpoints). */
  protected abstract unloadNetwork(networkId: string): void;

  abstract readEndpoints(networkId: string): Promise<RemoteEndpoint[]>;
  abstract createNetwork(network: GlobalNetwork): Promise<void>;
  abstract deleteNetwork(networkId: string): Promise<void>;
  abstract reserveAddress(networkId: string, address: string, holder: string): Promise<ClusterReservation>;
  abstract releaseAddress(networkId: string, address: string, holder: string): Promise<void>;
  abstract releaseHolder(networkId: string, holder: string): Promise<string[]>;
  abstract publishEndpoint(endpoint: Omit<RemoteEndpoint, 'hostId' | 'hostAddress'>): Promise<void>;
  abstract withdrawEndpoint(networkId: string, endpointId: string): Promise<void>;
  abstract reconcile(owned: OwnedState): Promise<ReconcileReport>;
  abstract close(): Promise<void>;
}

/**
 * Where a host starts looking in a subnet it has not allocated from yet: a point derived from
 * its id, so hosts allocating at once walk different parts of the subnet instead of all
 * racing for the first free address (each lost race is one more etcd round trip).
 */
export function hostStart(prefix: Prefix, hostId: string): string {
  const width = prefix.family === 4 ? 32 : 128;
  const size = 1n << BigInt(width - prefix.bits);
  const h = BigInt(`0x${createHash('sha256').update(hostId).digest('hex').slice(0, 12)}`);
  return formatAddress(prefix.family, prefix.base + (h % size));
}
