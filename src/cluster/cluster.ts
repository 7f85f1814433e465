/**
 * The cluster state a daemon shares with the other hosts (global scope): hosts, global
 * networks (overlay: subnet, VNI), per-endpoint address reservations, and endpoints with
 * their host, names and aliases. Two implementations run one contract suite
 * (test/contract/cluster-suite.ts): MemoryCluster (one process, for single-host tests of
 * the overlay driver) and EtcdCluster (etcd 3.4, see etcd-cluster.ts and the README's
 * "Cluster store" section for the key layout).
 *
 * In the daemon: `Daemon.cluster` (a ClusterService, present with --cluster-store) gives the
 * joined ClusterState as `.cluster` (a 503 ServiceError while not joined) and `onChange` across
 * re-joins; in tests: `new MemoryClusterBackend().join(hostId, vtep)`.
 *
 * Reads are synchronous views of a cache the implementation keeps current from a watch;
 * writes are async and decide in the store (compare-and-swap), so the cache is a hint and
 * the write's answer is the truth. Every write rejects with ClusterUnavailable (HTTP 503)
 * when the store cannot be reached, and is safe to retry after.
 */

/** A host that has joined the cluster; present while its lease lives. */
export interface HostInfo {
  /** Stable across daemon restarts (kept in the host's local store). */
  hostId: string;
  /** The underlay address other hosts send VXLAN to (--advertise-addr). */
  advertiseAddr: string;
  /** RFC 3339 time the host (re)joined. */
  joined: string;
}

/** A global-scope network (today: overlay). Identity is independent of any one host. */
export interface GlobalNetwork {
  id: string;
  name: string;
  driver: string;
  /** VXLAN network identifier, unique in the cluster. */
  vni: number;
  subnet?: string;
  gateway?: string;
  subnet6?: string;
  gateway6?: string;
  internal: boolean;
  attachable: boolean;
  options: Record<string, string>;
  labels: Record<string, string>;
  created: string;
}

/** An endpoint as every host sees it (the overlay datapath's remote map and DNS feed on these). */
export interface RemoteEndpoint {
  networkId: string;
  endpointId: string;
  /** The sandbox's name (resolvable on the network). */
  name: string;
  aliases: string[];
  ipv4?: string;
  ipv6?: string;
  mac: string;
  /** The host the endpoint lives on. */
  hostId: string;
  /** That host's advertise address: the VTEP to encapsulate to. */
  hostAddress: string;
}

/** Outcome of a conditional reservation: same shape as the local IpamStore's. */
export type ClusterReservation = { reserved: true } | { reserved: false; holder: string };

/** What changed. `resync` follows a re-list (after compaction or a long outage): re-read everything. */
export type ClusterEvent =
  | { kind: 'host-up'; host: HostInfo }
  | { kind: 'host-down'; hostId: string }
  | { kind: 'network-put'; network: GlobalNetwork }
  | { kind: 'network-delete'; networkId: string }
  | { kind: 'endpoint-put'; endpoint: RemoteEndpoint }
  | { kind: 'endpoint-delete'; networkId: string; endpointId: string }
  | { kind: 'resync' };

export type ClusterListener = (event: ClusterEvent) => void;

export interface ClusterState {
  /** This host's id. */
  readonly hostId: string;
  /** This host's advertise address. */
  readonly advertiseAddr: string;

  /** Live hosts (this one included). */
  hosts(): HostInfo[];
  networks(): GlobalNetwork[];
  network(idOrName: string): GlobalNetwork | undefined;
  /**
   * Sets the networks whose endpoints and address reservations this host follows (those it
   * has endpoints on or is connecting to): each newly followed network is listed — its
   * endpoints reported as endpoint-put — before the promise resolves, and followed from then
   * on; a network left out is dropped (its endpoints reported as endpoint-delete). Hosts and
   * networks are followed always. So one endpoint change reaches the hosts that share its
   * network, not every host (README "Sizing").
   */
  follow(networkIds: Iterable<string>): Promise<void>;
  /** Whether this host follows the network's endpoints and reservations. */
  following(networkId: string): boolean;
  /** Every endpoint of a followed network, on any host (this one included); none for a network not followed. */
  endpoints(networkId: string): RemoteEndpoint[];
  /** Reads a network's endpoints from the store itself, followed or not (an operator's view). */
  readEndpoints(networkId: string): Promise<RemoteEndpoint[]>;
  /** Endpoints of a followed network on other hosts: what the overlay datapath must encapsulate to. */
  remoteEndpoints(networkId: string): RemoteEndpoint[];
  /** Called for every change seen by the watch (local writes included); returns an unsubscribe. */
  onChange(listener: ClusterListener): () => void;

