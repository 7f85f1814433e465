// The contract every Store implementation runs (SQLite, memory; a shared store later): every
// verb the services use, constraints reported as StoreConflict, all-or-nothing transactions,
// insertion order, reopening, the start-up quarantine, and address reservation as one
// conditional write that exactly one of two racing writers wins.
import { describe, expect, it } from 'vitest';
import { Ipv4Allocator, type IpamStore } from '../../src/ipam/allocator.js';
import { formatIPv4, parseCidr } from '../../src/ipam/ipv4.js';
import type { EndpointRecord, NetworkRecord, PortRecord, SandboxRecord } from '../../src/networks/model.js';
import { StoreConflict, type Store } from '../../src/store/store.js';

/** One place a store lives (a file, a backing object); every open() sees the same state. */
export interface StoreHarness {
  open(): Store;
  /** Overwrites a stored document as a hand edit or a buggy version would. */
  corrupt(table: 'networks' | 'sandboxes' | 'endpoints' | 'sandbox_ports', id: string, doc: string): void;
  dispose(): void;
}

export const net = (id: string, name: string, subnet = '10.1.0.0/24'): NetworkRecord => ({
  id,
  name,
  created: '2026-12-01T00:00:00.000000000Z',
  driver: 'bridge',
  scope: 'local',
  internal: false,
  attachable: false,
  ingress: false,
  configOnly: false,
  enableIPv4: true,
  enableIPv6: false,
  ipamDriver: 'default',
  ipamOptions: {},
  ipamConfig: [{ Subnet: subnet }],
  options: {},
  labels: {},
  predefined: false,
  subnet,
  gateway: subnet.replace(/0\/\d+$/, '1'),
  device: `br-${id}`,
});
export const sandbox = (id: string, name: string): SandboxRecord => ({
  id,
  name,
  created: '2026-12-01T00:00:00.000000000Z',
  networkMode: 'n1',
  hostname: name,
  extraHosts: [],
  dns: [],
  dnsSearch: [],
  command: [],
  state: 'created',
  netns: `ns-${id}`,
});
export const endpoint = (id: string, networkId: string, sandboxId: string, ipv4: string, seq = 0): EndpointRecord => ({
  id,
  networkId,
  sandboxId,
  state: 'active',
  seq,
  ifname: `eth${seq}`,
  hostIfname: `v-${id}`,
  mac: '02:42:0a:00:00:02',
  ipv4,
  prefixLength: 24,
  aliases: [],
  staticIp: false,
});
const port = (sandboxId: string, hostPort: number, protocol: 'tcp' | 'udp' = 'tcp'): PortRecord => ({ sandboxId, protocol, hostIp: '', hostPort, containerPort: 80 });
const A = '10.1.0.5';
const A1 = '10.1.0.6';

