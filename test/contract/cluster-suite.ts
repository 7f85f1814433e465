// The contract every ClusterState implementation runs (memory; etcd 3.4 for real): the
// store contract's conditional reservation with its conflict report, now across hosts and
// async (exactly one of any number of racing hosts wins; the losers learn the holder),
// unique network names and VNIs, endpoints seen by the other hosts, reconcile, and a host
// that leaves taking its endpoints and addresses along.
import { describe, expect, it } from 'vitest';
import { ClusterConflict, addressHolder, type ClusterEvent, type ClusterState, type GlobalNetwork } from '../../src/cluster/cluster.js';

/** One cluster store (fresh per case); join() is one host. */
export interface ClusterHarness {
  join(hostId: string, advertiseAddr: string): Promise<ClusterState>;
  dispose(): Promise<void>;
}

export const overlay = (id: string, name: string, vni: number, subnet = '10.10.0.0/24'): GlobalNetwork => ({
  id,
  name,
  driver: 'overlay',
  vni,
  subnet,
  gateway: subnet.replace(/0\/\d+$/, '1'),
  internal: false,
  attachable: true,
  options: {},
  labels: {},
  created: '2026-12-02T00:00:00.000000000Z',
});

/** Waits until check() passes (a watch delivers asynchronously); fails with its last error after ms. */
export async function eventually(check: () => void, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

export function runClusterContract(name: string, opts: { newCluster: () => Promise<ClusterHarness> }): void {
  describe(`cluster contract: ${name}`, () => {
    const withCluster = (fn: (h: ClusterHarness) => Promise<void>) => async () => {
      const h = await opts.newCluster();
      try {
        await fn(h);
      } finally {
        await h.dispose();
      }
    };

    it(
      'reserve is conditional (a holder keeps its address, re-reserving your own is a win), per network, released only by its holder',
      withCluster(async (h) => {
        const a = await h.join('host-a', '192.0.2.1');
        const b = await h.join('host-b', '192.0.2.2');
        await a.createNetwork(overlay('n1', 'one', 4096));
        await a.createNetwork(overlay('n2', 'two', 4097, '10.20.0.0/24'));
        await eventually(() => expect(b.network('one')?.id).toBe('n1'));
        await a.follow(['n1']);
        expect(await a.reserveAddress('n1', '10.10.0.5', 'ep1')).toEqual({ reserved: true });
        expect(await b.reserveAddress('n1', '10.10.0.5', 'ep2')).toEqual({ reserved: false, holder: 'ep1' });
        expect(await a.reserveAddress('n1', '10.10.0.5', 'ep1')).toEqual({ reserved: true });
        expect(await b.reserveAddress('n2', '10.10.0.5', 'ep2')).toEqual({ reserved: true });
        await b.releaseAddress('n1', '10.10.0.5', 'ep2'); // not the holder: a no-op
        expect(await b.reserveAddress('n1', '10.10.0.5', 'ep2')).toEqual({ reserved: false, holder: 'ep1' });
        await a.releaseAddress('n1', '10.10.0.5', 'ep1');
        expect(await b.reserveAddress('n1', '10.10.0.5', 'ep2')).toEqual({ reserved: true });
        await eventually(() => expect(a.addressHolder('n1', '10.10.0.5')).toBe('ep2'));
        // One address, one key: IPv6 spellings are canonical.
        expect(await a.reserveAddress('n1', 'fd00:0:0::5', 'ep1')).toEqual({ reserved: true });
        expect(await b.reserveAddress('n1', 'fd00::5', 'ep2')).toEqual({ reserved: false, holder: 'ep1' });
        // A holder's every address, freed at once (a failed allocation whose answer was lost) — only by its host.
        expect(await b.releaseHolder('n1', 'ep1')).toEqual([]);
        expect(await a.releaseHolder('n1', 'ep1')).toEqual(['fd00::5']);
        expect(await b.reserveAddress('n1', 'fd00::5', 'ep2')).toEqual({ reserved: true });
      }),
    );

    it(
      'of many hosts racing for one address exactly one wins and the others are told who holds it',
      withCluster(async (h) => {
        const hosts = await Promise.all([1, 2, 3, 4, 5].map((i) => h.join(`host-${i}`, `192.0.2.${i}`)));
        await hosts[0]!.createNetwork(overlay('n1', 'one', 4096));
        await eventually(() => hosts.forEach((c) => expect(c.network('n1')).toBeDefined()));
        for (let round = 0; round < 5; round++) {
          const address = `10.10.0.${100 + round}`;
          const results = await Promise.all(hosts.map((c, i) => c.reserveAddress('n1', address, `ep-${round}-${i}`)));
          const winners = results.flatMap((r, i) => (r.reserved ? [`ep-${round}-${i}`] : []));
          expect(winners).toHaveLength(1);
          for (const r of results) if (!r.reserved) expect(r.holder).toBe(winners[0]);
        }
      }),
    );

    it(
      'concurrent allocations on several hosts get unique addresses of the subnet (never the gateway)',
      withCluster(async (h) => {
        const hosts = await Promise.all([1, 2, 3].map((i) => h.join(`host-${i}`, `192.0.2.${i}`)));
        await hosts[0]!.createNetwork(overlay('n1', 'one', 4096, '10.30.0.0/26'));
        await eventually(() => hosts.forEach((c) => expect(c.network('n1')).toBeDefined()));
        await Promise.all(hosts.map((c) => c.follow(['n1'])));
        const got = await Promise.all(hosts.flatMap((c, i) => Array.from({ length: 20 }, (_, j) => c.allocateAddress('n1', `ep-${i}-${j}`))));
        expect(new Set(got).size).toBe(60);
        for (const a of got) {
          expect(a).toMatch(/^10\.30\.0\.(\d+)$/);
          const last = Number(a.split('.')[3]);
          expect(last).toBeGreaterThan(1);
          expect(last).toBeLessThan(63);
        }
        // The subnet has 61 usable addresses: one more fits, the next is refused with the network named.
        await hosts[0]!.allocateAddress('n1', 'ep-last');
        await expect(hosts[1]!.allocateAddress('n1', 'ep-none')).rejects.toThrow(/no available IPv4 address on network one/);
      }),
    );

    it(
      'IPv6 as IPv4: concurrent allocations on several hosts get unique addresses of the IPv6 subnet (never its gateway), one raced address goes to one host',
      withCluster(async (h) => {
        const hosts = await Promise.all([1, 2, 3].map((i) => h.join(`host-${i}`, `192.0.2.${i}`)));
        // A dual-stack network: each family allocates from its own subnet.
        await hosts[0]!.createNetwork({ ...overlay('n1', 'one', 4096), subnet6: 'fd00:30::/120', gateway6: 'fd00:30::1' });
        await eventually(() => hosts.forEach((c) => expect(c.network('n1')?.subnet6).toBe('fd00:30::/120')));
        await Promise.all(hosts.map((c) => c.follow(['n1'])));
        const winners = (await Promise.all(hosts.map((c, i) => c.reserveAddress('n1', 'fd00:30:0::ff', `race-${i}`)))).filter((r) => r.reserved);
        expect(winners).toHaveLength(1);
        const got = await Promise.all(hosts.flatMap((c, i) => Array.from({ length: 20 }, (_, j) => c.allocateAddress('n1', `ep-${i}-${j}`, 6))));
        expect(new Set(got).size).toBe(60);
        for (const a of got) {
          expect(a).toMatch(/^fd00:30::[0-9a-f]{1,2}$/);
          expect(['fd00:30::1', 'fd00:30::ff']).not.toContain(a);
        }
        expect(await hosts[0]!.allocateAddress('n1', 'ep-v4')).toMatch(/^10\.10\.0\.\d+$/);
      }),
    );

    it(
      'network ids, names and VNIs are unique in the cluster; a network with endpoints cannot be removed',
      withCluster(async (h) => {
        const a = await h.join('host-a', '192.0.2.1');
        const b = await h.join('host-b', '192.0.2.2');
        await a.createNetwork(overlay('n1', 'one', 4096));
        await expect(b.createNetwork(overlay('n1', 'other', 4100))).rejects.toThrow(ClusterConflict);
        await expect(b.createNetwork(overlay('n2', 'one', 4100))).rejects.toThrow(/name one already exists/);
        await expect(b.createNetwork(overlay('n2', 'two', 4096))).rejects.toThrow(/VXLAN id 4096 is already used by network one/);
        await eventually(() => expect(b.freeVni()).toBe(4097));
        await b.publishEndpoint({ networkId: 'n1', endpointId: 'e1', name: 'web', aliases: [], ipv4: '10.10.0.9', mac: '02:42:0a:0a:00:09' });
        await expect(a.deleteNetwork('n1')).rejects.toThrow(/network one has active endpoints/);
        await b.withdrawEndpoint('n1', 'e1');
        await a.deleteNetwork('n1');
        await a.deleteNetwork('n1'); // already gone: a no-op
        await eventually(() => expect(b.network('n1')).toBeUndefined());
        await b.createNetwork(overlay('n2', 'one', 4096)); // name and VNI free again
      }),
    );

    it(
      'an endpoint published on one host is seen by the others (remote to them, local to its own), with its VTEP; withdraw frees its address',
      withCluster(async (h) => {
        const a = await h.join('host-a', '192.0.2.1');
        const b = await h.join('host-b', '192.0.2.2');
        await a.createNetwork(overlay('n1', 'one', 4096));
        await eventually(() => expect(b.network('n1')).toBeDefined());
        await a.follow(['n1']);
        await b.follow(['n1']);
        const seen: ClusterEvent[] = [];
        const off = b.onChange((e) => seen.push(e));
        await a.publishEndpoint({ networkId: 'n1', endpointId: 'e1', name: 'web', aliases: ['www'], ipv4: '10.10.0.9', ipv6: 'fd00::9', mac: '02:42:0a:0a:00:09' });
        await eventually(() =>
          expect(b.remoteEndpoints('n1')).toEqual([
            { networkId: 'n1', endpointId: 'e1', name: 'web', aliases: ['www'], ipv4: '10.10.0.9', ipv6: 'fd00::9', mac: '02:42:0a:0a:00:09', hostId: 'host-a', hostAddress: '192.0.2.1' },
          ]),
        );
        expect(a.remoteEndpoints('n1')).toEqual([]);
        expect(a.endpoints('n1')).toHaveLength(1);
        expect(seen.some((e) => e.kind === 'endpoint-put' && e.endpoint.endpointId === 'e1')).toBe(true);
        expect(await b.reserveAddress('n1', '10.10.0.9', 'x')).toEqual({ reserved: false, holder: addressHolder('e1', 'host-a') });
        // Someone else's endpoint is not mine to withdraw.
        await expect(b.withdrawEndpoint('n1', 'e1')).rejects.toThrow(/belongs to host host-a/);
        await a.withdrawEndpoint('n1', 'e1');
        await eventually(() => expect(b.endpoints('n1')).toEqual([]));
        expect(seen.some((e) => e.kind === 'endpoint-delete' && e.endpointId === 'e1')).toBe(true);
        expect(await b.reserveAddress('n1', '10.10.0.9', 'x')).toEqual({ reserved: true });
        off();
        // An address held by another endpoint cannot be published.
        await expect(a.publishEndpoint({ networkId: 'n1', endpointId: 'e2', name: 'db', aliases: [], ipv4: '10.10.0.9', mac: '02:42:0a:0a:00:0a' })).rejects.toThrow(
          /10\.10\.0\.9 of endpoint db is held by x/,
        );
      }),
    );

    it(
      'reconcile makes the store hold exactly what the host says it has, and reports what another host took meanwhile',
      withCluster(async (h) => {
        const a = await h.join('host-a', '192.0.2.1');
        const b = await h.join('host-b', '192.0.2.2');
        await a.createNetwork(overlay('n1', 'one', 4096));
        await eventually(() => expect(b.network('n1')).toBeDefined());
        await b.follow(['n1']);
        const ep = (id: string, ip: string) => ({ networkId: 'n1', endpointId: id, name: id, aliases: [], ipv4: ip, mac: '02:42:0a:0a:00:01' });
        await a.publishEndpoint(ep('keep', '10.10.0.10'));
        await a.publishEndpoint(ep('stray', '10.10.0.11'));
        await a.reserveAddress('n1', '10.10.0.12', 'half-done');
        await b.reserveAddress('n1', '10.10.0.13', 'b-owns');
        const report = await a.reconcile({ endpoints: [ep('keep', '10.10.0.10'), ep('taken', '10.10.0.13')], reservations: [] });
        expect(report.republished).toEqual(['n1/keep']);
        expect(report.withdrawn.sort()).toEqual(['endpoints/n1/stray', 'reservations/n1/10.10.0.11', 'reservations/n1/10.10.0.12'].sort());
        expect(report.lost).toHaveLength(1);
        expect(report.lost[0]).toMatch(/^n1\/taken/);
        await eventually(() => expect(b.endpoints('n1').map((e) => e.endpointId)).toEqual(['keep']));
        expect(b.addressHolder('n1', '10.10.0.12')).toBeUndefined();
        expect(b.addressHolder('n1', '10.10.0.13')).toBe('b-owns');
      }),
    );

    it(
      'a host that leaves takes its endpoints and addresses along; the others keep theirs',
      withCluster(async (h) => {
        const a = await h.join('host-a', '192.0.2.1');
        const b = await h.join('host-b', '192.0.2.2');
        await a.createNetwork(overlay('n1', 'one', 4096));
        await eventually(() => expect(b.network('n1')).toBeDefined());
        await b.follow(['n1']);
        await a.publishEndpoint({ networkId: 'n1', endpointId: 'ea', name: 'a', aliases: [], ipv4: '10.10.0.20', mac: '02:42:0a:0a:00:14' });
        await b.publishEndpoint({ networkId: 'n1', endpointId: 'eb', name: 'b', aliases: [], ipv4: '10.10.0.21', mac: '02:42:0a:0a:00:15' });
        await eventually(() => expect(b.hosts().map((x) => x.hostId).sort()).toEqual(['host-a', 'host-b']));
        await a.close();
        await eventually(() => {
          expect(b.hosts().map((x) => x.hostId)).toEqual(['host-b']);
          expect(b.endpoints('n1').map((e) => e.endpointId)).toEqual(['eb']);
          expect(b.addressHolder('n1', '10.10.0.20')).toBeUndefined();
        });
        expect(b.network('n1')).toBeDefined(); // networks outlive hosts
        await expect(a.reserveAddress('n1', '10.10.0.30', 'late')).rejects.toThrow(/left the cluster/);
      }),
    );

    it(
      'a host follows only the networks it names: following one lists what it holds (as endpoint-put), changes of the others do not reach it, leaving it drops its endpoints (as endpoint-delete)',
      withCluster(async (h) => {
        const a = await h.join('host-a', '192.0.2.1');
        const b = await h.join('host-b', '192.0.2.2');
        await a.createNetwork(overlay('n1', 'one', 4096));
        await a.createNetwork(overlay('n2', 'two', 4097, '10.20.0.0/24'));
        await eventually(() => expect(b.networks().map((n) => n.id).sort()).toEqual(['n1', 'n2']));
        const ep = (net: string, id: string, ip: string) => ({ networkId: net, endpointId: id, name: id, aliases: [], ipv4: ip, mac: '02:42:0a:0a:00:01' });
        await a.publishEndpoint(ep('n1', 'before', '10.10.0.10'));
        const seen: ClusterEvent[] = [];
        const off = b.onChange((e) => seen.push(e));
        // Not followed: nothing cached, nothing reported; the store itself still answers.
        expect(b.following('n1')).toBe(false);
        expect(b.endpoints('n1')).toEqual([]);
        expect((await b.readEndpoints('n1')).map((e) => e.endpointId)).toEqual(['before']);
        await b.follow(['n1']);
        expect(b.following('n1')).toBe(true);
        expect(b.endpoints('n1').map((e) => e.endpointId)).toEqual(['before']);
        expect(b.addressHolder('n1', '10.10.0.10')).toBe(addressHolder('before', 'host-a'));
        expect(seen.filter((e) => e.kind === 'endpoint-put').map((e) => e.kind === 'endpoint-put' && e.endpoint.endpointId)).toEqual(['before']);
        await a.publishEndpoint(ep('n1', 'after', '10.10.0.11'));
        await a.publishEndpoint(ep('n2', 'elsewhere', '10.20.0.11'));
        await eventually(() => expect(b.endpoints('n1').map((e) => e.endpointId).sort()).toEqual(['after', 'before']));
        await a.publishEndpoint(ep('n1', 'marker', '10.10.0.12'));
        await eventually(() => expect(b.endpoints('n1')).toHaveLength(3));
        // n2's endpoint was published before the marker: had it been delivered, it would be here by now.
        expect(b.endpoints('n2')).toEqual([]);
        expect(b.addressHolder('n2', '10.20.0.11')).toBeUndefined();
        expect(seen.some((e) => e.kind === 'endpoint-put' && e.endpoint.networkId === 'n2')).toBe(false);
        // Following the other one instead: n1 is dropped with a delete per endpoint, n2 listed.
        await b.follow(['n2']);
        expect(b.following('n1')).toBe(false);
        expect(b.endpoints('n1')).toEqual([]);
        expect(b.addressHolder('n1', '10.10.0.10')).toBeUndefined();
        expect(seen.filter((e) => e.kind === 'endpoint-delete').map((e) => e.kind === 'endpoint-delete' && e.endpointId).sort()).toEqual(['after', 'before', 'marker']);
        expect(b.endpoints('n2').map((e) => e.endpointId)).toEqual(['elsewhere']);
        await a.withdrawEndpoint('n2', 'elsewhere');
        await eventually(() => expect(b.endpoints('n2')).toEqual([]));
        off();
      }),
    );
  });
}

