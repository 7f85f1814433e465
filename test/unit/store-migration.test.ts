// Upgrading a --root made by main before IPv6 (store schema 1, IPv4 integers in the IPAM
// tables): the fixture is that database as main's own SqliteStore wrote it (SQL dump).
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IpAllocator } from '../../src/ipam/allocator.js';
import { parseIp, parsePrefix } from '../../src/ipam/ip.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/store-v1/bpfnet.sql');

function rootFromFixture(): string {
  const root = mkdtempSync(join(tmpdir(), 'bpfnet-migrate-'));
  const db = new Database(join(root, 'bpfnet.db'));
  db.exec(readFileSync(FIXTURE, 'utf8'));
  db.close();
  return root;
}

describe('store: a schema 1 --root opened by this version', () => {
  const roots: string[] = [];
  afterEach(() => {
    for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
  });

  it('keeps every network, sandbox, endpoint, address hold, cursor and port, and allocation continues after the cursor', () => {
    const root = rootFromFixture();
    roots.push(root);
    const before = new Database(join(root, 'bpfnet.db'), { readonly: true });
    const docs = (t: string) => (before.prepare(`SELECT doc FROM ${t} ORDER BY rowid`).all() as { doc: string }[]).map((r) => JSON.parse(r.doc));
    const [networks, sandboxes, endpoints] = [docs('networks'), docs('sandboxes'), docs('endpoints')];
    before.close();

    const s = new SqliteStore(root);
    try {
      expect(s.getMeta('schema')).toBe('2');
      expect(s.networks.all()).toEqual(networks);
      expect(s.sandboxes.all()).toEqual(sandboxes);
      expect(s.endpoints.all()).toEqual(endpoints);
      expect(s.ports.all()).toEqual([
        { sandboxId: 's1', protocol: 'tcp', hostIp: '', hostPort: 8080, containerPort: 80 },
        { sandboxId: 's1', protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8081, containerPort: 80 },
        { sandboxId: 's1', protocol: 'udp', hostIp: '', hostPort: 5353, containerPort: 53 },
      ]);
      const holds = (['n1 172.29.0.1', 'n1 172.29.1.5', 'n2 172.17.0.1', 'n1 172.29.5.1', 'n2 172.17.0.2', 'n1 172.29.5.9'] as const).map((k) => {
        const [pool, address] = k.split(' ');
        return s.ipam.holder(pool, address);
      });
      expect(holds).toEqual(['gateway', 'aux:host1', 'gateway', 'e1', 'e2', 'e3']);
      expect([s.ipam.lastAllocated('n1', 4), s.ipam.lastAllocated('n2', 4), s.ipam.lastAllocated('n1', 6)]).toEqual(['172.29.5.1', '172.17.0.2', undefined]);
      // Every endpoint's address is still held by it: nothing the upgrade left free could be given twice.
      for (const e of endpoints) expect(s.ipam.holder(e.networkId, e.ipv4)).toBe(e.id);
      const alloc = new IpAllocator(s.ipam);
      const next = alloc.allocate({ id: 'n1', label: 'backend', subnet: parsePrefix('172.29.0.0/16')!, range: parsePrefix('172.29.5.0/24')! }, 'e4');
      expect(next).toEqual(parseIp('172.29.5.2'));
      // The same network can now hold IPv6 addresses beside them.
      expect(s.ipam.reserve('n1', 'fd00:1::2', 'e1')).toEqual({ reserved: true });
    } finally {
      s.close();
    }
    // Opening again is a no-op (already schema 2).
    const again = new SqliteStore(root);
    try {
      expect([again.getMeta('schema'), again.ipam.holder('n1', '172.29.5.2'), again.ipam.holder('n1', 'fd00:1::2')]).toEqual(['2', 'e4', 'e1']);
    } finally {
      again.close();
    }
  });

  it('refuses a database newer than itself', () => {
    const root = rootFromFixture();
    roots.push(root);
    const db = new Database(join(root, 'bpfnet.db'));
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema'").run();
    db.close();
    expect(() => new SqliteStore(root)).toThrow(/schema 99 is newer than this bpfnet \(2\)/);
  });
});
