// The store contract against the SQLite store: each harness is a fresh file; open() opens it again.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { runStoreContract } from '../contract/store-suite.js';

runStoreContract('sqlite', {
  newStore: () => {
    const root = mkdtempSync(join(tmpdir(), 'bpfnet-store-'));
    return {
      open: () => new SqliteStore(root),
      corrupt: (table, id, doc) => {
        const db = new Database(join(root, 'bpfnet.db'));
        try {
          const key = table === 'sandbox_ports' ? 'sandbox_id' : 'id';
          const r = db.prepare(`UPDATE ${table} SET doc = ? WHERE ${key} = ?`).run(doc, id);
          if (r.changes !== 1) throw new Error(`no ${table} row ${id} to corrupt`);
        } finally {
          db.close();
        }
      },
      dispose: () => rmSync(root, { recursive: true, force: true }),
    };
  },
});
