/**
 * A Store held in memory: the second implementation the contract suite runs against
 * (test/contract/store-suite.ts), and the model of what a shared store must enforce by
 * itself — unique ids and names, references, conditional address reservation — instead of
 * relying on SQLite's constraints. Documents are kept as JSON text, as SQLite keeps them, so
 * a caller never shares an object with the store and the start-up quarantine applies alike.
 * A MemoryBacking outlives close(): opening a new MemoryStore on it is a "reopen".
 */
import type { EndpointRecord, NetworkRecord, PortRecord, SandboxRecord } from '../networks/model.js';
import { familyOfText } from '../ipam/allocator.js';
import { checkPortClaims } from './port-claims.js';
import { eachPortOf } from '../util/port-runs.js';
import { decodePortRuns, decodeRunsOf, encodePortRuns } from './port-rows.js';
import { findUnusable, moveAside, type RawRows } from './quarantine.js';
import { StoreConflict, type NamedTable, type QuarantinedRow, type RecordTable, type Store } from './store.js';

interface Tables {
  networks: Map<string, { name: string; doc: string }>;
  sandboxes: Map<string, { name: string; doc: string }>;
  endpoints: Map<string, { networkId: string; sandboxId: string; doc: string }>;
  /** sandbox id -> its ports as runs (port-rows.ts), as SQLite stores them. */
  ports: Map<string, string>;
  /** `${pool} ${address}` -> owner. */
  ipam: Map<string, string>;
  /** `${pool} ${family}` -> last address handed out. */
  cursor: Map<string, string>;
  quarantine: QuarantinedRow[];
  meta: Map<string, string>;
  /** `${kind} ${id}` -> doc, in insertion order. */
  documents: Map<string, string>;
}

function copy(t: Tables): Tables {
  return {
    networks: new Map(t.networks),
    sandboxes: new Map(t.sandboxes),
    endpoints: new Map(t.endpoints),
    ports: new Map(t.ports),
    ipam: new Map(t.ipam),
    cursor: new Map(t.cursor),
    quarantine: [...t.quarantine],
    meta: new Map(t.meta),
    documents: new Map(t.documents),
  };
}

/** The "file" of a memory store: what survives closing one store and opening another on it. */
export class MemoryBacking {
  tables: Tables = {
    networks: new Map(),
    sandboxes: new Map(),
    endpoints: new Map(),
    ports: new Map(),
    ipam: new Map(),
    cursor: new Map(),
    quarantine: [],
    meta: new Map(),
    documents: new Map(),
  };
  /** Raw access for tests that corrupt a stored document the way a hand edit would. */
  setDoc(table: 'networks' | 'sandboxes' | 'endpoints' | 'sandbox_ports', id: string, doc: string): void {
    const t = this.tables;
    if (table === 'sandbox_ports') t.ports.set(id, doc);
    else {
      const row = t[table].get(id);
      if (!row) throw new Error(`memory store: no ${table} row ${id}`);
      t[table].set(id, { ...row, doc } as never);
    }
  }
}

const ipamKey = (pool: string, address: string) => `${pool} ${address}`;

export class MemoryStore implements Store {
  readonly #backing: MemoryBacking;
  #closed = false;
  #inTransaction = false;
  readonly networks: NamedTable<NetworkRecord>;
  readonly sandboxes: NamedTable<SandboxRecord>;
  readonly endpoints: Store['endpoints'];
  readonly ports: Store['ports'];
  readonly ipam: Store['ipam'];
  readonly quarantine: Store['quarantine'];
  readonly documents: Store['documents'];

