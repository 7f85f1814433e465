/**
 * A Store that counts its writes. Readers that keep a derived index (the embedded DNS's
 * names) compare `version` with the one they built from and rebuild when it moved, so every
 * write, through whatever service or reconcile path, is seen at once without each writer
 * having to announce it.
 */
import type { PortRun } from '../networks/model.js';
import type { RecordTable, Store } from './store.js';

/** One write, for listeners: a record table's insert/update (the record) or delete (its id); anything else is 'other'. */
export type StoreWrite =
  | { readonly table: 'networks' | 'sandboxes' | 'endpoints'; readonly record?: { readonly id: string }; readonly id?: string }
  | { readonly table: 'other' };

/** Something whose content changes exactly when `version` does. */
export interface Versioned {
  readonly version: number;
}

export class ObservedStore implements Store, Versioned {
  readonly #inner: Store;
  #version = 0;
  /** Called after every write (the embedded DNS's kernel names follow the store at once). */
  readonly writeListeners = new Set<(write: StoreWrite) => void>();
  readonly networks: Store['networks'];
  readonly sandboxes: Store['sandboxes'];
  readonly endpoints: Store['endpoints'];
  readonly ports: Store['ports'];
  readonly ipam: Store['ipam'];
  readonly quarantine: Store['quarantine'];
  readonly documents: Store['documents'];

  constructor(inner: Store) {
    this.#inner = inner;
    const bump = <A extends unknown[], R>(fn: (...args: A) => R) => (...args: A): R => {
      const r = fn(...args);
      this.#bump({ table: 'other' });
      return r;
    };
    const table = <T extends { id: string }>(t: RecordTable<T>, name: 'networks' | 'sandboxes' | 'endpoints'): RecordTable<T> => ({
      all: () => t.all(),
      get: (id) => t.get(id),
      insert: (r: T) => {
        t.insert(r);
        this.#bump({ table: name, record: r });
      },
      update: (r: T) => {
        t.update(r);
        this.#bump({ table: name, record: r });
      },
      delete: (id: string) => {
        t.delete(id);
        this.#bump({ table: name, id });
      },
    });
    this.networks = { ...table(inner.networks, 'networks'), byName: (name) => inner.networks.byName(name) };
    this.sandboxes = { ...table(inner.sandboxes, 'sandboxes'), byName: (name) => inner.sandboxes.byName(name) };
    this.endpoints = {
      ...table(inner.endpoints, 'endpoints'),
      forNetwork: (id) => inner.endpoints.forNetwork(id),
      forSandbox: (id) => inner.endpoints.forSandbox(id),
    };
    this.ports = {
      all: () => inner.ports.all(),
      forSandbox: (id) => inner.ports.forSandbox(id),
      runsForSandbox: (id) => inner.ports.runsForSandbox(id),
      setForSandbox: bump((id: string, ports: readonly PortRun[]) => inner.ports.setForSandbox(id, ports)),
      deleteForSandbox: bump((id) => inner.ports.deleteForSandbox(id)),
    };
    this.ipam = {
      holder: (pool, address) => inner.ipam.holder(pool, address),
      reserve: bump((pool: string, address: string, owner: string) => inner.ipam.reserve(pool, address, owner)),
      release: bump((pool: string, address: string) => inner.ipam.release(pool, address)),
      lastAllocated: (pool, family) => inner.ipam.lastAllocated(pool, family),
      setLastAllocated: bump((pool: string, address: string) => inner.ipam.setLastAllocated(pool, address)),
      releaseOwner: bump((owner: string) => inner.ipam.releaseOwner(owner)),
      dropPool: bump((pool: string) => inner.ipam.dropPool(pool)),
    };
    this.quarantine = { all: () => inner.quarantine.all(), sweep: bump(() => inner.quarantine.sweep()) };
    this.documents = {
      all: (kind) => inner.documents.all(kind),
      get: (kind, id) => inner.documents.get(kind, id),
      put: bump((kind: string, id: string, doc: string) => inner.documents.put(kind, id, doc)),
      delete: bump((kind: string, id: string) => inner.documents.delete(kind, id)),
    };
  }

  /** Moves on every write (also one a transaction later rolls back: a spurious rebuild is harmless). */
  get version(): number {
    return this.#version;
  }

  transaction<T>(fn: () => T): T {
    try {
      return this.#inner.transaction(fn);
    } finally {
      this.#bump({ table: 'other' });
    }
  }

  #bump(write: StoreWrite): void {
    this.#version++;
    for (const listener of this.writeListeners) listener(write);
  }

  getMeta(key: string): string | undefined {
    return this.#inner.getMeta(key);
  }

  setMeta(key: string, value: string): void {
    this.#inner.setMeta(key, value);
    this.#version++;
  }

  close(): void {
    this.#inner.close();
  }
}