  /** Creates a global network; ClusterConflict if the id, the name or the VNI is taken. */
  createNetwork(network: GlobalNetwork): Promise<void>;
  /** Removes a global network; ClusterConflict while endpoints are on it. Removing a missing one is a no-op. */
  deleteNetwork(networkId: string): Promise<void>;
  /** The lowest VNI (from 4096) no network holds: a hint, createNetwork decides. */
  freeVni(): number;

  /**
   * Makes holder the holder of address (IPv4 or IPv6 text) in the network unless someone else
   * holds it (holding it already is a win). One compare-and-swap: of any number of racing
   * writers on any hosts, exactly one wins. Bound to this host's lease.
   */
  reserveAddress(networkId: string, address: string, holder: string): Promise<ClusterReservation>;
  /** Picks a free address of the network's subnet (or family 6's) and reserves it for holder, retrying on lost races. */
  allocateAddress(networkId: string, holder: string, family?: 4 | 6): Promise<string>;
  /** Frees address if holder holds it (a no-op otherwise). */
  releaseAddress(networkId: string, address: string, holder: string): Promise<void>;
  /** Frees every address of the network holder holds (a failed allocation whose answer was lost); returns them. */
  releaseHolder(networkId: string, holder: string): Promise<string[]>;
  /** Who holds address, per the cache (of a followed network). */
  addressHolder(networkId: string, address: string): string | undefined;

  /** Publishes (or replaces) an endpoint of this host. Bound to this host's lease: withdrawn when the host dies. */
  publishEndpoint(endpoint: Omit<RemoteEndpoint, 'hostId' | 'hostAddress'>): Promise<void>;
  /** Withdraws an endpoint of this host and releases its addresses. Withdrawing a missing one is a no-op. */
  withdrawEndpoint(networkId: string, endpointId: string): Promise<void>;

  /**
   * Makes the store hold exactly `owned` for this host, bound to the current lease: what the
   * host's local store says it has (at start, after a crash or a lease lost to an outage).
   * Keys of this host not in `owned` are removed; owned ones someone else took meanwhile are
   * reported as lost.
   */
  reconcile(owned: OwnedState): Promise<ReconcileReport>;

  /** Leaves the cluster: stops the watch and revokes the lease (endpoints are withdrawn at once). */
  close(): Promise<void>;
}

/** What one host holds in the cluster. */
export interface OwnedState {
  endpoints: Array<Omit<RemoteEndpoint, 'hostId' | 'hostAddress'>>;
  /** Reservations not implied by an endpoint's addresses (held before the endpoint is published). */
  reservations: Array<{ networkId: string; address: string; holder: string }>;
}

export interface ReconcileReport {
  /** Endpoints (network/endpoint) re-put under this host's current lease. */
  republished: string[];
  /** Keys of this host that `owned` did not name, removed (endpoints/NET/ID, reservations/NET/ADDRESS). */
  withdrawn: string[];
  /** Owned endpoints or reservations another host holds now (address taken while this host was away). */
  lost: string[];
}

/** The store could not be reached (etcd down or partitioned): HTTP 503, retry later. */
export class ClusterUnavailable extends Error {
  override readonly name = 'ClusterUnavailable';
  readonly kind = 'unavailable';
}

/** A conditional write lost (a name, VNI or address taken by someone else). */
export class ClusterConflict extends Error {
  override readonly name = 'ClusterConflict';
  readonly kind = 'conflict';
}

/** A network that is not in the cluster. */
export class ClusterNotFound extends Error {
  override readonly name = 'ClusterNotFound';
  readonly kind = 'not-found';
}

/** Holder string of an endpoint's address: which endpoint on which host. */
export const addressHolder = (endpointId: string, hostId: string): string => `${endpointId}@${hostId}`;

/** The VNIs bpfnet hands out when none is given (Docker's overlay starts at 4096 too). */
export const VNI_FIRST = 4096;
export const VNI_LAST = 0xffffff;
