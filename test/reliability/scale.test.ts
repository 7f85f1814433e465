// Scale: many sandboxes on one network of one host (1,000 with BPFNET_RELIABILITY_FULL=1, under
// the Linux bridge's 1,024 ports; 64 in the quick form of `npm test`, since one creation costs
// ~0.1-1 s on this shared 2-vCPU machine), on both datapaths: every address distinct, sampled
// pairs reachable by real traffic (ping, and TCP to an echo server), outbound masquerade works
// from sampled sandboxes, then all removed leaving nothing (namespaces, links, map entries,
// rules, IPAM, processes). Creation and removal rates are printed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { listNetns, netns } from '../../src/system/ip.js';
import { api } from '../support/api.js';
import { leakReport } from '../support/leak-check.js';
import { echoServer, peerIp, ping, probe } from '../support/traffic.js';

const FULL = process.env.BPFNET_RELIABILITY_FULL === '1';
const COUNT = FULL ? 1000 : 64;
const SAMPLES = FULL ? 20 : 8;
const SEED = Number(process.env.BPFNET_RELIABILITY_SEED ?? Date.now() % 2 ** 31);
const CONCURRENCY = 8;

/** Runs fn over items with at most `limit` in flight. */
async function pool<T, R>(items: readonly T[], limit: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

for (const datapath of ['ebpf', 'iptables'] as const) {
  describe(`${COUNT} sandboxes on one network, ${datapath} datapath`, () => {
    let lab: Lab;
    let d: LabDaemon;
    let seed = SEED + (datapath === 'ebpf' ? 0 : 1);
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) / 2 ** 24;
    const names = Array.from({ length: COUNT }, (_, i) => `m${i}`);

    beforeAll(async () => {
      console.log(`[scale] ${datapath}: ${COUNT} sandboxes, seed ${seed} (BPFNET_RELIABILITY_SEED=${SEED})`);
      lab = await Lab.create();
      d = await LabDaemon.start(lab, { datapath });
      await echoServer(lab, lab.external, 'tcp', 7000);
    });

    afterAll(async () => {
      await lab?.destroy();
    });

    it(`creates ${COUNT}, all with distinct addresses, sampled pairs reachable, then removes them leaving nothing`, async () => {
      expect((await api(d.socket, 'POST', '/networks/create', { Name: 'big', IPAM: { Config: [{ Subnet: '10.200.0.0/21' }] } })).status).toBe(201);
      let t0 = Date.now();
      const created = await pool(names, CONCURRENCY, (name) => api(d.socket, 'POST', '/sandboxes/create', { Name: name, Network: 'big' }));
      const createSeconds = (Date.now() - t0) / 1000;
      expect(created.filter((r) => r.status !== 201).map((r) => `${r.status} ${r.json?.message}`)).toEqual([]);

      const inspect = (await api(d.socket, 'GET', '/networks/big')).json;
      const addrs = Object.values(inspect.Containers as Record<string, { Name: string; IPv4Address: string }>);
      expect(addrs).toHaveLength(COUNT);
      expect(new Set(addrs.map((c) => c.IPv4Address)).size).toBe(COUNT);
      const ipOf = new Map(addrs.map((c) => [c.Name, c.IPv4Address.split('/')[0]]));
      const nsOf = async (name: string) => netns((await api(d.socket, 'GET', `/sandboxes/${name}`)).json.NetworkSettings.SandboxKey.slice('/run/netns/'.length));

      // Sampled pairs by real traffic: ICMP both ways, and TCP from one to an echo server in the other.
      for (let s = 0; s < SAMPLES; s++) {
        const a = names[Math.floor(random() * COUNT)];
        let b = names[Math.floor(random() * COUNT)];
        if (b === a) b = names[(names.indexOf(a) + 1) % COUNT];
        const [nsA, nsB] = [await nsOf(a), await nsOf(b)];
        expect({ a, b, ab: await ping(lab, nsA, ipOf.get(b)!), ba: await ping(lab, nsB, ipOf.get(a)!) }).toEqual({ a, b, ab: true, ba: true });
        const server = await echoServer(lab, nsB, 'tcp', 7100 + s);
        expect(await probe(lab, nsA, 'tcp', ipOf.get(b)!, 7100 + s, 3000, 44000 + s)).toBe(`${ipOf.get(a)}:${44000 + s}`);
        server.kill('SIGKILL');
        expect(peerIp(await probe(lab, nsA, 'tcp', UPLINK.externalAddress, 7000, 3000))).toBe(UPLINK.hostAddress);
      }

      t0 = Date.now();
      const removed = await pool(names, CONCURRENCY, (name) => api(d.socket, 'DELETE', `/sandboxes/${name}?force=1`));
      const removeSeconds = (Date.now() - t0) / 1000;
      expect(removed.filter((r) => r.status !== 204).map((r) => `${r.status} ${r.json?.message}`)).toEqual([]);
      expect((await api(d.socket, 'DELETE', '/networks/big')).status).toBe(204);
      expect((await listNetns()).filter((n) => n.startsWith(`${d.instance}-`))).toEqual([]);
      expect(await leakReport(lab, d)).toEqual([]);
      console.log(
        `[scale] ${datapath}: created ${COUNT} in ${createSeconds.toFixed(1)} s (${(COUNT / createSeconds).toFixed(1)}/s), removed in ${removeSeconds.toFixed(1)} s (${(COUNT / removeSeconds).toFixed(1)}/s), ${SAMPLES} sampled pairs reachable (shared, loaded machine: rates are noisy)`,
      );
    }, (FULL ? 40 : 8) * 60_000);
  });
}
