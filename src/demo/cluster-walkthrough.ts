/**
 * The five-host demo's body, apart from its process handling so a test can run it: in a
 * ClusterLab (five host namespaces on one underlay, one real etcd, a daemon per host joined to
 * it), one overlay network created on h1 and built by every host, sandboxes spread over the
 * hosts reaching each other by address and by name, a second overlay network isolated from the
 * first, and the measured time for a new sandbox to be reachable from every other host.
 */
import type { ClusterHost, ClusterLab } from '../lab/cluster-lab.js';
import { apiCall, freeAddresses, percentile, timeToReach, tuneProber, type ReachSample } from '../lab/overlay-reach.js';
import { netns, type Netns } from '../system/ip.js';
import { commandEcho, type Say } from './terminal.js';

export const DEMO_NETS = { app: { name: 'app-net', subnet: '10.70.0.0/24' }, other: { name: 'other-net', subnet: '10.71.0.0/24' } } as const;
/** Sandbox -> host index on app-net. */
const PLAN = { web: 1, api: 2, db: 3, cache: 4, worker: 5 } as const;

/** What a run showed, for a test to check (the demo prints it). */
export interface ClusterDemoResult {
  /** "from -> to (how)": reachable or not. */
  reach: Record<string, boolean>;
  /** name -> addresses the embedded DNS gave web (on h1). */
  names: Record<string, string[]>;
  reachSamples: ReachSample[];
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function sandboxNs(h: ClusterHost, name: string): Promise<Netns> {
  const key: string = JSON.parse(await h.daemon!.bpfnet('inspect', name))[0].NetworkSettings.SandboxKey;
  return netns(key.slice('/run/netns/'.length));
}

export async function clusterWalkthrough(cl: ClusterLab, say: Say, opts: { reachSamples?: number } = {}): Promise<ClusterDemoResult> {
  const host = (i: number) => cl.hosts[i - 1]!;
  const on = (i: number) => commandEcho(host(i).daemon!, (l) => say(l === undefined ? l : l.replace(/^\$ bpfnet/, `h${i}$ bpfnet`)), '  ');
  const result: ClusterDemoResult = { reach: {}, names: {}, reachSamples: [] };

  say('== 1. Five hosts, one etcd ==');
  for (const h of cl.hosts) say(`  h${h.index}: namespace ${h.ns.name}, underlay ${h.address} (its VTEP), daemon --cluster-store ${cl.etcd.storeUrl} --advertise-addr ${h.address}`);
  const joined = async (h: ClusterHost) => (JSON.parse((await apiCall(h.daemon!.socket, 'GET', '/cluster')).text) as { Joined?: boolean }).Joined === true;
  await Promise.all(cl.hosts.map((h) => until(`h${h.index} joined the cluster`, () => joined(h))));
  say(`  every daemon has joined (GET /cluster on each: Joined true); etcd holds one lease per host`);

  say('\n== 2. An overlay network, created once, built by every host ==');
  await on(1)('network', 'create', '-d', 'overlay', '--attachable', '--subnet', DEMO_NETS.app.subnet, DEMO_NETS.app.name);
  const t0 = Date.now();
  const id = await until('app-net on every host', async () => {
    // Asked on each host's API directly: a CLI process per poll would be most of what is timed.
    const ids = await Promise.all(cl.hosts.map((h) => apiCall(h.daemon!.socket, 'GET', `/networks/${DEMO_NETS.app.name}`).then((r) => (r.status === 200 ? (JSON.parse(r.text) as { Id: string }).Id : ''))));
    return ids.every((x) => x !== '' && x === ids[0]) ? ids[0] : undefined;
  });
  say(`  every host has it (id ${id.slice(0, 12)}) ${Date.now() - t0} ms after the create answered, built from etcd's watch:`);
  await on(4)('network', 'inspect', '-f', '{{.Scope}} {{.Driver}} {{json .IPAM.Config}} {{json .Options}}', DEMO_NETS.app.name);

  say('\n== 3. Sandboxes spread over the hosts (addresses reserved in etcd by compare-and-swap) ==');
  for (const [name, i] of Object.entries(PLAN)) await on(i)('run', '-d', '--name', name, '--network', DEMO_NETS.app.name, ...(name === 'db' ? ['--network-alias', 'database'] : []));
  const ip: Record<string, string> = {};
  for (const [name, i] of Object.entries(PLAN)) ip[name] = JSON.parse(await host(i).daemon!.bpfnet('inspect', name))[0].NetworkSettings.Networks[DEMO_NETS.app.name].IPAddress;
  say(`  ${Object.entries(PLAN).map(([n, i]) => `${n} on h${i} = ${ip[n]}`).join(', ')}`);

  say('\n== 4. Across hosts, by address and by name (VXLAN from the eBPF datapath; names from the embedded DNS of each host) ==');
  const ping = async (i: number, from: string, target: string, label: string, tries = 5) => {
    // Names may need the watch to have delivered the endpoint: a few tries, as a user would retry.
    let ok = false;
    for (let k = 0; k < tries && !ok; k++) ok = (await host(i).daemon!.cli(['exec', from, 'ping', '-c', '1', '-W', '1', '-q', target])).code === 0;
    result.reach[`${from} -> ${label}`] = ok;
    say(`  h${i} ${from.padEnd(6)} -> ${label.padEnd(28)} ${ok ? 'reachable' : 'unreachable'}`);
  };
  await ping(1, 'web', ip.db!, `db ${ip.db} (h3)`);
  await ping(1, 'web', 'db', 'db by name (h3)');
  await ping(2, 'api', 'database', 'alias "database" (h3)');
  await ping(5, 'worker', 'cache', 'cache by name (h4)');
  await ping(4, 'cache', 'web', 'web by name (h1)');
  await on(1)('exec', 'web', 'getent', 'hosts', 'worker');
  for (const name of ['api', 'db', 'database', 'cache', 'worker']) {
    const r = await host(1).daemon!.cli(['exec', 'web', 'getent', 'hosts', name]);
    result.names[name] = r.code === 0 ? r.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]!) : [];
  }

  say('\n== 5. A second overlay network is isolated from the first ==');
  await on(2)('network', 'create', '-d', 'overlay', '--subnet', DEMO_NETS.other.subnet, DEMO_NETS.other.name);
  await until('other-net on h5', async () => (await host(5).daemon!.cli(['network', 'inspect', DEMO_NETS.other.name])).code === 0);
  await on(5)('run', '-d', '--name', 'intruder', '--network', DEMO_NETS.other.name);
  await ping(5, 'intruder', ip.db!, `db ${ip.db} (h3, app-net)`, 2);
  await ping(5, 'intruder', 'db', 'db by name', 2);
  say('  (dropped by the eBPF datapath as isolation; the name is not served to another network)');

  const n = opts.reachSamples ?? 20;
  say(`\n== 6. Measured: a new sandbox reachable from every other host (${n} sandboxes, by traffic) ==`);
  say('  Before each `run`, a sandbox on every other host pings the address the new one will get (every 2 ms);');
  say('  the time is its first echo reply minus the moment the run answered, the slowest of the four hosts.');
  const probers = await Promise.all(Object.entries(PLAN).map(async ([name, i]) => ({ host: host(i), ns: await sandboxNs(host(i), name) })));
  for (const p of probers) await tuneProber(cl, p.ns);
  // --ip: the probers must know the address first; free ones, as the cluster allocated the others anywhere in the subnet.
  const free = await freeAddresses(host(1), DEMO_NETS.app.name, Array.from({ length: 200 }, (_, k) => `10.70.0.${50 + k}`));
  for (let k = 0; k < n; k++) {
    const i = (k % 5) + 1;
    const s = await timeToReach(cl, { network: DEMO_NETS.app.name, on: host(i), name: `new${k}`, address: free[k]!, probers: probers.filter((p) => p.host.index !== i) });
    result.reachSamples.push(s);
  }
  const every = result.reachSamples.map((s) => s.everyHostMs);
  const create = result.reachSamples.map((s) => s.createMs);
  const f = (x: number) => `${x.toFixed(1)} ms`;
  say(`  run answered after: p50 ${f(percentile(create, 50))}, p99 ${f(percentile(create, 99))}`);
  say(`  then reachable from every other host: p50 ${f(percentile(every, 50))}, p99 ${f(percentile(every, 99))}, max ${f(Math.max(...every))}`);
  const slow = result.reachSamples.filter((s) => s.everyHostMs > 200);
  if (slow.length) say(`  slower than 200 ms: ${slow.map((s) => `${s.name} (${Object.entries(s.perHostMs).map(([h, ms]) => `h${h} ${ms.toFixed(0)}`).join(', ')} ms)`).join('; ')}`);
  return result;
}