  constructor(backing: MemoryBacking = new MemoryBacking()) {
    this.#backing = backing;
    const t = () => this.#tables();
    const conflict = (msg: string) => new StoreConflict(`store: ${msg}`);

    // Networks and sandboxes: unique id and unique name; a sandbox or network others refer to stays.
    const named = <T extends { id: string; name: string }>(table: 'networks' | 'sandboxes', referenced: (id: string) => boolean): NamedTable<T> => ({
      all: () => [...t()[table].values()].map((r) => JSON.parse(r.doc) as T),
      byName: (name) => {
        for (const r of t()[table].values()) if (r.name === name) return JSON.parse(r.doc) as T;
        return undefined;
      },
      get: (id) => {
        const r = t()[table].get(id);
        return r ? (JSON.parse(r.doc) as T) : undefined;
      },
      insert: (rec) => {
        const m = t()[table];
        if (m.has(rec.id)) throw conflict(`${table} record ${rec.id} exists`);
        if ([...m.values()].some((r) => r.name === rec.name)) throw conflict(`${table} record ${rec.id}: name ${rec.name} is taken`);
        m.set(rec.id, { name: rec.name, doc: JSON.stringify(rec) });
      },
      update: (rec) => {
        const m = t()[table];
        if (!m.has(rec.id)) throw conflict(`no ${table} record ${rec.id} to update`);
        for (const [id, r] of m) if (id !== rec.id && r.name === rec.name) throw conflict(`${table} record ${rec.id}: name ${rec.name} is taken`);
        m.set(rec.id, { name: rec.name, doc: JSON.stringify(rec) });
      },
      delete: (id) => {
        if (!t()[table].has(id)) return;
        if (referenced(id)) throw conflict(`${table} record ${id} is still referred to`);
        t()[table].delete(id);
      },
    });
    const endpointsOf = (pred: (e: { networkId: string; sandboxId: string }) => boolean) =>
      [...t().endpoints.values()].filter(pred).map((r) => JSON.parse(r.doc) as EndpointRecord);
    this.networks = named<NetworkRecord>('networks', (id) => [...t().endpoints.values()].some((e) => e.networkId === id));
    this.sandboxes = named<SandboxRecord>('sandboxes', (id) => t().ports.has(id) || [...t().endpoints.values()].some((e) => e.sandboxId === id));

    // Endpoints: unique id, one per (network, sandbox), both of which must exist.
    const checkEndpoint = (rec: EndpointRecord) => {
      const d = t();
      if (!d.networks.has(rec.networkId)) throw conflict(`endpoints record ${rec.id}: no network ${rec.networkId}`);
      if (!d.sandboxes.has(rec.sandboxId)) throw conflict(`endpoints record ${rec.id}: no sandbox ${rec.sandboxId}`);
      for (const [id, e] of d.endpoints) {
        if (id !== rec.id && e.networkId === rec.networkId && e.sandboxId === rec.sandboxId) throw conflict(`endpoints record ${rec.id}: sandbox ${rec.sandboxId} already has an endpoint on network ${rec.networkId}`);
      }
    };
    this.endpoints = {
      all: () => endpointsOf(() => true),
      get: (id) => {
        const r = t().endpoints.get(id);
        return r ? (JSON.parse(r.doc) as EndpointRecord) : undefined;
      },
      insert: (rec) => {
        if (t().endpoints.has(rec.id)) throw conflict(`endpoints record ${rec.id} exists`);
        checkEndpoint(rec);
        t().endpoints.set(rec.id, { networkId: rec.networkId, sandboxId: rec.sandboxId, doc: JSON.stringify(rec) });
      },
      update: (rec) => {
        if (!t().endpoints.has(rec.id)) throw conflict(`no endpoints record ${rec.id} to update`);
        checkEndpoint(rec);
        t().endpoints.set(rec.id, { networkId: rec.networkId, sandboxId: rec.sandboxId, doc: JSON.stringify(rec) });
      },
      delete: (id) => void t().endpoints.delete(id),
      forNetwork: (id) => endpointsOf((e) => e.networkId === id),
      forSandbox: (id) => endpointsOf((e) => e.sandboxId === id).sort((a, b) => a.seq - b.seq),
    };

    const decode = decodePortRuns;
    this.ports = {
      all: () => [...t().ports].flatMap(([id, doc]) => decode(id, doc)),
      forSandbox: (id) => eachPortOf(this.ports.runsForSandbox(id)),
      runsForSandbox: (id) => {
        const doc = t().ports.get(id);
        return doc ? decodeRunsOf(id, doc) : [];
      },
      setForSandbox: (id, ports) => {
        checkPortClaims(id, this.ports.all(), ports);
        const m = t().ports;
        // Replacing moves the row to the end, as SQLite's INSERT OR REPLACE gives it a new rowid.
        m.delete(id);
        if (ports.length === 0) return;
        if (!t().sandboxes.has(id)) throw conflict(`sandbox_ports record ${id}: no sandbox ${id}`);
        m.set(id, encodePortRuns(ports));
      },
      deleteForSandbox: (id) => void t().ports.delete(id),
    };

    this.ipam = {
      holder: (pool, address) => t().ipam.get(ipamKey(pool, address)),
      reserve: (pool, address, owner) => {
        const m = t().ipam;
        const current = m.get(ipamKey(pool, address));
        if (current === undefined) m.set(ipamKey(pool, address), owner);
        return current === undefined || current === owner ? { reserved: true } : { reserved: false, holder: current };
      },
      release: (pool, address) => void t().ipam.delete(ipamKey(pool, address)),
      lastAllocated: (pool, family) => t().cursor.get(`${pool} ${family}`),
      setLastAllocated: (pool, address) => void t().cursor.set(`${pool} ${familyOfText(address)}`, address),
      releaseOwner: (owner) => {
        const m = t().ipam;
        for (const [k, o] of m) if (o === owner) m.delete(k);
      },
      dropPool: (pool) => {
        const m = t().ipam;
        for (const k of m.keys()) if (k.slice(0, k.lastIndexOf(' ')) === pool) m.delete(k);
        t().cursor.delete(`${pool} 4`);
        t().cursor.delete(`${pool} 6`);
      },
    };

    const rawRows = (): RawRows => ({
      networks: [...t().networks].map(([id, r]) => ({ id, ...r })),
      sandboxes: [...t().sandboxes].map(([id, r]) => ({ id, ...r })),
      endpoints: [...t().endpoints].map(([id, r]) => ({ id, ...r })),
      ports: [...t().ports].map(([sandboxId, doc]) => ({ sandboxId, doc })),
    });
    this.quarantine = {
      all: () => t().quarantine.map((q) => ({ ...q })),
      sweep: () => {
        const rows = rawRows();
        return moveAside(this, rows, findUnusable(rows), (q) => void t().quarantine.push({ ...q }));
      },
    };
    const docKey = (kind: string, id: string) => `${kind} ${id}`;
    this.documents = {
      all: (kind) => [...t().documents].filter(([k]) => k.startsWith(`${kind} `)).map(([k, doc]) => ({ id: k.slice(kind.length + 1), doc })),
      get: (kind, id) => t().documents.get(docKey(kind, id)),
      put: (kind, id, doc) => void t().documents.set(docKey(kind, id), doc),
      delete: (kind, id) => void t().documents.delete(docKey(kind, id)),
    };
  }

  #tables(): Tables {
    if (this.#closed) throw new Error('memory store: used after close');
    return this.#backing.tables;
  }

  transaction<T>(fn: () => T): T {
    if (this.#inTransaction) return fn();
    const before = copy(this.#tables());
    this.#inTransaction = true;
    try {
      return fn();
    } catch (err) {
      this.#backing.tables = before;
      throw err;
    } finally {
      this.#inTransaction = false;
    }
  }

  getMeta(key: string): string | undefined {
    return this.#tables().meta.get(key);
  }

  setMeta(key: string, value: string): void {
    this.#tables().meta.set(key, value);
  }

  close(): void {
    this.#closed = true;
  }
}