export function runStoreContract(name: string, opts: { newStore: () => StoreHarness }): void {
  describe(`store contract: ${name}`, () => {
    const withStore = (fn: (s: Store, h: StoreHarness) => void) => () => {
      const h = opts.newStore();
      const s = h.open();
      try {
        fn(s, h);
      } finally {
        s.close();
        h.dispose();
      }
    };

    for (const table of ['networks', 'sandboxes'] as const) {
      const make = table === 'networks' ? (id: string, n: string) => net(id, n) : (id: string, n: string) => sandbox(id, n);
      it(
        `${table}: insert, get, update, delete; ids and names are unique; records are copies`,
        withStore((s) => {
          const t = s[table] as Store['networks'] & Store['sandboxes'];
          t.insert(make('a', 'one') as never);
          t.insert(make('b', 'two') as never);
          expect(t.get('a')).toEqual(make('a', 'one'));
          expect(t.get('zz')).toBeUndefined();
          expect(() => t.insert(make('a', 'three') as never)).toThrow(StoreConflict);
          expect(() => t.insert(make('c', 'one') as never)).toThrow(StoreConflict);
          expect(() => t.update(make('b', 'one') as never)).toThrow(StoreConflict);
          expect(() => t.update(make('zz', 'zz') as never)).toThrow(StoreConflict);
          t.update({ ...make('a', 'renamed'), created: 'x' } as never);
          expect(t.get('a')).toMatchObject({ name: 'renamed', created: 'x' });
          // By name: the renamed record under its new name only, a copy like get's.
          expect(t.byName('renamed')).toEqual(t.get('a'));
          expect(t.byName('one')).toBeUndefined();
          expect(t.byName('two')!.id).toBe('b');
          expect(t.byName('b')).toBeUndefined();
          // The freed name can be taken again.
          t.insert(make('c', 'one') as never);
          const got = t.get('c')!;
          got.name = 'mutated';
          expect(t.get('c')!.name).toBe('one');
          t.delete('b');
          t.delete('b');
          expect(t.byName('two')).toBeUndefined();
          expect(t.all().map((r) => r.id)).toEqual(['a', 'c']);
        }),
      );
    }

    it(
      'endpoints: per network and per sandbox (by seq), one per pair, only between records that exist',
      withStore((s) => {
        s.networks.insert(net('n1', 'one'));
        s.networks.insert(net('n2', 'two', '10.2.0.0/24'));
        s.sandboxes.insert(sandbox('s1', 'c1'));
        s.sandboxes.insert(sandbox('s2', 'c2'));
        s.endpoints.insert(endpoint('e1', 'n2', 's1', '10.2.0.2', 1));
        s.endpoints.insert(endpoint('e2', 'n1', 's1', '10.1.0.2', 0));
        s.endpoints.insert(endpoint('e3', 'n1', 's2', '10.1.0.3', 0));
        expect(s.endpoints.forSandbox('s1').map((e) => e.id)).toEqual(['e2', 'e1']);
        expect(s.endpoints.forNetwork('n1').map((e) => e.id)).toEqual(['e2', 'e3']);
        expect(s.endpoints.forNetwork('nx')).toEqual([]);
        expect(() => s.endpoints.insert(endpoint('e4', 'n1', 's1', '10.1.0.9'))).toThrow(StoreConflict);
        expect(() => s.endpoints.insert(endpoint('e4', 'nx', 's1', '10.1.0.9'))).toThrow(StoreConflict);
        expect(() => s.endpoints.insert(endpoint('e4', 'n2', 'sx', '10.1.0.9'))).toThrow(StoreConflict);
        expect(() => s.endpoints.insert(endpoint('e1', 'n2', 's2', '10.2.0.3'))).toThrow(StoreConflict);
        // A network or sandbox that endpoints refer to cannot go first.
        expect(() => s.networks.delete('n1')).toThrow(StoreConflict);
        expect(() => s.sandboxes.delete('s2')).toThrow(StoreConflict);
        s.endpoints.update({ ...endpoint('e3', 'n1', 's2', '10.1.0.3'), state: 'creating' });
        expect(s.endpoints.get('e3')!.state).toBe('creating');
        s.endpoints.delete('e3');
        s.sandboxes.delete('s2');
        expect(s.endpoints.all().map((e) => e.id)).toEqual(['e1', 'e2']);
      }),
    );

    it(
      'ports: set per sandbox (replacing), read back in order, cleared by an empty set; only for a sandbox that exists, only if no other sandbox holds them',
      withStore((s) => {
        s.sandboxes.insert(sandbox('s1', 'c1'));
        s.sandboxes.insert(sandbox('s2', 'c2'));
        s.ports.setForSandbox('s1', [port('s1', 80), port('s1', 53, 'udp')]);
        s.ports.setForSandbox('s2', [port('s2', 81)]);
        expect(s.ports.forSandbox('s1')).toEqual([port('s1', 80), port('s1', 53, 'udp')]);
        // Replacing moves a sandbox's ports after the others.
        s.ports.setForSandbox('s1', [port('s1', 8080)]);
        expect(s.ports.all()).toEqual([port('s2', 81), port('s1', 8080)]);
        expect(() => s.sandboxes.delete('s1')).toThrow(StoreConflict);
        expect(() => s.ports.setForSandbox('sx', [port('sx', 1)])).toThrow(StoreConflict);
        s.ports.setForSandbox('s2', []);
        expect(s.ports.forSandbox('s2')).toEqual([]);
        // Conditional: a port another sandbox holds is refused, whole (nothing of the set is stored).
        const any80 = { sandboxId: 's2', protocol: 'tcp' as const, hostIp: '', hostPort: 8080, containerPort: 80 };
        expect(() => s.ports.setForSandbox('s2', [port('s2', 9000), any80])).toThrow(StoreConflict);
        expect(() => s.ports.setForSandbox('s2', [{ ...any80, hostIp: '127.0.0.1' }])).toThrow(/held by sandbox s1/);
        expect(s.ports.forSandbox('s2')).toEqual([]);
        s.ports.setForSandbox('s2', [port('s2', 8080, 'udp'), port('s2', 9000)]);
        expect(s.ports.forSandbox('s2')).toEqual([port('s2', 8080, 'udp'), port('s2', 9000)]);
        // Re-setting a sandbox's own ports is not a clash with itself.
        s.ports.setForSandbox('s1', [port('s1', 8080), port('s1', 8081)]);
        s.ports.deleteForSandbox('s2');
        s.ports.deleteForSandbox('s1');
        expect(s.ports.all()).toEqual([]);
        s.sandboxes.delete('s1');
      }),
    );

    it(
      'ports: a 10,000-port range and ports that break its runs read back exactly, in order',
      withStore((s) => {
        s.sandboxes.insert(sandbox('s1', 'c1'));
        const range = Array.from({ length: 10_000 }, (_, i) => ({ sandboxId: 's1', protocol: 'tcp' as const, hostIp: '', hostPort: 10_000 + i, containerPort: 10_000 + i }));
        // A gap, a step in one column only, another address, another protocol, a port before the last.
        const odd = [port('s1', 30_000), { ...port('s1', 30_001), containerPort: 81 }, { ...port('s1', 30_002), hostIp: '127.0.0.1' }, port('s1', 30_003, 'udp'), port('s1', 29_999)];
        const all = [...range, ...odd];
        s.ports.setForSandbox('s1', all);
        expect(s.ports.forSandbox('s1')).toEqual(all);
        expect(s.ports.all()).toEqual(all);
        s.ports.deleteForSandbox('s1');
        s.sandboxes.delete('s1');
      }),
    );

    it(
      'ports: runs go in and come out as runs (joined where they continue), read per port the same; a run is refused for the one port of it another sandbox holds',
      withStore((s) => {
        s.sandboxes.insert(sandbox('s1', 'c1'));
        s.sandboxes.insert(sandbox('s2', 'c2'));
        const run = { ...port('s1', 10_000), containerPort: 20_000, count: 10_000 };
        // A run, a single port that continues it, a run of another protocol.
        s.ports.setForSandbox('s1', [run, { ...port('s1', 20_000), containerPort: 30_000 }, { ...port('s1', 10_000, 'udp'), count: 3 }]);
        expect(s.ports.runsForSandbox('s1')).toEqual([
          { ...run, count: 10_001 },
          { ...port('s1', 10_000, 'udp'), count: 3 },
        ]);
        const each = s.ports.forSandbox('s1');
        expect(each).toHaveLength(10_004);
        expect(each[0]).toEqual({ ...port('s1', 10_000), containerPort: 20_000 });
        expect(each[9_999]).toEqual({ ...port('s1', 19_999), containerPort: 29_999 });
        expect(each[10_003]).toEqual({ ...port('s1', 10_002, 'udp'), containerPort: 82 });
        expect(s.ports.runsForSandbox('s2')).toEqual([]);
        // Inside s1's run, and a run that reaches into it by its last port: refused whole, naming the port.
        expect(() => s.ports.setForSandbox('s2', [{ ...port('s2', 14_990), count: 20 }])).toThrow(/tcp 0\.0\.0\.0:14990 for sandbox s2 is held by sandbox s1/);
        expect(() => s.ports.setForSandbox('s2', [{ ...port('s2', 9_990), count: 11 }])).toThrow(/0\.0\.0\.0:10000 for sandbox s2 is held by sandbox s1/);
        expect(s.ports.forSandbox('s2')).toEqual([]);
        s.ports.setForSandbox('s2', [{ ...port('s2', 9_990), count: 10 }]);
        expect(s.ports.runsForSandbox('s2')).toEqual([{ ...port('s2', 9_990), count: 10 }]);
        s.ports.deleteForSandbox('s1');
        s.ports.deleteForSandbox('s2');
        s.sandboxes.delete('s1');
        s.sandboxes.delete('s2');
      }),
    );

    it(
      'ipam: reserve is conditional (a holder keeps its address, re-reserving your own is a win); release, per owner, per pool',
      withStore((s) => {
        expect(s.ipam.reserve('n1', A, 'sandbox c1')).toEqual({ reserved: true });
        expect(s.ipam.reserve('n1', A, 'sandbox c2')).toEqual({ reserved: false, holder: 'sandbox c1' });
        expect(s.ipam.holder('n1', A)).toBe('sandbox c1');
        expect(s.ipam.reserve('n1', A, 'sandbox c1')).toEqual({ reserved: true });
        expect(s.ipam.reserve('n2', A, 'sandbox c2')).toEqual({ reserved: true });
        s.ipam.reserve('n1', A1, 'sandbox c2');
        s.ipam.setLastAllocated('n1', A1);
        expect(s.ipam.lastAllocated('n1', 4)).toBe(A1);
        s.ipam.releaseOwner('sandbox c2');
        expect([s.ipam.holder('n1', A1), s.ipam.holder('n2', A)]).toEqual([undefined, undefined]);
        s.ipam.release('n1', A);
        s.ipam.release('n1', A);
        expect(s.ipam.reserve('n1', A, 'sandbox c2')).toEqual({ reserved: true });
        s.ipam.dropPool('n1');
        expect([s.ipam.holder('n1', A), s.ipam.lastAllocated('n1', 4)]).toEqual([undefined, undefined]);
      }),
    );

    it(
      'ipam, IPv6: both families share a pool with separate cursors; reservation is conditional; release, per owner, per pool, across reopening',
      () => {
        const h = opts.newStore();
        try {
          const s = h.open();
          const B = 'fd00:1::2';
          expect(s.ipam.reserve('n1', B, 'sandbox c1')).toEqual({ reserved: true });
          expect(s.ipam.reserve('n1', B, 'sandbox c2')).toEqual({ reserved: false, holder: 'sandbox c1' });
          expect(s.ipam.reserve('n1', 'fd00:1::ffff:ffff:ffff:ffff', 'sandbox c2')).toEqual({ reserved: true });
          expect(s.ipam.reserve('n1', A, 'sandbox c2')).toEqual({ reserved: true });
          s.ipam.setLastAllocated('n1', A);
          s.ipam.setLastAllocated('n1', 'fd00:1::ffff:ffff:ffff:ffff');
          expect([s.ipam.lastAllocated('n1', 4), s.ipam.lastAllocated('n1', 6)]).toEqual([A, 'fd00:1::ffff:ffff:ffff:ffff']);
          s.close();
          const again = h.open();
          expect([again.ipam.holder('n1', B), again.ipam.holder('n1', 'fd00:1::ffff:ffff:ffff:ffff'), again.ipam.lastAllocated('n1', 6)]).toEqual(['sandbox c1', 'sandbox c2', 'fd00:1::ffff:ffff:ffff:ffff']);
          // Two writers racing for one IPv6 address: one wins, the other learns who.
          const other = h.open();
          expect([again.ipam.reserve('n1', 'fd00:1::9', 'host one'), other.ipam.reserve('n1', 'fd00:1::9', 'host two')]).toEqual([{ reserved: true }, { reserved: false, holder: 'host one' }]);
          other.close();
          again.ipam.releaseOwner('sandbox c2');
          expect([again.ipam.holder('n1', 'fd00:1::ffff:ffff:ffff:ffff'), again.ipam.holder('n1', A), again.ipam.holder('n1', B)]).toEqual([undefined, undefined, 'sandbox c1']);
          again.ipam.release('n1', B);
          expect(again.ipam.holder('n1', B)).toBeUndefined();
          again.ipam.reserve('n1', B, 'sandbox c3');
          again.ipam.dropPool('n1');
          expect([again.ipam.holder('n1', B), again.ipam.lastAllocated('n1', 4), again.ipam.lastAllocated('n1', 6)]).toEqual([undefined, undefined, undefined]);
          again.close();
        } finally {
          h.dispose();
        }
      },
    );

    it('two writers reserving the same address: exactly one wins, the other learns who', () => {
      const h = opts.newStore();
      const [one, two] = [h.open(), h.open()];
      try {
        // Both propose A (read: free), then both write.
        expect([one.ipam.holder('n1', A), two.ipam.holder('n1', A)]).toEqual([undefined, undefined]);
        const results = [one.ipam.reserve('n1', A, 'host one'), two.ipam.reserve('n1', A, 'host two')];
        expect(results.filter((r) => r.reserved)).toHaveLength(1);
        expect(results[1]).toEqual({ reserved: false, holder: 'host one' });
        expect(two.ipam.holder('n1', A)).toBe('host one');
      } finally {
        one.close();
        two.close();
        h.dispose();
      }
    });

    it('two allocators whose reads are stale never hand out one address twice', () => {
      const h = opts.newStore();
      const [one, two] = [h.open(), h.open()];
      try {
        // The second host's reads always say "free" (the worst stale view): only the conditional write protects it.
        const stale: IpamStore = { ...two.ipam, holder: () => undefined, lastAllocated: () => undefined };
        const pool = { id: 'n1', label: 'one', subnet: parseCidr('10.1.0.0/29')! };
        const a = new Ipv4Allocator(one.ipam);
        const b = new Ipv4Allocator(stale);
        const got = [a.allocate(pool, 'a1'), b.allocate(pool, 'b1'), a.allocate(pool, 'a2'), b.allocate(pool, 'b2')].map(formatIPv4);
        expect(got).toEqual(['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4']);
        expect(new Set(got).size).toBe(4);
        expect(() => b.reserve(pool, 0x0a010001, 'b3')).toThrow(/taken by a1/);
      } finally {
        one.close();
        two.close();
        h.dispose();
      }
    });

    it(
      'a failed transaction leaves nothing behind; nested transactions join the outer one',
      withStore((s) => {
        s.networks.insert(net('n1', 'one'));
        s.setMeta('k', 'before');
        expect(() =>
          s.transaction(() => {
            s.sandboxes.insert(sandbox('s1', 'c1'));
            s.endpoints.insert(endpoint('e1', 'n1', 's1', '10.1.0.2'));
            s.ports.setForSandbox('s1', [port('s1', 80)]);
            s.ipam.reserve('n1', A, 'sandbox c1');
            s.ipam.setLastAllocated('n1', A);
            s.networks.update({ ...net('n1', 'one'), labels: { x: 'y' } });
            s.setMeta('k', 'during');
            s.transaction(() => s.networks.insert(net('n2', 'two')));
            throw new Error('boom');
          }),
        ).toThrow('boom');
        expect(s.sandboxes.all()).toEqual([]);
        expect(s.endpoints.all()).toEqual([]);
        expect(s.ports.all()).toEqual([]);
        expect([s.ipam.holder('n1', A), s.ipam.lastAllocated('n1', 4)]).toEqual([undefined, undefined]);
        expect(s.networks.all()).toEqual([net('n1', 'one')]);
        expect(s.getMeta('k')).toBe('before');
        // A constraint failing inside a transaction rolls back the writes before it.
        expect(() =>
          s.transaction(() => {
            s.sandboxes.insert(sandbox('s1', 'c1'));
            s.networks.insert(net('n3', 'one'));
          }),
        ).toThrow(StoreConflict);
        expect(s.sandboxes.all()).toEqual([]);
        const r = s.transaction(() => {
          s.sandboxes.insert(sandbox('s1', 'c1'));
          return s.transaction(() => (s.sandboxes.insert(sandbox('s2', 'c2')), 7));
        });
        expect(r).toBe(7);
        expect(s.sandboxes.all().map((x) => x.id)).toEqual(['s1', 's2']);
      }),
    );

    it(
      'keeps insertion order; an update keeps a record in place',
      withStore((s) => {
        for (const [id, n] of [['z', 'last'], ['a', 'first'], ['m', 'mid']]) s.networks.insert(net(id, n));
        s.networks.update(net('z', 'last-renamed'));
        expect(s.networks.all().map((n) => n.name)).toEqual(['last-renamed', 'first', 'mid']);
      }),
    );

    it('reopening keeps everything, and a closed store refuses to be used', () => {
      const h = opts.newStore();
      try {
        const s = h.open();
        s.transaction(() => {
          s.networks.insert(net('n1', 'one'));
          s.sandboxes.insert(sandbox('s1', 'c1'));
          s.endpoints.insert(endpoint('e1', 'n1', 's1', '10.1.0.5'));
          s.ports.setForSandbox('s1', [port('s1', 80)]);
          s.ipam.reserve('n1', A, 'sandbox c1');
          s.ipam.setLastAllocated('n1', A);
          s.setMeta('schema-note', 'x');
        });
        s.close();
        expect(() => s.networks.all()).toThrow();
        const again = h.open();
        expect(again.networks.all()).toEqual([net('n1', 'one')]);
        expect(again.sandboxes.all()).toEqual([sandbox('s1', 'c1')]);
        expect(again.endpoints.forSandbox('s1')).toEqual([endpoint('e1', 'n1', 's1', '10.1.0.5')]);
        expect(again.ports.all()).toEqual([port('s1', 80)]);
        expect([again.ipam.holder('n1', A), again.ipam.lastAllocated('n1', 4)]).toEqual(['sandbox c1', A]);
        expect(again.getMeta('schema-note')).toBe('x');
        again.close();
      } finally {
        h.dispose();
      }
    });

    it('several IPv6 subnets: kept across reopening with their gateways and held addresses; a further subnet without a valid gateway is quarantined', () => {
      const h = opts.newStore();
      try {
        const multi: NetworkRecord = {
          ...net('m1', 'multi'),
          enableIPv6: true,
          ipamConfig: [{ Subnet: '10.1.0.0/24' }, { Subnet: 'fd00:1::/64' }, { Subnet: 'fd00:2::/64', Gateway: 'fd00:2::fe' }],
          subnet6: 'fd00:1::/64',
          gateway6: 'fd00:1::1',
          moreSubnets6: [{ subnet: 'fd00:2::/64', gateway: 'fd00:2::fe' }],
        };
        const s = h.open();
        s.transaction(() => {
          s.networks.insert(multi);
          s.networks.insert({ ...multi, id: 'm2', name: 'bad', subnet: '10.2.0.0/24', gateway: '10.2.0.1', device: 'br-m2', subnet6: 'fd00:3::/64', gateway6: 'fd00:3::1', moreSubnets6: [{ subnet: 'fd00:4::/64', gateway: 'fd00:5::1' }] });
          s.ipam.reserve('m1', 'fd00:1::1', 'the gateway');
          s.ipam.reserve('m1', 'fd00:2::fe', 'the gateway');
          s.ipam.reserve('m1', 'fd00:2::9', 'sandbox c1');
        });
        s.close();
        const again = h.open();
        expect(again.quarantine.sweep().map((q) => [q.table, q.id, q.reason])).toEqual([['networks', 'm2', 'invalid further IPv6 pool "fd00:4::/64" / "fd00:5::1"']]);
        expect(again.networks.all()).toEqual([multi]);
        expect(['fd00:1::1', 'fd00:2::fe', 'fd00:2::9'].map((a) => again.ipam.holder('m1', a))).toEqual(['the gateway', 'the gateway', 'sandbox c1']);
        again.close();
      } finally {
        h.dispose();
      }
    });

    it('quarantine: unusable rows and their dependents are moved aside with a reason, their addresses freed, kept across reopening', () => {
      const h = opts.newStore();
      try {
        const s = h.open();
        s.transaction(() => {
          s.networks.insert(net('n1', 'good'));
          s.networks.insert(net('n2', 'broken', '10.2.0.0/24'));
          s.sandboxes.insert(sandbox('s1', 'one'));
          s.sandboxes.insert(sandbox('s2', 'two'));
          s.endpoints.insert(endpoint('e1', 'n1', 's1', '10.1.0.2'));
          s.endpoints.insert(endpoint('e2', 'n2', 's2', '10.2.0.2'));
          s.ipam.reserve('n2', '10.2.0.2', 'sandbox two');
          s.ipam.reserve('n1', '10.1.0.2', 'sandbox one');
          s.ports.setForSandbox('s1', [port('s1', 80)]);
        });
        expect(s.quarantine.sweep()).toEqual([]);
        s.close();
        h.corrupt('networks', 'n2', JSON.stringify({ ...net('n2', 'broken'), subnet: 12 }));
        h.corrupt('sandbox_ports', 's1', '{"x":1');
        const again = h.open();
        const moved = again.quarantine.sweep();
        expect(moved.map((q) => [q.table, q.id, q.reason])).toEqual([
          ['networks', 'n2', 'invalid subnet: expected a string of at most 4096 characters, got number'],
          ['endpoints', 'e2', 'its network n2 is missing or quarantined'],
          ['sandbox_ports', 's1', expect.stringMatching(/^not JSON/)],
        ]);
        expect(again.networks.all().map((n) => n.id)).toEqual(['n1']);
        expect(again.endpoints.all().map((e) => e.id)).toEqual(['e1']);
        expect(again.sandboxes.all().map((x) => x.id)).toEqual(['s1', 's2']);
        expect(again.ports.all()).toEqual([]);
        expect([again.ipam.holder('n2', '10.2.0.2'), again.ipam.holder('n1', '10.1.0.2')]).toEqual([undefined, 'sandbox one']);
        expect(again.quarantine.sweep()).toEqual([]);
        again.close();
        const third = h.open();
        // Kept in the order they were moved: dependents first.
        expect(third.quarantine.all().map((q) => `${q.table}/${q.id}`)).toEqual(['sandbox_ports/s1', 'endpoints/e2', 'networks/n2']);
        expect(third.quarantine.all()[2].doc).toContain('"subnet":12');
        third.close();
      } finally {
        h.dispose();
      }
    });
  });
}
