/**
 * The embedded store: SQLite (better-sqlite3) in the daemon's root directory, WAL mode.
 * Records are JSON documents beside the columns that queries and constraints need
 * (unique names, one endpoint per sandbox and network, one holder per address).
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EndpointRecord, NetworkRecord, PortRecord, SandboxRecord } from '../networks/model.js';
import { parseIPv4 } from '../ipam/ipv4.js';
import { endpointProblem, networkProblem, portsProblem, sandboxProblem } from './record-check.js';
import type { QuarantinedRow, RecordTable, Store } from './store.js';

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS networks (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sandboxes (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
  id TEXT PRIMARY KEY,
  network_id TEXT NOT NULL REFERENCES networks(id),
  sandbox_id TEXT NOT NULL REFERENCES sandboxes(id),
  doc TEXT NOT NULL,
  UNIQUE (network_id, sandbox_id)
);
CREATE TABLE IF NOT EXISTS sandbox_ports (sandbox_id TEXT PRIMARY KEY REFERENCES sandboxes(id), doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ipam (pool TEXT NOT NULL, address INTEGER NOT NULL, owner TEXT NOT NULL, PRIMARY KEY (pool, address));
CREATE TABLE IF NOT EXISTS ipam_cursor (pool TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (tbl TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS endpoints_by_sandbox ON endpoints (sandbox_id);
CREATE INDEX IF NOT EXISTS ipam_by_owner ON ipam (owner);
`;

class DocTable<T extends { id: string; name?: string }> implements RecordTable<T> {
  readonly #all: Database.Statement;
  readonly #get: Database.Statement;
  readonly #insert: Database.Statement;
  readonly #update: Database.Statement;
  readonly #delete: Database.Statement;

  constructor(db: Database.Database, table: string, extra: { columns: string[]; values: (r: T) => unknown[] }) {
    const cols = ['id', ...extra.columns, 'doc'];
    this.#all = db.prepare(`SELECT doc FROM ${table} ORDER BY rowid`);
    this.#get = db.prepare(`SELECT doc FROM ${table} WHERE id = ?`);
    this.#insert = db.prepare(`INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
    this.#update = db.prepare(`UPDATE ${table} SET ${[...extra.columns, 'doc'].map((c) => `${c} = ?`).join(', ')} WHERE id = ?`);
    this.#delete = db.prepare(`DELETE FROM ${table} WHERE id = ?`);
    this.values = extra.values;
  }

  readonly values: (r: T) => unknown[];

  all(): T[] {
    return (this.#all.all() as Array<{ doc: string }>).map((r) => JSON.parse(r.doc) as T);
  }
  get(id: string): T | undefined {
    const row = this.#get.get(id) as { doc: string } | undefined;
    return row ? (JSON.parse(row.doc) as T) : undefined;
  }
  insert(record: T): void {
    this.#insert.run(record.id, ...this.values(record), JSON.stringify(record));
  }
  update(record: T): void {
    const r = this.#update.run(...this.values(record), JSON.stringify(record), record.id);
    if (r.changes !== 1) throw new Error(`store: no record ${record.id} to update`);
  }
  delete(id: string): void {
    this.#delete.run(id);
  }
}

export class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly networks: DocTable<NetworkRecord>;
  readonly sandboxes: DocTable<SandboxRecord>;
  readonly endpoints: Store['endpoints'];
  readonly ports: Store['ports'];
  readonly ipam: Store['ipam'];

  constructor(root: string) {
    mkdirSync(root, { recursive: true });
    const db = new Database(join(root, 'bpfnet.db'));
    // WAL + NORMAL: a committed transaction survives the process being killed at any point.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    this.#db = db;
    const version = this.getMeta('schema');
    if (version === undefined) this.setMeta('schema', String(SCHEMA_VERSION));
    else if (Number(version) > SCHEMA_VERSION) throw new Error(`store ${root}: schema ${version} is newer than this bpfnet (${SCHEMA_VERSION})`);

    this.networks = new DocTable<NetworkRecord>(db, 'networks', { columns: ['name'], values: (r) => [r.name] });
    this.sandboxes = new DocTable<SandboxRecord>(db, 'sandboxes', { columns: ['name'], values: (r) => [r.name] });
    const endpoints = new DocTable<EndpointRecord>(db, 'endpoints', {
      columns: ['network_id', 'sandbox_id'],
      values: (r) => [r.networkId, r.sandboxId],
    });
    const byNetwork = db.prepare('SELECT doc FROM endpoints WHERE network_id = ? ORDER BY rowid');
    const bySandbox = db.prepare('SELECT doc FROM endpoints WHERE sandbox_id = ? ORDER BY rowid');
    const docs = (rows: unknown[]) => (rows as Array<{ doc: string }>).map((r) => JSON.parse(r.doc) as EndpointRecord);
    this.endpoints = Object.assign(endpoints, {
      forNetwork: (id: string) => docs(byNetwork.all(id)),
      forSandbox: (id: string) => docs(bySandbox.all(id)).sort((a, b) => a.seq - b.seq),
    });

    // Each sandbox's ports as one compact row: [protocol, hostIp, hostPort, containerPort] tuples.
    type Row = [PortRecord['protocol'], string, number, number];
    const decode = (sandboxId: string, doc: string): PortRecord[] =>
      (JSON.parse(doc) as Row[]).map(([protocol, hostIp, hostPort, containerPort]) => ({ sandboxId, protocol, hostIp, hostPort, containerPort }));
    const allPorts = db.prepare('SELECT sandbox_id, doc FROM sandbox_ports ORDER BY rowid');
    const portsFor = db.prepare('SELECT doc FROM sandbox_ports WHERE sandbox_id = ?').pluck();
    const setPorts = db.prepare('INSERT OR REPLACE INTO sandbox_ports (sandbox_id, doc) VALUES (?, ?)');
    const deletePorts = db.prepare('DELETE FROM sandbox_ports WHERE sandbox_id = ?');
    this.ports = {
      all: () => (allPorts.all() as Array<{ sandbox_id: string; doc: string }>).flatMap((r) => decode(r.sandbox_id, r.doc)),
      forSandbox: (id) => {
        const doc = portsFor.get(id) as string | undefined;
        return doc ? decode(id, doc) : [];
      },
      setForSandbox: (id, ports) => {
        if (ports.length === 0) deletePorts.run(id);
        else setPorts.run(id, JSON.stringify(ports.map((p): Row => [p.protocol, p.hostIp, p.hostPort, p.containerPort])));
      },
      deleteForSandbox: (id) => void deletePorts.run(id),
    };

    const holder = db.prepare('SELECT owner FROM ipam WHERE pool = ? AND address = ?').pluck();
    const reserve = db.prepare('INSERT OR REPLACE INTO ipam (pool, address, owner) VALUES (?, ?, ?)');
    const release = db.prepare('DELETE FROM ipam WHERE pool = ? AND address = ?');
    const releaseOwner = db.prepare('DELETE FROM ipam WHERE owner = ?');
    const dropPool = db.prepare('DELETE FROM ipam WHERE pool = ?');
    const dropCursor = db.prepare('DELETE FROM ipam_cursor WHERE pool = ?');
    const last = db.prepare('SELECT last FROM ipam_cursor WHERE pool = ?').pluck();
    const setLast = db.prepare('INSERT OR REPLACE INTO ipam_cursor (pool, last) VALUES (?, ?)');
    this.ipam = {
      holder: (pool, address) => holder.get(pool, address) as string | undefined,
      reserve: (pool, address, owner) => void reserve.run(pool, address, owner),
      release: (pool, address) => void release.run(pool, address),
      lastAllocated: (pool) => last.get(pool) as number | undefined,
      setLastAllocated: (pool, address) => void setLast.run(pool, address),
      releaseOwner: (owner) => void releaseOwner.run(owner),
      dropPool: (pool) => {
        dropPool.run(pool);
        dropCursor.run(pool);
      },
    };
  }

  quarantineUnusable(): QuarantinedRow[] {
    const db = this.#db;
    const out: QuarantinedRow[] = [];
    const rows = (table: string, cols: string) => db.prepare(`SELECT ${cols} FROM ${table}`).all() as Array<Record<string, string>>;
    const bad = (table: string, id: string, doc: string, reason: string) => out.push({ table, id, doc: String(doc), reason });
    const docField = (doc: string, key: string): unknown => {
      try {
        return (JSON.parse(doc) as Record<string, unknown>)[key];
      } catch {
        return undefined;
      }
    };
    const goodNetworks = new Set<string>();
    for (const r of rows('networks', 'id, name, doc')) {
      const reason = networkProblem(r.doc) ?? (docField(r.doc, 'id') !== r.id || docField(r.doc, 'name') !== r.name ? 'id or name differs from its row' : undefined);
      if (reason) bad('networks', r.id, r.doc, reason);
      else goodNetworks.add(r.id);
    }
    const goodSandboxes = new Set<string>();
    const sandboxNames = new Map<string, string>();
    for (const r of rows('sandboxes', 'id, name, doc')) {
      sandboxNames.set(r.id, r.name);
      const reason = sandboxProblem(r.doc) ?? (docField(r.doc, 'id') !== r.id || docField(r.doc, 'name') !== r.name ? 'id or name differs from its row' : undefined);
      if (reason) bad('sandboxes', r.id, r.doc, reason);
      else goodSandboxes.add(r.id);
    }
    for (const r of rows('endpoints', 'id, network_id, sandbox_id, doc')) {
      const reason =
        endpointProblem(r.doc) ??
        (docField(r.doc, 'id') !== r.id || docField(r.doc, 'networkId') !== r.network_id || docField(r.doc, 'sandboxId') !== r.sandbox_id
          ? 'id, networkId or sandboxId differs from its row'
          : !goodNetworks.has(r.network_id)
            ? `its network ${r.network_id} is missing or quarantined`
            : !goodSandboxes.has(r.sandbox_id)
              ? `its sandbox ${r.sandbox_id} is missing or quarantined`
              : undefined);
      if (reason) bad('endpoints', r.id, r.doc, reason);
    }
    for (const r of rows('sandbox_ports', 'sandbox_id, doc')) {
      const reason = portsProblem(r.doc) ?? (!goodSandboxes.has(r.sandbox_id) ? `its sandbox ${r.sandbox_id} is missing or quarantined` : undefined);
      if (reason) bad('sandbox_ports', r.sandbox_id, r.doc, reason);
    }
    if (out.length === 0) return out;
    // Dependents first (foreign keys), then what they hang off; the rows are kept in quarantine, not lost.
    const order = ['sandbox_ports', 'endpoints', 'sandboxes', 'networks'];
    const keep = db.prepare('INSERT INTO quarantine (tbl, id, doc, reason, at) VALUES (?, ?, ?, ?, ?)');
    const at = new Date().toISOString();
    this.transaction(() => {
      for (const table of order) {
        const key = table === 'sandbox_ports' ? 'sandbox_id' : 'id';
        const del = db.prepare(`DELETE FROM ${table} WHERE ${key} = ?`);
        for (const q of out.filter((x) => x.table === table)) {
          keep.run(q.table, q.id, q.doc, q.reason, at);
          del.run(q.id);
          if (table === 'networks') this.ipam.dropPool(q.id);
          if (table === 'sandboxes') this.ipam.releaseOwner(`sandbox ${sandboxNames.get(q.id)}`);
          if (table === 'endpoints') {
            const address = parseIPv4(String(docField(q.doc, 'ipv4')));
            const pool = docField(q.doc, 'networkId');
            if (address !== undefined && typeof pool === 'string') this.ipam.release(pool, address);
          }
        }
      }
    });
    return out;
  }

  transaction<T>(fn: () => T): T {
    if (this.#db.inTransaction) return fn();
    return this.#db.transaction(fn).immediate();
  }

  getMeta(key: string): string | undefined {
    return this.#db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined;
  }

  setMeta(key: string, value: string): void {
    this.#db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, value);
  }

  close(): void {
    this.#db.close();
  }
}
