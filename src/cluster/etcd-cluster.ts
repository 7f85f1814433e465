/**
 * ClusterState on etcd 3.4. Key layout (README "Cluster store" has the sizing arithmetic):
 *
 *   P/hosts/<hostId>                      HostInfo                 bound to the host's lease
 *   P/networks/<networkId>                GlobalNetwork            no lease (outlives hosts)
 *   P/names/<name>                        networkId                uniqueness of names
 *   P/vnis/<vni>                          networkId                uniqueness of VNIs
 *   P/reservations/<networkId>/<address>  {holder, hostId}         bound to the holder host's lease
 *   P/endpoints/<networkId>/<endpointId>  RemoteEndpoint           bound to the host's lease
 *
 * One lease per host (not per endpoint): its keepalive is one stream whatever the number of
 * endpoints, and its expiry withdraws all of a dead host's endpoints and addresses at once.
 * Every conditional write is one transaction (compare Version == 0 / Value == mine). Watches
 * feed the cache: one over hosts and networks, and one per followed network over its
 * endpoints and reservations (a host follows the networks it has endpoints on: follow()).
 * Each resumes from its revision after a disconnect (the client does that), and on a watch
 * error — ErrCompacted when the history it needs is gone — its scope is re-listed at a
 * revision and watched again just after it.
 */
import { ExponentialBackoff } from 'cockatiel';
import { Etcd3, Range, type IKeyValue, type Lease, type Watcher } from 'etcd3';
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

export interface EtcdClusterOptions {
  /** etcd client URLs: http://IP:PORT (what etcd://IP:PORT means) or unix:///path. */
  endpoints: string[];
  hostId: string;
  advertiseAddr: string;
  /** Seconds a host outlives its last keepalive (default 10). */
  leaseTtl?: number;
  /** Deadline of one etcd call; past it the call fails as ClusterUnavailable (default 5000 ms). */
  callTimeoutMs?: number;
  /** etcd exchanges in flight at once (default 16); more wait their turn. */
  maxInFlight?: number;
  /** Key prefix (default /bpfnet/v1/). */
  prefix?: string;
  log?: (level: 'info' | 'warn', message: string) => void;
}

/** The watchers of one scope, cancelled together. */
interface WatchScope {
  cancel(): Promise<void>;
}

interface StoredReservation {
  holder: string;
  hostId: string;
}

/** Counters an operator (and the tests) read from GET /cluster. */
export interface EtcdClusterStats {
  /** Listings of a scope — the global one or a followed network's (joins, follows, watch errors such as ErrCompacted). */
  relists: number;
  /** Watch errors seen, by message. */
  watchErrors: string[];
  /** Leases granted (1 + one per lease lost to an outage longer than the TTL). */
  leases: number;
  /** Revision the cache reflects. */
  revision: number;
}

/** etcd://a:1,b:2 -> [http://a:1, http://b:2] (unix:// URLs pass through). */
export function parseClusterStore(url: string): string[] {
  const m = /^etcd:\/\/(.+)$/.exec(url);
  if (!m) throw new Error(`--cluster-store ${url}: expected etcd://HOST:PORT[,HOST:PORT...]`);
  return m[1]!.split(',').map((hp) => {
    if (!/^[\w.-]+:\d+$|^\[[0-9a-f:]+\]:\d+$/i.test(hp)) throw new Error(`--cluster-store ${url}: "${hp}" is not HOST:PORT`);
    return `http://${hp}`;
  });
}

const reservationValue = (r: StoredReservation) => JSON.stringify({ holder: r.holder, hostId: r.hostId });

export class EtcdCluster extends ClusterCache {
  /** Writes, reads and the lease. */
  readonly #client: Etcd3;
  /** A client of the same store with the same options: each watch scope has its own (see #watch). */
  readonly #newClient: () => Etcd3;
  readonly #p: string;
  readonly #ttl: number;
  readonly #log: NonNullable<EtcdClusterOptions['log']>;
  readonly #where: string;
  readonly #maxInFlight: number;
  #inFlight = 0;
  readonly #queue: Array<() => void> = [];
  #lease?: Lease;
  #leaseId?: string;
  /** The global watch (hosts, networks) and one per followed network. */
  #global?: WatchScope;
  readonly #scopes = new Map<string, WatchScope>();
  #closed = false;
  #rejoining?: Promise<void>;
  /** key -> mod revision last applied (deletes too): events older than the cache are dropped. */
  readonly #applied = new Map<string, number>();
  /** What this host holds, re-put under a new lease when the old one was lost. */
  #owned: OwnedState = { endpoints: [], reservations: [] };
  readonly stats: EtcdClusterStats = { relists: 0, watchErrors: [], leases: 0, revision: 0 };

