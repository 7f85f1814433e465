/**
 * Network events as the Engine API's GET /events reports them (moby's events.Message):
 * create, connect, disconnect, destroy. They are derived by comparing the store with what was
 * seen last, after every change the services announce (and on a short timer for anything
 * else that writes the store, such as reconcile), so no write path has to remember to emit.
 */
import { EventEmitter } from 'node:events';

export interface EventMessage {
  Type: 'network';
  Action: 'create' | 'connect' | 'disconnect' | 'destroy';
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
}

/** The store as the events need it. */
export interface EventSource {
  readonly version?: number;
  readonly networks: { all(): Array<{ id: string; name: string; driver: string }> };
  readonly endpoints: { all(): Array<{ id: string; networkId: string; sandboxId: string; state: string }> };
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

  constructor(source: EventSource) {
    this.#source = source;
    this.#seen = this.#read();
    this.#version = source.version ?? -1;
    this.#emitter.setMaxListeners(0);
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
    const before = this.#seen;
    const now = this.#read();
    this.#seen = now;
    for (const [id, n] of now.networks) if (!before.networks.has(id)) this.#emit('create', id, { name: n.name, type: n.type });
    for (const [id, e] of now.endpoints) {
      if (before.endpoints.has(id)) continue;
      const n = now.networks.get(e.networkId) ?? before.networks.get(e.networkId);
      this.#emit('connect', e.networkId, { container: e.sandboxId, name: n?.name ?? e.networkId, type: n?.type ?? 'bridge' });
    }
    for (const [id, e] of before.endpoints) {
      if (now.endpoints.has(id)) continue;
      const n = now.networks.get(e.networkId) ?? before.networks.get(e.networkId);
      this.#emit('disconnect', e.networkId, { container: e.sandboxId, name: n?.name ?? e.networkId, type: n?.type ?? 'bridge' });
    }
    for (const [id, n] of before.networks) if (!now.networks.has(id)) this.#emit('destroy', id, { name: n.name, type: n.type });
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
