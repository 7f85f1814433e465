/**
 * Network events as the Engine API's GET /events reports them (moby's events.Message):
 * create, connect, disconnect, destroy. They are derived by comparing the store with what was
 * seen last, after every change the services announce (and on a short timer for anything
 * else that writes the store, such as reconcile), so no write path has to remember to emit.
 */
import { EventEmitter } from 'node:events';
import type { StoreWrite } from '../store/observed-store.js';

export interface EventMessage {
  Type: 'network';
  Action: 'create' | 'connect' | 'disconnect' | 'destroy';
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
}

type NetworkRow = { id: string; name: string; driver: string };
type EndpointRow = { id: string; networkId: string; sandboxId: string; state: string };

/** The store as the events need it. */
export interface EventSource {
  readonly version?: number;
  readonly networks: { all(): NetworkRow[]; get(id: string): NetworkRow | undefined };
  readonly endpoints: { all(): EndpointRow[]; get(id: string): EndpointRow | undefined };
  /**
   * Each write as it happens (ObservedStore's): with it, a check reads back only the records
   * written since the last one instead of every network and endpoint, so an attach costs the
   * same with 4,000 endpoints as with 4. A write rolled back later reads back as before.
   */
  readonly writeListeners?: Set<(write: StoreWrite) => void>;
}

interface Seen {
  networks: Map<string, { name: string; type: string }>;
  /** endpoint id -> network and sandbox, for active endpoints. */
  endpoints: Map<string, { networkId: string; sandboxId: string }>;
}

/** How many past events `since` can replay. */
const HISTORY = 1024;

export class NetworkEvents {
  readonly #source: EventSource;
  readonly #emitter = new EventEmitter();
  readonly #history: EventMessage[] = [];
  #seen: Seen;
  #version = -1;
  #timer?: NodeJS.Timeout;

  /** Records written since the last check, when the source reports its writes. */
  readonly #written?: { networks: Set<string>; endpoints: Set<string> };

  constructor(source: EventSource) {
    this.#source = source;
    this.#seen = this.#read();
    this.#version = source.version ?? -1;
    this.#emitter.setMaxListeners(0);
    if (source.writeListeners) {
      const written = { networks: new Set<string>(), endpoints: new Set<string>() };
      this.#written = written;
      source.writeListeners.add((w) => {
        if (w.table !== 'networks' && w.table !== 'endpoints') return;
        const id = w.record?.id ?? w.id;
        if (id !== undefined) written[w.table].add(id);
      });
    }
  }

  /** Polls the store's version every `ms` (cheap: a number compare) for writes nobody announced. */
  watch(ms = 250): void {
    this.#timer ??= setInterval(() => {
      if (this.#source.version === undefined || this.#source.version !== this.#version) this.check();
    }, ms);
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #read(): Seen {
    const networks = new Map(this.#source.networks.all().map((n) => [n.id, { name: n.name, type: n.driver }]));
    const endpoints = new Map(
      this.#source.endpoints
        .all()
        .filter((e) => e.state === 'active')
        .map((e) => [e.id, { networkId: e.networkId, sandboxId: e.sandboxId }]),
    );
    return { networks, endpoints };
  }

  /** Compares the store with the last look and emits what changed, in a causal order. */
  check(): void {
    this.#version = this.#source.version ?? -1;
    const last = this.#seen;
    const now: { seen: Seen; changed?: { networks: string[]; endpoints: string[] }; before?: Seen } = this.#written ? this.#readWritten(last, this.#written) : { seen: this.#read() };
    this.#seen = now.seen;
    // What the changed records were at the last look (the last look itself was updated in place).
    const before = now.before ?? last;
    // Without the write feed, every id either look holds (each condition below picks it once).
    const changed = now.changed ?? { networks: [...now.seen.networks.keys(), ...before.networks.keys()], endpoints: [...now.seen.endpoints.keys(), ...before.endpoints.keys()] };
    const networkOf = (id: string) => now.seen.networks.get(id) ?? before.networks.get(id);
    const endpointEvent = (action: 'connect' | 'disconnect', e: { networkId: string; sandboxId: string }) => {
      const n = networkOf(e.networkId);
      this.#emit(action, e.networkId, { container: e.sandboxId, name: n?.name ?? e.networkId, type: n?.type ?? 'bridge' });
    };
    const created = changed.networks.filter((id) => now.seen.networks.has(id) && !before.networks.has(id));
    const connected = changed.endpoints.filter((id) => now.seen.endpoints.has(id) && !before.endpoints.has(id));
    const disconnected = changed.endpoints.filter((id) => before.endpoints.has(id) && !now.seen.endpoints.has(id));
    const destroyed = changed.networks.filter((id) => before.networks.has(id) && !now.seen.networks.has(id));
    for (const id of created) this.#emit('create', id, { ...networkOf(id)! });
    for (const id of connected) endpointEvent('connect', now.seen.endpoints.get(id)!);
    for (const id of disconnected) endpointEvent('disconnect', before.endpoints.get(id)!);
    for (const id of destroyed) this.#emit('destroy', id, { ...before.networks.get(id)! });
  }

  /**
   * The last look with the records written since read back (only those), updated in place, and
   * their ids and values before: what changed is found among them, so a check costs the same
   * with 4,000 endpoints as with 4 (copying the look was most of its cost at 4,000).
   */
  #readWritten(seen: Seen, written: { networks: Set<string>; endpoints: Set<string> }): { seen: Seen; changed: { networks: string[]; endpoints: string[] }; before: Seen } {
    const changed = { networks: [...written.networks], endpoints: [...written.endpoints] };
    written.networks.clear();
    written.endpoints.clear();
    const before: Seen = { networks: new Map(), endpoints: new Map() };
    for (const id of changed.networks) {
      const was = seen.networks.get(id);
      if (was) before.networks.set(id, was);
      const n = this.#source.networks.get(id);
      if (n) seen.networks.set(id, { name: n.name, type: n.driver });
      else seen.networks.delete(id);
    }
    for (const id of changed.endpoints) {
      const was = seen.endpoints.get(id);
      if (was) before.endpoints.set(id, was);
      const e = this.#source.endpoints.get(id);
      if (e?.state === 'active') seen.endpoints.set(id, { networkId: e.networkId, sandboxId: e.sandboxId });
      else seen.endpoints.delete(id);
    }
    return { seen, changed, before };
  }

  #emit(action: EventMessage['Action'], id: string, attributes: Record<string, string>): void {
    const ns = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
    const msg: EventMessage = { Type: 'network', Action: action, Actor: { ID: id, Attributes: attributes }, scope: 'local', time: Number(ns / 1_000_000_000n), timeNano: Number(ns) };
    this.#history.push(msg);
    if (this.#history.length > HISTORY) this.#history.shift();
    this.#emitter.emit('event', msg);
  }

  /** Past events still held, oldest first. */
  history(): readonly EventMessage[] {
    return this.#history;
  }

  subscribe(listener: (e: EventMessage) => void): () => void {
    this.#emitter.on('event', listener);
    return () => this.#emitter.off('event', listener);
  }
}