  private constructor(opts: EtcdClusterOptions) {
    super(opts.hostId, opts.advertiseAddr);
    this.#p = opts.prefix ?? '/bpfnet/v1/';
    this.#ttl = opts.leaseTtl ?? 10;
    this.#log = opts.log ?? (() => undefined);
    this.#where = opts.endpoints.join(',');
    const timeout = opts.callTimeoutMs ?? 5000;
    this.#maxInFlight = opts.maxInFlight ?? 16;
    this.#newClient = () =>
      new Etcd3({
        hosts: opts.endpoints,
        // A deadline for unary calls only: on the watch and keepalive streams it would cut them every
        // few seconds (and each cut counts as a host failure towards the client's circuit breaker).
        defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
        // A connection whose far end vanished (etcd restarted while this host was cut off) is
        // noticed by HTTP/2 pings within 15 s instead of when TCP gives up; etcd accepts pings
        // every 5 s or slower (its --grpc-keepalive-min-time).
        grpcOptions: { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000 },
        // The watch reconnects at most 2 s after etcd is back: the client's default backoff grows
        // to 30 s over an outage of a few seconds, leaving this host's cache stale that long.
        faultHandling: { watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }).next() },
      });
    this.#client = this.#newClient();
  }

  /** Joins: grants this host's lease, registers the host, lists the prefix and starts the watch. */
  static async join(opts: EtcdClusterOptions): Promise<EtcdCluster> {
    const c = new EtcdCluster(opts);
    try {
      await c.#grantLease();
      await c.#relist();
    } catch (err) {
      c.#client.close();
      throw c.#unavailable(err);
    }
    return c;
  }

  /** The lease id this host's keys are bound to now. */
  get leaseId(): string | undefined {
    return this.#leaseId;
  }

  // ---- keys -------------------------------------------------------------------------

  #k = {
    host: (id: string) => `${this.#p}hosts/${id}`,
    network: (id: string) => `${this.#p}networks/${id}`,
    name: (name: string) => `${this.#p}names/${name}`,
    vni: (vni: number) => `${this.#p}vnis/${vni}`,
    reservation: (net: string, addr: string) => `${this.#p}reservations/${net}/${addr}`,
    reservations: (net: string) => `${this.#p}reservations/${net}/`,
    endpoint: (net: string, ep: string) => `${this.#p}endpoints/${net}/${ep}`,
    endpoints: (net: string) => `${this.#p}endpoints/${net}/`,
  };

  // ---- lease ------------------------------------------------------------------------

  async #grantLease(): Promise<void> {
    const lease = this.#client.lease(this.#ttl);
    lease.on('lost', (err: Error) => {
      if (this.#closed || lease !== this.#lease) return;
      this.#log('warn', `cluster: lease ${this.#leaseId} lost (${err.message}); rejoining`);
      this.#leaseId = undefined;
      void this.#rejoin();
    });
    const id = await lease.grant();
    if (typeof id !== 'string') throw id;
    this.#lease = lease;
    this.#leaseId = id;
    this.stats.leases++;
    const host: HostInfo = { hostId: this.hostId, advertiseAddr: this.advertiseAddr, joined: new Date().toISOString() };
    await this.#client.put(this.#k.host(this.hostId)).value(JSON.stringify(host)).lease(id).exec();
  }

  /** A lease lost to an outage longer than its TTL: a new one, and everything this host holds put back under it. */
  #rejoin(): Promise<void> {
    this.#rejoining ??= (async () => {
      for (let delay = 250; !this.#closed; delay = Math.min(delay * 2, 2000)) {
        try {
          await this.#grantLease();
          const report = await this.#reconcileNow(this.#owned);
          this.#log('info', `cluster: rejoined with lease ${this.#leaseId}: republished ${report.republished.length}, lost ${report.lost.join(', ') || 'nothing'}`);
          return;
        } catch (err) {
          this.#leaseId = undefined;
          this.#log('warn', `cluster: rejoin failed (${(err as Error).message}); retrying in ${delay} ms`);
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    })().finally(() => (this.#rejoining = undefined));
    return this.#rejoining;
  }

  #ready(): string {
    if (this.#closed) throw new ClusterUnavailable(`host ${this.hostId} has left the cluster`);
    if (this.#leaseId === undefined) throw new ClusterUnavailable(`cluster store ${this.#where} unreachable: this host's lease expired, rejoining`);
    return this.#leaseId;
  }

  #unavailable(err: unknown): Error {
    if (err instanceof ClusterConflict || err instanceof ClusterNotFound || err instanceof ClusterUnavailable) return err;
    return new ClusterUnavailable(`cluster store ${this.#where} unreachable: ${(err as Error).message ?? err}`);
  }

  /**
   * Runs one etcd exchange; any transport failure becomes ClusterUnavailable (503). At most
   * maxInFlight exchanges run at once: a burst of connects queues here instead of piling
   * onto etcd, where every call past its deadline would fail (and trip the client's breaker).
   */
  async #call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#inFlight >= this.#maxInFlight) await new Promise<void>((r) => this.#queue.push(r));
    this.#inFlight++;
    try {
      return await fn();
    } catch (err) {
      // A write under a lease etcd already expired (an outage or a stall longer than the TTL): rejoin.
      if (/lease not found/i.test((err as Error).message ?? '') && this.#leaseId !== undefined && !this.#closed) {
        this.#log('warn', `cluster: lease ${this.#leaseId} expired in etcd; rejoining`);
        this.#leaseId = undefined;
        void this.#rejoin();
      }
      throw this.#unavailable(err);
    } finally {
      this.#inFlight--;
      this.#queue.shift()?.();
    }
  }

  // ---- watch ------------------------------------------------------------------------
  //
  // Two kinds of scope, each listed at one revision and watched from just after it: the
  // global one (hosts, networks; every host) and one per followed network (its endpoints and
  // reservations; only hosts with sandboxes on it). A scope whose watch fails — ErrCompacted
  // when the history it needs is gone — is listed again and watched anew, alone.

  /** The global scope: P/hosts/ up to the end of P/networks/ (P/names/ lies between: ignored). */
  #globalRanges(): Range[] {
    return [new Range(`${this.#p}hosts/`, prefixEnd(`${this.#p}networks/`))];
  }

  #networkRanges(networkId: string): Range[] {
    return [Range.prefix(this.#k.endpoints(networkId)), Range.prefix(this.#k.reservations(networkId))];
  }

  /** Lists ranges at one revision: the first read picks it, the others read at it. */
  async #listAt(ranges: Range[]): Promise<{ revision: number; kvs: IKeyValue[] }> {
    const first = await this.#client.getAll().inRange(ranges[0]!).exec();
    const revision = Number(first.header.revision);
    const rest = await Promise.all(ranges.slice(1).map((r) => this.#client.getAll().inRange(r).revision(revision).exec()));
    return { revision, kvs: [...first.kvs, ...rest.flatMap((x) => x.kvs)] };
  }

  /** Lists hosts and networks into a fresh view, then watches them from just after that revision. */
  async #relist(): Promise<void> {
    const ranges = this.#globalRanges();
    const { revision, kvs } = await this.#listAt(ranges);
    await this.#global?.cancel();
    this.clearGlobal();
    this.#forgetApplied(ranges);
    for (const kv of kvs) this.#applyKv(kv, 'put');
    this.stats.relists++;
    this.#seen(revision);
    this.emit({ kind: 'resync' });
    this.#global = await this.#watch('the cluster', ranges, revision, () => this.#relistUntilDone('the cluster', () => this.#relist()));
  }

  protected override async loadNetwork(networkId: string): Promise<void> {
    const ranges = this.#networkRanges(networkId);
    const { revision, kvs } = await this.#call(() => this.#listAt(ranges));
    if (!this.following(networkId)) return; // unfollowed while listing
    await this.#scopes.get(networkId)?.cancel();
    this.#forgetApplied(ranges);
    const endpoints: RemoteEndpoint[] = [];
    const reservations: Array<[string, string]> = [];
    for (const kv of kvs) {
      const key = kv.key.toString();
      this.#applied.set(key, Number(kv.mod_revision));
      try {
        const [kind, id] = this.#parts(key);
        if (kind === 'endpoints') endpoints.push(JSON.parse(kv.value.toString()) as RemoteEndpoint);
        else reservations.push([splitTwo(id)[1], (JSON.parse(kv.value.toString()) as StoredReservation).holder]);
      } catch (err) {
        this.#log('warn', `cluster: ignoring unreadable key ${key}: ${(err as Error).message}`);
      }
    }
    this.replaceNetwork(networkId, endpoints, reservations);
    this.stats.relists++;
    this.#seen(revision);
    const scope = await this.#watch(`network ${networkId.slice(0, 12)}`, ranges, revision, () =>
      this.#relistUntilDone(`network ${networkId.slice(0, 12)}`, () => (this.following(networkId) ? this.loadNetwork(networkId) : Promise.resolve())),
    );
    if (this.following(networkId) && !this.#closed) this.#scopes.set(networkId, scope);
    else await scope.cancel();
  }

  async readEndpoints(networkId: string): Promise<RemoteEndpoint[]> {
    const res = await this.#call(() => this.#client.getAll().prefix(this.#k.endpoints(networkId)).exec());
    return res.kvs.flatMap((kv) => {
      try {
        return [JSON.parse(kv.value.toString()) as RemoteEndpoint];
      } catch {
        return [];
      }
    });
  }

  protected override unloadNetwork(networkId: string): void {
    void this.#scopes.get(networkId)?.cancel();
    this.#scopes.delete(networkId);
    this.#forgetApplied(this.#networkRanges(networkId));
  }

  #forgetApplied(ranges: Range[]): void {
    for (const key of [...this.#applied.keys()]) if (ranges.some((r) => r.includes(key))) this.#applied.delete(key);
  }

  #seen(revision: number): void {
    if (revision > this.stats.revision) this.stats.revision = revision;
  }

  /**
   * Watches ranges from just after revision; on a watch error, relist() (once per scope).
   *
   * Each scope has its own client (its own connection), and each of its watchers its own stream
   * (a namespace with no prefix), because of how etcd3 1.1.2 handles streams: ending a watch
   * stream (its last watcher cancelled: a network no longer followed, a scope re-listed) counts
   * as a failure of the connection and resets every call on it — the lease's keepalive and the
   * other scopes' watches with it, and three in a row open the client's circuit breaker, failing
   * every call for 5 s; and several watchers of one stream that etcd cancels at once for
   * compaction are mismatched, the client then throwing from its data handler.
   */
  async #watch(what: string, ranges: Range[], revision: number, relist: () => Promise<void>): Promise<WatchScope> {
    const client = this.#newClient();
    const watchers: Watcher[] = [];
    let done = false;
    const stop = async () => {
      // Cancelled first (a closed client would go on re-attaching them), bounded: a watcher
      // still waiting for its id waits for an answer that may never come.
      await Promise.race([Promise.all(watchers.map((w) => w.cancel().catch(() => undefined))), new Promise((r) => setTimeout(r, 2000).unref())]);
      client.close();
    };
    const scope: WatchScope = {
      cancel: async () => {
        if (done) return;
        done = true;
        await stop();
      },
    };
    let lastRevision = revision;
    // Logged as a pair: a disconnect, then the resume it led to (not the watch's first connect).
    let resuming = false;
    try {
      for (const range of ranges) {
        const watcher = await client.namespace('').watch().inRange(range).startRevision(String(revision + 1)).create();
        watchers.push(watcher);
        watcher.on('put', (kv) => this.#onEvent(kv, 'put', (r) => (lastRevision = Math.max(lastRevision, r))));
        watcher.on('delete', (kv) => this.#onEvent(kv, 'delete', (r) => (lastRevision = Math.max(lastRevision, r))));
        watcher.on('disconnected', (err: Error) => {
          if (done || this.#closed || resuming) return;
          resuming = true;
          this.#log('warn', `cluster: watch of ${what} disconnected (${err.message}); resuming from revision ${watcher.lastRevision() ?? '?'}`);
        });
        watcher.on('connected', () => {
          if (!resuming || done || this.#closed) return;
          resuming = false;
          this.#log('info', `cluster: watch of ${what} resumed from revision ${watcher.lastRevision() ?? '?'}`);
        });
        watcher.on('error', (err: Error) => {
          if (done || this.#closed) return;
          done = true;
          void this.#describeWatchError(err, lastRevision + 1).then(async (reason) => {
            this.stats.watchErrors.push(reason);
            this.#log('warn', `cluster: watch of ${what} failed (${reason}); re-listing`);
            await stop();
            return relist();
          });
        });
      }
    } catch (err) {
      await scope.cancel();
      throw err;
    }
    return scope;
  }

  /**
   * etcd 3.4 cancels a watch whose start revision was compacted with an empty reason (the
   * compact revision is in a field the client does not pass on): read at the revision the
   * watch needed to tell ErrCompacted from other failures.
   */
  async #describeWatchError(err: Error, needed: number): Promise<string> {
    if (/compact/i.test(err.message)) return err.message;
    try {
      await this.#client.get(this.#p).revision(needed).exec();
      return err.message;
    } catch (probe) {
      return /compact/i.test((probe as Error).message) ? `${err.message} (mvcc: revision ${needed} has been compacted)` : err.message;
    }
  }

  async #relistUntilDone(what: string, relist: () => Promise<void>): Promise<void> {
    for (let delay = 250; !this.#closed; delay = Math.min(delay * 2, 2000)) {
      try {
        await relist();
        return;
      } catch (err) {
        this.#log('warn', `cluster: re-list of ${what} failed (${(err as Error).message}); retrying in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  #onEvent(kv: IKeyValue, type: 'put' | 'delete', seen: (revision: number) => void): void {
    const rev = Number(kv.mod_revision);
    seen(rev);
    this.#seen(rev);
    this.#applyKv(kv, type);
  }

  /** A key's kind (hosts, endpoints, ...) and what follows it (for endpoints and reservations: network/id). */
  #parts(key: string): [string, string] {
    return splitTwo(key.slice(this.#p.length));
  }

  /** Applies one key's change to the cache unless the cache already reflects a later one. */
  #applyKv(kv: IKeyValue, type: 'put' | 'delete'): void {
    const key = kv.key.toString();
    const rev = Number(kv.mod_revision);
    const [kind, id] = this.#parts(key);
    if (kind === 'names' || kind === 'vnis') return; // uniqueness keys, nothing to cache
    // A network this host does not follow: nothing to cache (and no revision to remember).
    if ((kind === 'endpoints' || kind === 'reservations') && !this.following(splitTwo(id)[0])) return;
    if ((this.#applied.get(key) ?? -1) >= rev) return;
    this.#applied.set(key, rev);
    try {
      const value = type === 'put' ? (JSON.parse(kv.value.toString()) as unknown) : undefined;
      switch (kind) {
        case 'hosts':
          if (value) this.applyHost(value as HostInfo);
          else this.applyHostGone(id);
          break;
        case 'networks':
          if (value) this.applyNetwork(value as GlobalNetwork);
          else this.applyNetworkGone(id);
          break;
        case 'endpoints': {
          const [net, ep] = splitTwo(id);
          if (value) this.applyEndpoint(value as RemoteEndpoint);
          else this.applyEndpointGone(net, ep);
          break;
        }
        case 'reservations': {
          const [net, addr] = splitTwo(id);
          if (value) this.applyReservation(net, addr, (value as StoredReservation).holder);
          else this.applyReservationGone(net, addr);
          break;
        }
        default:
          break; // a key of a later version of the layout
      }
    } catch (err) {
      this.#log('warn', `cluster: ignoring unreadable key ${key}: ${(err as Error).message}`);
    }
  }

  /** Applies the outcome of our own write at once (the watch brings the same change later; #applied drops it). */
  #applyOwn(revision: string | number, key: string, value: unknown): void {
    this.#applyKv({ key: Buffer.from(key), value: Buffer.from(value === undefined ? '' : JSON.stringify(value)), mod_revision: String(revision) } as IKeyValue, value === undefined ? 'delete' : 'put');
  }

  // ---- writes -----------------------------------------------------------------------

  async createNetwork(network: GlobalNetwork): Promise<void> {
    this.#ready();
    const k = this.#k;
    const res = await this.#call(() =>
      this.#client
        .if(k.network(network.id), 'Version', '==', 0)
        .and(k.name(network.name), 'Version', '==', 0)
        .and(k.vni(network.vni), 'Version', '==', 0)
        .then(
          this.#client.put(k.network(network.id)).value(JSON.stringify(network)),
          this.#client.put(k.name(network.name)).value(network.id),
          this.#client.put(k.vni(network.vni)).value(network.id),
        )
        .else(this.#client.get(k.network(network.id)), this.#client.get(k.name(network.name)), this.#client.get(k.vni(network.vni)))
        .commit(),
    );
    if (res.succeeded) {
      this.#applyOwn(res.header.revision, k.network(network.id), network);
      return;
    }
    const [byId, byName, byVni] = res.responses.map((r) => r.response_range?.kvs?.[0]?.value?.toString());
    if (byId !== undefined) throw new ClusterConflict(`network with id ${network.id} already exists in the cluster`);
    if (byName !== undefined) throw new ClusterConflict(`network with name ${network.name} already exists in the cluster`);
    const holder = byVni === undefined ? undefined : await this.#call(() => this.#client.get(k.network(byVni)).json());
    throw new ClusterConflict(`VXLAN id ${network.vni} is already used by network ${(holder as GlobalNetwork | null)?.name ?? byVni}`);
  }

  async deleteNetwork(networkId: string): Promise<void> {
    this.#ready();
    const k = this.#k;
    const got = await this.#call(() => this.#client.get(k.network(networkId)).exec());
    const kv = got.kvs[0];
    if (!kv) return;
    const net = JSON.parse(kv.value.toString()) as GlobalNetwork;
    const b = (s: string) => Buffer.from(s);
    // One transaction: the network is what we read, and no endpoint key exists under it (a range compare).
    const res = await this.#call(() =>
      this.#client.kv.txn({
        compare: [
          { key: b(k.network(networkId)), target: 'Mod', result: 'Equal', mod_revision: kv.mod_revision },
          { key: b(k.endpoints(networkId)), range_end: b(prefixEnd(k.endpoints(networkId))), target: 'Version', result: 'Equal', version: 0 },
        ],
        success: [
          { request_delete_range: { key: b(k.network(networkId)) } },
          { request_delete_range: { key: b(k.name(net.name)) } },
          { request_delete_range: { key: b(k.vni(net.vni)) } },
          { request_delete_range: { key: b(k.reservations(networkId)), range_end: b(prefixEnd(k.reservations(networkId))) } },
        ],
        failure: [{ request_range: { key: b(k.endpoints(networkId)), range_end: b(prefixEnd(k.endpoints(networkId))), keys_only: true } }],
      }),
    );
    if (res.succeeded) {
      this.#applyOwn(res.header.revision, k.network(networkId), undefined);
      return;
    }
    const count = res.responses[0]?.response_range?.kvs?.length ?? 0;
    if (count > 0) throw new ClusterConflict(`network ${net.name} has active endpoints (${count})`);
    return this.deleteNetwork(networkId); // changed meanwhile: decide again on what is there now
  }

  async reserveAddress(networkId: string, address: string, holder: string): Promise<ClusterReservation> {
    const lease = this.#ready();
    const a = canonicalAddress(address);
    const key = this.#k.reservation(networkId, a);
    const value = reservationValue({ holder, hostId: this.hostId });
    const res = await this.#call(() =>
      this.#client
        .if(key, 'Version', '==', 0)
        .and(this.#k.network(networkId), 'Version', '>', 0)
        .then(this.#client.put(key).value(value).lease(lease))
        .else(this.#client.get(key), this.#client.get(this.#k.network(networkId)))
        .commit(),
    );
    if (res.succeeded) {
      this.#applyOwn(res.header.revision, key, { holder, hostId: this.hostId });
      this.#own({ networkId, address: a, holder });
      return { reserved: true };
    }
    const [current, net] = res.responses.map((r) => r.response_range?.kvs?.[0]);
    if (!net) throw new ClusterNotFound(`network ${networkId} not found in the cluster`);
    const stored = current ? (JSON.parse(current.value.toString()) as StoredReservation) : undefined;
    if (!stored) return this.reserveAddress(networkId, a, holder); // released meanwhile: try again
    if (stored.holder === holder) {
      this.#own({ networkId, address: a, holder });
      return { reserved: true };
    }
    return { reserved: false, holder: stored.holder };
  }

  async releaseAddress(networkId: string, address: string, holder: string): Promise<void> {
    this.#ready();
    const a = canonicalAddress(address);
    const key = this.#k.reservation(networkId, a);
    const res = await this.#call(() =>
      this.#client
        .if(key, 'Value', '==', reservationValue({ holder, hostId: this.hostId }))
        .then(this.#client.delete().key(key))
        .commit(),
    );
    if (res.succeeded) this.#applyOwn(res.header.revision, key, undefined);
    this.#owned.reservations = this.#owned.reservations.filter((r) => !(r.networkId === networkId && r.address === a && r.holder === holder));
  }

  async releaseHolder(networkId: string, holder: string): Promise<string[]> {
    this.#ready();
    const value = reservationValue({ holder, hostId: this.hostId });
    const all = await this.#call(() => this.#client.getAll().prefix(this.#k.reservations(networkId)).exec());
    const released: string[] = [];
    for (const kv of all.kvs) {
      if (kv.value.toString() !== value) continue;
      const key = kv.key.toString();
      const r = await this.#call(() => this.#client.if(key, 'Value', '==', value).then(this.#client.delete().key(key)).commit());
      if (r.succeeded) {
        this.#applyOwn(r.header.revision, key, undefined);
        released.push(key.slice(this.#k.reservations(networkId).length));
      }
    }
    this.#owned.reservations = this.#owned.reservations.filter((r) => !(r.networkId === networkId && r.holder === holder));
    return released;
  }

  async publishEndpoint(ep: Omit<RemoteEndpoint, 'hostId' | 'hostAddress'>): Promise<void> {
    const lease = this.#ready();
    const r = await this.#publish(ep, lease);
    if (r !== 'ok') throw r;
  }

  /** One transaction: every address of the endpoint free or ours, the network there; puts them all under lease. */
  async #publish(ep: Omit<RemoteEndpoint, 'hostId' | 'hostAddress'>, lease: string, fresh = true): Promise<'ok' | Error> {
    const k = this.#k;
    const holder = addressHolder(ep.endpointId, this.hostId);
    const mine = reservationValue({ holder, hostId: this.hostId });
    const endpoint: RemoteEndpoint = { ...ep, hostId: this.hostId, hostAddress: this.advertiseAddr };
    if (endpoint.ipv4 !== undefined) endpoint.ipv4 = canonicalAddress(endpoint.ipv4);
    if (endpoint.ipv6 !== undefined) endpoint.ipv6 = canonicalAddress(endpoint.ipv6);
    const addresses = [endpoint.ipv4, endpoint.ipv6].filter((a): a is string => a !== undefined);
    // Free (Version 0) and ours (Value mine) cannot be one compare. The cache says which to expect
    // (an address allocated for this endpoint a moment ago is ours); a wrong guess fails the
    // transaction and the retry reads the truth first.
    const current: Array<{ value: string; mod?: string } | undefined> = fresh
      ? addresses.map((a) => (this.reservationMap.get(ep.networkId)?.get(a) === holder ? { value: mine } : undefined))
      : (await this.#call(() => Promise.all(addresses.map((a) => this.#client.get(k.reservation(ep.networkId, a)).exec())))).map((r) =>
          r.kvs[0] ? { value: r.kvs[0].value.toString(), mod: String(r.kvs[0].mod_revision) } : undefined,
        );
    let txn = this.#client.if(k.network(ep.networkId), 'Version', '>', 0);
    for (const [i, a] of addresses.entries()) {
      const cur = current[i];
      if (cur && cur.value !== mine) {
        return new ClusterConflict(`address ${a} of endpoint ${ep.name} is held by ${(JSON.parse(cur.value) as StoredReservation).holder}`);
      }
      const key = k.reservation(ep.networkId, a);
      txn = !cur ? txn.and(key, 'Version', '==', 0) : cur.mod !== undefined ? txn.and(key, 'Mod', '==', cur.mod) : txn.and(key, 'Value', '==', mine);
    }
    const res = await this.#call(() =>
      txn
        .then(
          ...addresses.map((a) => this.#client.put(k.reservation(ep.networkId, a)).value(mine).lease(lease)),
          this.#client.put(k.endpoint(ep.networkId, ep.endpointId)).value(JSON.stringify(endpoint)).lease(lease),
        )
        .else(this.#client.get(k.network(ep.networkId)))
        .commit(),
    );
    if (!res.succeeded) {
      if (!res.responses[0]?.response_range?.kvs?.length) return new ClusterNotFound(`network ${ep.networkId} not found in the cluster`);
      return this.#publish(ep, lease, false); // a guess was wrong or an address changed hands: read and decide again
    }
    for (const a of addresses) this.#applyOwn(res.header.revision, k.reservation(ep.networkId, a), { holder, hostId: this.hostId });
    this.#applyOwn(res.header.revision, k.endpoint(ep.networkId, ep.endpointId), endpoint);
    this.#owned.endpoints = [...this.#owned.endpoints.filter((e) => !(e.networkId === ep.networkId && e.endpointId === ep.endpointId)), ep];
    this.#owned.reservations = this.#owned.reservations.filter((r) => r.holder !== holder);
    return 'ok';
  }

  async withdrawEndpoint(networkId: string, endpointId: string): Promise<void> {
    this.#ready();
    const k = this.#k;
    const holder = addressHolder(endpointId, this.hostId);
    const mine = reservationValue({ holder, hostId: this.hostId });
    const got = await this.#call(() => this.#client.get(k.endpoint(networkId, endpointId)).exec());
    const kv = got.kvs[0];
    if (kv) {
      const ep = JSON.parse(kv.value.toString()) as RemoteEndpoint;
      if (ep.hostId !== this.hostId) throw new ClusterConflict(`endpoint ${endpointId} belongs to host ${ep.hostId}`);
      const addresses = [ep.ipv4, ep.ipv6].filter((a): a is string => a !== undefined);
      const res = await this.#call(() =>
        this.#client
          .if(k.endpoint(networkId, endpointId), 'Mod', '==', kv.mod_revision)
          .then(this.#client.delete().key(k.endpoint(networkId, endpointId)))
          .commit(),
      );
      if (!res.succeeded) return this.withdrawEndpoint(networkId, endpointId);
      this.#applyOwn(res.header.revision, k.endpoint(networkId, endpointId), undefined);
      for (const a of addresses) {
        const r = await this.#call(() => this.#client.if(k.reservation(networkId, a), 'Value', '==', mine).then(this.#client.delete().key(k.reservation(networkId, a))).commit());
        if (r.succeeded) this.#applyOwn(r.header.revision, k.reservation(networkId, a), undefined);
      }
    }
    this.#owned.endpoints = this.#owned.endpoints.filter((e) => !(e.networkId === networkId && e.endpointId === endpointId));
    this.#owned.reservations = this.#owned.reservations.filter((r) => r.holder !== holder);
  }

  #own(r: { networkId: string; address: string; holder: string }): void {
    if (!this.#owned.reservations.some((o) => o.networkId === r.networkId && o.address === r.address && o.holder === r.holder)) this.#owned.reservations.push(r);
  }

  async reconcile(owned: OwnedState): Promise<ReconcileReport> {
    this.#ready();
    return this.#reconcileNow(owned);
  }

  async #reconcileNow(owned: OwnedState): Promise<ReconcileReport> {
    const lease = this.#ready();
    const k = this.#k;
    const report: ReconcileReport = { republished: [], withdrawn: [], lost: [] };
    this.#owned = { endpoints: [...owned.endpoints], reservations: [...owned.reservations] };
    const wantedEps = new Set(owned.endpoints.map((e) => k.endpoint(e.networkId, e.endpointId)));
    const wantedHolders = new Set([...owned.endpoints.map((e) => addressHolder(e.endpointId, this.hostId)), ...owned.reservations.map((r) => r.holder)]);
    // What the store holds for this host (under this lease or an earlier one's that has not expired
    // yet), in the networks it owns or follows (those it has journal entries on): a key of this host
    // elsewhere is under an earlier lease, which expires by itself as nothing keeps it alive.
    const networks = new Set([...owned.endpoints.map((e) => e.networkId), ...owned.reservations.map((r) => r.networkId), ...this.followedNetworks()]);
    const listAll = async (prefixOf: (net: string) => string) => ({
      kvs: (await Promise.all([...networks].map((n) => this.#client.getAll().prefix(prefixOf(n)).exec()))).flatMap((r) => r.kvs),
    });
    const [eps, res] = await this.#call(() => Promise.all([listAll(k.endpoints), listAll(k.reservations)]));
    const stale: string[] = [];
    for (const kv of eps.kvs) {
      const ep = JSON.parse(kv.value.toString()) as RemoteEndpoint;
      if (ep.hostId === this.hostId && !wantedEps.has(kv.key.toString())) stale.push(kv.key.toString());
    }
    for (const kv of res.kvs) {
      const r = JSON.parse(kv.value.toString()) as StoredReservation;
      if (r.hostId === this.hostId && !wantedHolders.has(r.holder)) stale.push(kv.key.toString());
    }
    for (const key of stale) {
      const d = await this.#call(() => this.#client.delete().key(key).exec());
      this.#applyOwn(d.header.revision, key, undefined);
      report.withdrawn.push(key.slice(this.#p.length));
    }
    for (const r of owned.reservations) {
      const a = canonicalAddress(r.address);
      const key = k.reservation(r.networkId, a);
      const value = reservationValue({ holder: r.holder, hostId: this.hostId });
      // Free or already ours: (re)bind it to the current lease.
      const cur = await this.#call(() => this.#client.get(key).exec());
      const kv = cur.kvs[0];
      if (kv && kv.value.toString() !== value) {
        report.lost.push(`${r.networkId}/${a}`);
        continue;
      }
      const t = await this.#call(() =>
        (kv ? this.#client.if(key, 'Mod', '==', kv.mod_revision) : this.#client.if(key, 'Version', '==', 0)).then(this.#client.put(key).value(value).lease(lease)).commit(),
      );
      if (t.succeeded) this.#applyOwn(t.header.revision, key, { holder: r.holder, hostId: this.hostId });
      else report.lost.push(`${r.networkId}/${a}`);
    }
    for (const e of owned.endpoints) {
      const r = await this.#publish(e, lease);
      if (r === 'ok') report.republished.push(`${e.networkId}/${e.endpointId}`);
      else if (r instanceof ClusterUnavailable) throw r;
      else report.lost.push(`${e.networkId}/${e.endpointId}: ${r.message}`);
    }
    this.#owned = { endpoints: owned.endpoints.filter((e) => report.republished.includes(`${e.networkId}/${e.endpointId}`)), reservations: this.#owned.reservations };
    return report;
  }

  async close(): Promise<void> {
    await this.#shutdown(true);
  }

  /**
   * Stops watching and keeping the lease alive without revoking it: a daemon that stops
   * leaves its sandboxes forwarding, so its endpoints stay published until the lease's TTL
   * runs out; a restart within the TTL re-binds them to its new lease without a gap.
   */
  async detach(): Promise<void> {
    await this.#shutdown(false);
  }

  async #shutdown(revoke: boolean): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.#global, ...this.#scopes.values()].map((w) => w?.cancel()));
    if (revoke) await this.#lease?.revoke().catch(() => undefined);
    else this.#lease?.release();
    this.#client.close();
  }
}

function splitTwo(id: string): [string, string] {
  const i = id.indexOf('/');
  return [id.slice(0, i), id.slice(i + 1)];
}

/** The first key after every key starting with prefix (etcd's range_end for a prefix). */
function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix);
  b[b.length - 1]! += 1;
  return b.toString();
}
