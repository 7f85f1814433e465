/**
 * The embedded store: SQLite (better-sqlite3) in the daemon's root directory, WAL mode.
 * Records are JSON documents beside the columns that queries and constraints need
 * (unique names, one endpoint per sandbox and network, one holder per address).
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EndpointRecord, NetworkRecord, PortRecord, SandboxRecord } from '../networks/model.js';
import { familyOfText } from '../ipam/allocator.js';
import { formatIPv4 } from '../ipam/ipv4.js';
import { checkPortClaims } from './port-claims.js';
import { eachPortOf } from '../util/port-runs.js';
import { decodePortRuns, decodeRunsOf, encodePortRuns } from './port-rows.js';
import { findUnusable, moveAside, type RawRows } from './quarantine.js';
import { StoreConflict, type NamedTable, type QuarantinedRow, type RecordTable, type Store } from './store.js';

/** 2: IPAM addresses as canonical text of either family, and one allocation cursor per (pool, family). */
const SCHEMA_VERSION = 2;

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
CREATE TABLE IF NOT EXISTS ipam (pool TEXT NOT NULL, address TEXT NOT NULL, owner TEXT NOT NULL, PRIMARY KEY (pool, address));
CREATE TABLE IF NOT EXISTS ipam_cursor (pool TEXT NOT NULL, family INTEGER NOT NULL, last TEXT NOT NULL, PRIMARY KEY (pool, family));
CREATE TABLE IF NOT EXISTS documents (kind TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS quarantine (tbl TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS endpoints_by_sandbox ON endpoints (sandbox_id);
CREATE INDEX IF NOT EXISTS ipam_by_owner ON ipam (owner);
`;

/**
 * Schema 1 (main before IPv6) kept IPAM addresses as IPv4 integers: rewrite them as dotted
 * text, in one transaction, so an existing --root keeps every hold and cursor.
 */
function migrateFrom1(db: Database.Database): void {
  db.function('bpfnet_ipv4_text', { deterministic: true }, (n: unknown) => formatIPv4(Number(n)));
  db.transaction(() => {
    db.exec(`
      ALTER TABLE ipam RENAME TO ipam_v1;
      ALTER TABLE ipam_cursor RENAME TO ipam_cursor_v1;
      DROP INDEX IF EXISTS ipam_by_owner;
      CREATE TABLE ipam (pool TEXT NOT NULL, address TEXT NOT NULL, owner TEXT NOT NULL, PRIMARY KEY (pool, address));
      CREATE TABLE ipam_cursor (pool TEXT NOT NULL, family INTEGER NOT NULL, last TEXT NOT NULL, PRIMARY KEY (pool, family));
      INSERT INTO ipam (pool, address, owner) SELECT pool, bpfnet_ipv4_text(address), owner FROM ipam_v1 ORDER BY rowid;
      INSERT INTO ipam_cursor (pool, family, last) SELECT pool, 4, bpfnet_ipv4_text(last) FROM ipam_cursor_v1 ORDER BY rowid;
      DROP TABLE ipam_v1;
      DROP TABLE ipam_cursor_v1;
      UPDATE meta SET value = '2' WHERE key = 'schema';
    `);
  }).immediate();
}

/** Runs a write, turning SQLite's constraint failures into the store's own conflict. */
function constrained<R>(table: string, id: string, write: () => R): R {
  try {
    return write();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT')) throw new StoreConflict(`store: ${table} record ${id}: ${(err as Error).message}`);
    throw err;
  }
}

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
    this.table = table;
  }

  readonly table: string;
  readonly values: (r: T) => unknown[];

  all(): T[] {
    return (this.#all.all() as Array<{ doc: string }>).map((r) => JSON.parse(r.doc) as T);
  }
  get(id: string): T | undefined {
    const row = this.#get.get(id) as { doc: string } | undefined;
    return row ? (JSON.parse(row.doc) as T) : undefined;
  }
  insert(record: T): void {
    constrained(this.table, record.id, () => this.#insert.run(record.id, ...this.values(record), JSON.stringify(record)));
  }
  update(record: T): void {
    const r = constrained(this.table, record.id, () => this.#update.run(...this.values(record), JSON.stringify(record), record.id));
    if (r.changes !== 1) throw new StoreConflict(`store: no ${this.table} record ${record.id} to update`);
  }
  delete(id: string): void {
    constrained(this.table, id, () => this.#delete.run(id));
  }
}

/** Networks and sandboxes: the name column is unique and indexed, so a name is one lookup. */
class NamedDocTable<T extends { id: string; name: string }> extends DocTable<T> implements NamedTable<T> {
  readonly #byName: Database.Statement;

  constructor(db: Database.Database, table: string) {
    super(db, table, { columns: ['name'], values: (r) => [r.name] });
    this.#byName = db.prepare(`SELECT doc FROM ${table} WHERE name = ?`).pluck();
  }

  byName(name: string): T | undefined {
    const doc = this.#byName.get(name) as string | undefined;
    return doc === undefined ? undefined : (JSON.parse(doc) as T);
  }
}

export class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly networks: NamedDocTable<NetworkRecord>;
  readonly sandboxes: NamedDocTable<SandboxRecord>;
  readonly endpoints: Store['endpoints'];
  readonly ports: Store['ports'];
  readonly ipam: Store['ipam'];
  readonly quarantine: Store['quarantine'];
  readonly documents: Store['documents'];

  constructor(root: string) {
    mkdirSync(root, { recursive: true });
    const db = new Database(join(root, 'bpfnet.db'));
    // WAL + NORMAL: a committed transaction survives the process being killed at any point.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    this.#db = db;
    if (this.getMeta('schema') === '1') migrateFrom1(db);
    db.exec(SCHEMA);
    const version = this.getMeta('schema');
    if (version === undefined) this.setMeta('schema', String(SCHEMA_VERSION));
    else if (Number(version) > SCHEMA_VERSION) throw new Error(`store ${root}: schema ${version} is newer than this bpfnet (${SCHEMA_VERSION})`);

    this.networks = new NamedDocTable<NetworkRecord>(db, 'networks');
    this.sandboxes = new NamedDocTable<SandboxRecord>(db, 'sandboxes');
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

    // Each sandbox's ports as one compact row of runs (port-rows.ts).
    const decode = decodePortRuns;
    const allPorts = db.prepare('SELECT sandbox_id, doc FROM sandbox_ports ORDER BY rowid');
    const portsFor = db.prepare('SELECT doc FROM sandbox_ports WHERE sandbox_id = ?').pluck();
    const setPorts = db.prepare('INSERT OR REPLACE INTO sandbox_ports (sandbox_id, doc) VALUES (?, ?)');
    const deletePorts = db.prepare('DELETE FROM sandbox_ports WHERE sandbox_id = ?');
    this.ports = {
      all: () => (allPorts.all() as Array<{ sandbox_id: string; doc: string }>).flatMap((r) => decode(r.sandbox_id, r.doc)),
      forSandbox: (id) => eachPortOf(this.ports.runsForSandbox(id)),
      runsForSandbox: (id) => {
        const doc = portsFor.get(id) as string | undefined;
        return doc ? decodeRunsOf(id, doc) : [];
      },
      setForSandbox: (id, ports) => {
        if (ports.length > 0) checkPortClaims(id, this.ports.all(), ports);
        if (ports.length === 0) deletePorts.run(id);
        else constrained('sandbox_ports', id, () => setPorts.run(id, encodePortRuns(ports)));
      },
      deleteForSandbox: (id) => void deletePorts.run(id),
    };

    const holder = db.prepare('SELECT owner FROM ipam WHERE pool = ? AND address = ?').pluck();
    // One conditional statement: inserts only if nobody holds the address (no read-then-write).
    const reserve = db.prepare('INSERT INTO ipam (pool, address, owner) VALUES (?, ?, ?) ON CONFLICT (pool, address) DO NOTHING');
    const release = db.prepare('DELETE FROM ipam WHERE pool = ? AND address = ?');
    const releaseOwner = db.prepare('DELETE FROM ipam WHERE owner = ?');
    const dropPool = db.prepare('DELETE FROM ipam WHERE pool = ?');
    const dropCursor = db.prepare('DELETE FROM ipam_cursor WHERE pool = ?');
    const last = db.prepare('SELECT last FROM ipam_cursor WHERE pool = ? AND family = ?').pluck();
    const setLast = db.prepare('INSERT OR REPLACE INTO ipam_cursor (pool, family, last) VALUES (?, ?, ?)');
    this.ipam = {
      holder: (pool, address) => holder.get(pool, address) as string | undefined,
      reserve: (pool, address, owner) => {
        if (reserve.run(pool, address, owner).changes === 1) return { reserved: true };
        const current = holder.get(pool, address) as string;
        return current === owner ? { reserved: true } : { reserved: false, holder: current };
      },
      release: (pool, address) => void release.run(pool, address),
      lastAllocated: (pool, family) => last.get(pool, family) as string | undefined,
      setLastAllocated: (pool, address) => void setLast.run(pool, familyOfText(address), address),
      releaseOwner: (owner) => void releaseOwner.run(owner),
      dropPool: (pool) => {
        dropPool.run(pool);
        dropCursor.run(pool);
      },
    };

    const docsAll = db.prepare('SELECT id, doc FROM documents WHERE kind = ? ORDER BY rowid');
    const docGet = db.prepare('SELECT doc FROM documents WHERE kind = ? AND id = ?').pluck();
    const docPut = db.prepare('INSERT INTO documents (kind, id, doc) VALUES (?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET doc = excluded.doc');
    const docDelete = db.prepare('DELETE FROM documents WHERE kind = ? AND id = ?');
    this.documents = {
      all: (kind) => docsAll.all(kind) as Array<{ id: string; doc: string }>,
      get: (kind, id) => docGet.get(kind, id) as string | undefined,
      put: (kind, id, doc) => void docPut.run(kind, id, doc),
      delete: (kind, id) => void docDelete.run(kind, id),
    };

    const raw = (sql: string) => () => db.prepare(sql).all() as never[];
    const rawRows = (): RawRows => ({
      networks: raw('SELECT id, name, doc FROM networks ORDER BY rowid')(),
      sandboxes: raw('SELECT id, name, doc FROM sandboxes ORDER BY rowid')(),
      endpoints: raw('SELECT id, network_id AS networkId, sandbox_id AS sandboxId, doc FROM endpoints ORDER BY rowid')(),
      ports: raw('SELECT sandbox_id AS sandboxId, doc FROM sandbox_ports ORDER BY rowid')(),
    });
    const keep = db.prepare('INSERT INTO quarantine (tbl, id, doc, reason, at) VALUES (?, ?, ?, ?, ?)');
    const kept = db.prepare('SELECT tbl AS "table", id, doc, reason FROM quarantine ORDER BY rowid');
    this.quarantine = {
      all: () => kept.all() as QuarantinedRow[],
      sweep: () => {
        const rows = rawRows();
        const at = new Date().toISOString();
        return moveAside(this, rows, findUnusable(rows), (q) => void keep.run(q.table, q.id, q.doc, q.reason, at));
      },
    };
  }

  /** Moves unusable rows aside (see quarantine.ts); the daemon calls it once at start. */
  quarantineUnusable(): QuarantinedRow[] {
    return this.quarantine.sweep();
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
