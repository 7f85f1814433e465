import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EndpointRecord } from '../../src/networks/model.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { endpoint as contractEndpoint, net, sandbox } from '../contract/store-suite.js';

/** The contract suite's endpoint, with an alias (the quarantine checks look at aliases too). */
const endpoint = (id: string, networkId: string, sandboxId: string, ipv4: string): EndpointRecord => ({ ...contractEndpoint(id, networkId, sandboxId, ipv4), aliases: ['a'] });

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'bpfnet-store-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('store start-up quarantine', () => {
  it('moves unusable rows and their dependents aside, keeps the rest, and finds nothing the second time', () => {
    const store = new SqliteStore(root);
    store.transaction(() => {
      store.networks.insert(net('n1', 'good', '10.1.0.0/24'));
      store.networks.insert(net('n2', 'broken', '10.2.0.0/24'));
      store.sandboxes.insert(sandbox('s1', 'one'));
      store.sandboxes.insert(sandbox('s2', 'two'));
      store.endpoints.insert(endpoint('e1', 'n1', 's1', '10.1.0.2'));
      store.endpoints.insert(endpoint('e2', 'n1', 's2', '10.1.0.3'));
      store.endpoints.insert(endpoint('e3', 'n2', 's1', '10.2.0.2'));
      store.ipam.reserve('n1', '10.1.0.3', 'sandbox two');
      store.ports.setForSandbox('s1', [{ sandboxId: 's1', protocol: 'tcp', hostIp: '', hostPort: 80, containerPort: 80 }]);
    });
    expect(store.quarantineUnusable()).toEqual([]);
    store.close();

    const db = new Database(join(root, 'bpfnet.db'));
    db.prepare(`UPDATE endpoints SET doc = json_set(doc, '$.aliases', json('[1,null]')) WHERE id = 'e2'`).run();
    db.prepare(`UPDATE networks SET doc = json_set(doc, '$.subnet', 12) WHERE id = 'n2'`).run();
    db.prepare(`UPDATE sandbox_ports SET doc = '{"x":1}' WHERE sandbox_id = 's1'`).run();
    db.close();

    const again = new SqliteStore(root);
    const q = again.quarantineUnusable();
    expect(q.map((r) => [r.table, r.id, r.reason])).toEqual([
      ['networks', 'n2', 'invalid subnet: expected a string of at most 4096 characters, got number'],
      ['endpoints', 'e2', 'invalid aliases[0]: expected a string of at most 255 characters, got number'],
      ['endpoints', 'e3', 'its network n2 is missing or quarantined'],
      ['sandbox_ports', 's1', 'invalid document: expected a list of at most 131072 items ([protocol, hostIp, hostPort, containerPort, count?]), got object'],
    ]);
    expect(again.networks.all().map((n) => n.id)).toEqual(['n1']);
    expect(again.endpoints.all().map((e) => e.id)).toEqual(['e1']);
    expect(again.sandboxes.all().map((s) => s.id)).toEqual(['s1', 's2']);
    expect(again.ports.all()).toEqual([]);
    // The address of the quarantined endpoint is free again.
    expect(again.ipam.holder('n1', '10.1.0.3')).toBeUndefined();
    expect(again.quarantineUnusable()).toEqual([]);
    again.close();
    const kept = new Database(join(root, 'bpfnet.db'));
    expect((kept.prepare('SELECT tbl, id FROM quarantine ORDER BY rowid').all() as Array<{ tbl: string; id: string }>).map((r) => `${r.tbl}/${r.id}`)).toEqual([
      'sandbox_ports/s1',
      'endpoints/e2',
      'endpoints/e3',
      'networks/n2',
    ]);
    kept.close();
  });
});
