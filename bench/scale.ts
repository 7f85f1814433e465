/**
 * node dist/bench/scale.js [--count N] [--rounds N] [--driver overlay]   (or npm run bench -- --scale [--scale-count N])
 * BPFNET_LAB_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles the daemon (written at its clean stop).
 *
 * Many sandboxes on one bridge network of the eBPF datapath (issue 15: "4,000 sandboxes on one
 * network"; a Linux bridge takes 1,024 ports, so Docker stops near 1,023; `--driver overlay`: the
 * same on an overlay network of one host, whose local half is no bridge's ports either). One lab, one daemon:
 * two sandboxes first (an HTTP server and a wrk client), same-network keep-alive req/s measured
 * with only them present, then the others created one at a time through the API without a
 * process (each creation's latency: a namespace, a veth, the endpoint in the maps, the join), and at the
 * end the same req/s again (each once the machine is quiet), the daemon's RSS per sandbox, and the latency of `network inspect`
 * (GET /networks/ID) and `ps` (GET /sandboxes) with all of them present.
 * Sequential on purpose: a creation's latency is the API's, not a queue's. The machine is
 * shared: read ratios and orders of magnitude, not the absolute numbers.
 */
import { readFileSync } from 'node:fs';
import { Lab } from '../src/lab/lab.js';
import { LabDaemon } from '../src/lab/daemon.js';
import { netns, type Netns } from '../src/system/ip.js';
import { bridgeName } from '../src/networks/config.js';
import { linkPrefixFor } from '../src/daemon/options.js';
import { callApi, mustCall } from './setups/engine-api.js';
import { HTTPD, SERVER_PORTS, tuneClient, waitListening } from './setups/servers.js';
import { percentile, median } from './stats.js';
import { execTimed } from './clients/timed.js';
import { WRK_KEEPALIVE_CONNECTIONS, WRK_REPORT_SCRIPT, parseWrkReport } from './workloads/wrk.js';

export interface ScaleResults {
  count: number;
  /** The network's driver (bridge unless asked). */
  driver?: 'bridge' | 'overlay';
  /** Creation latency (ms) of every sandbox after the first two, in order. */
  createMs: number[];
  createP50Ms: number;
  createP99Ms: number;
  first100P50Ms: number;
  last100P50Ms: number;
  /** Same-network keep-alive req/s (wrk, medians of `rounds`) with 2 sandboxes and with `count`. */
  rpsWith2: number;
  rpsWithAll: number;
  /** How long the machine took to become quiet before each req/s measure (with 2, with all). */
  settleSeconds?: [number, number];
  rssBeforeMiB: number;
  rssAfterMiB: number;
  rssPerSandboxKiB: number;
  inspectP50Ms: number;
  psP50Ms: number;
  bridgePorts: number;
  seconds: number;
}

const SUBNET = '10.128.0.0/19'; // 8,190 addresses: room for 4,000 and more

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Busy and total jiffies of the whole machine (/proc/stat's first line). */
function cpuJiffies(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * Waits until the machine is quiet (under 15 % busy over two 1-second windows in a row, at most
 * maxSeconds): right after thousands of creations the kernel still runs each new link's
 * IPv6 start-up and the daemon its last syncs, which a throughput sample must not share the
 * CPUs with. Resolves with the seconds it waited.
 */
async function settle(maxSeconds: number): Promise<number> {
  const t0 = Date.now();
  let quiet = 0;
  while (quiet < 2 && Date.now() - t0 < maxSeconds * 1000) {
    const a = cpuJiffies();
    await new Promise((r) => setTimeout(r, 1000));
    const b = cpuJiffies();
    quiet = (b.busy - a.busy) / Math.max(1, b.total - a.total) < 0.15 ? quiet + 1 : 0;
  }
  return (Date.now() - t0) / 1000;
}

async function timed<T>(fn: () => Promise<T>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function nsOf(socket: string, name: string): Promise<Netns> {
  const sb = await mustCall(socket, 'GET', `/sandboxes/${name}`);
  return netns(String(sb.NetworkSettings.SandboxKey).slice('/run/netns/'.length));
}

async function keepAliveRps(lab: Lab, client: Netns, url: string, rounds: number, seconds: number): Promise<number> {
  const args = ['-t', '1', '-c', String(WRK_KEEPALIVE_CONNECTIONS), '--timeout', '2s', '-s', WRK_REPORT_SCRIPT, '-d', `${seconds}s`, url];
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const r = parseWrkReport((await execTimed(lab, client, 'wrk', args, (seconds + 30) * 1000)).stdout);
    const errors = r.connectErrors + r.readErrors + r.writeErrors + r.timeouts + r.non2xx;
    if (errors > 0) throw new Error(`wrk to ${url}: ${errors} errors or non-2xx responses: the sample is not counted`);
    out.push(r.requests / (r.durationUs / 1e6));
  }
  return median(out);
}

export async function runScaleBenchmark(opts: { count: number; rounds: number; seconds?: number; driver?: 'bridge' | 'overlay'; onProgress?: (what: string) => void }): Promise<ScaleResults> {
  const started = Date.now();
  const say = opts.onProgress ?? (() => undefined);
  const seconds = opts.seconds ?? 3;
  const lab = await Lab.create();
  try {
    const d = await LabDaemon.start(lab, { datapath: 'ebpf' });
    const socket = d.socket;
    const driver = opts.driver ?? 'bridge';
    const net = await mustCall(socket, 'POST', '/networks/create', { Name: 'scale', Driver: driver, Attachable: true, IPAM: { Config: [{ Subnet: SUBNET }] } });
    const netId = String(net.Id);
    await mustCall(socket, 'POST', '/sandboxes/create', { Name: 'srv', Network: 'scale', Cmd: [HTTPD, String(SERVER_PORTS.http)] });
    await mustCall(socket, 'POST', '/sandboxes/create', { Name: 'cli', Network: 'scale' });
    const srv = await mustCall(socket, 'GET', '/sandboxes/srv');
    const srvIp = String(Object.values(srv.NetworkSettings.Networks as Record<string, { IPAddress: string }>)[0].IPAddress);
    const client = await nsOf(socket, 'cli');
    await tuneClient(client);
    await waitListening(lab, await nsOf(socket, 'srv'), [SERVER_PORTS.http]);
    const url = `http://${srvIp}:${SERVER_PORTS.http}/`;
    say('keep-alive req/s with 2 sandboxes');
    const settleWith2S = await settle(60);
    const rpsWith2 = await keepAliveRps(lab, client, url, opts.rounds, seconds);
    const pid = d.pid!;
    const rssBeforeMiB = rssMiB(pid);

    const createMs: number[] = [];
    for (let i = 0; i < opts.count - 2; i++) {
      // Start: false — no process in it: what is timed is the namespace and the attachment.
      const ms = await timed(async () => {
        const r = await callApi(socket, 'POST', '/sandboxes/create', { Name: `s${i}`, Network: 'scale', Start: false });
        if (r.status !== 201) throw new Error(`creating sandbox s${i} (${i + 3} on the network): ${r.status} ${JSON.stringify(r.body)}`);
      });
      createMs.push(ms);
      if ((i + 3) % 250 === 0) say(`${i + 3} sandboxes (last p50 ${median(createMs.slice(-250)).toFixed(1)} ms)`);
    }
    const rssAfterMiB = rssMiB(pid);
    say(`keep-alive req/s with ${opts.count} sandboxes`);
    const settleWithAllS = await settle(120);
    const rpsWithAll = await keepAliveRps(lab, client, url, opts.rounds, seconds);
    const inspect: number[] = [];
    const ps: number[] = [];
    for (let i = 0; i < 10; i++) {
      inspect.push(await timed(() => mustCall(socket, 'GET', `/networks/${netId}`)));
      ps.push(await timed(() => mustCall(socket, 'GET', '/sandboxes')));
    }
    const ports = JSON.parse((await lab.exec(lab.host, 'bridge', ['-j', 'link', 'show'])) || '[]') as Array<{ master?: string }>;
    const bridge = bridgeName({ linkPrefix: linkPrefixFor(d.instance) }, netId);
    const bridgePorts = ports.filter((p) => p.master === bridge).length;
    const n = Math.min(100, createMs.length);
    // A clean stop (SIGTERM), so a daemon run with NODE_OPTIONS=--cpu-prof writes its profile.
    await d.stop();
    return {
      count: opts.count,
      createMs,
      createP50Ms: median(createMs),
      createP99Ms: percentile(createMs, 99),
      first100P50Ms: median(createMs.slice(0, n)),
      last100P50Ms: median(createMs.slice(-n)),
      rpsWith2,
      rpsWithAll,
      settleSeconds: [settleWith2S, settleWithAllS],
      rssBeforeMiB,
      rssAfterMiB,
      rssPerSandboxKiB: ((rssAfterMiB - rssBeforeMiB) * 1024) / Math.max(1, opts.count - 2),
      inspectP50Ms: median(inspect),
      psP50Ms: median(ps),
      bridgePorts,
      driver,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await lab.destroy();
  }
}

/** The results as the README's rows. */
export function scaleTable(r: ScaleResults): string {
  const f = (x: number, digits = 1) => x.toFixed(digits);
  return [
    `| ${r.count} sandboxes on one ${r.driver ?? "bridge"} network (eBPF datapath) | measured |`,
    '| --- | --- |',
    `| create (attach) through the API, p50 / p99 | ${f(r.createP50Ms)} ms / ${f(r.createP99Ms)} ms |`,
    `| first 100 vs last 100, p50 | ${f(r.first100P50Ms)} ms vs ${f(r.last100P50Ms)} ms (${f(r.last100P50Ms / r.first100P50Ms, 2)}x) |`,
    `| same-network keep-alive req/s, ${r.count} present vs 2 | ${f(r.rpsWithAll, 0)} vs ${f(r.rpsWith2, 0)} (${f(r.rpsWithAll / r.rpsWith2, 2)}x)${r.settleSeconds ? `, each after the machine was quiet (waited ${f(r.settleSeconds[1], 0)} s after the last create)` : ''} |`,
    `| daemon RSS per sandbox | ${f(r.rssPerSandboxKiB)} KiB (${f(r.rssBeforeMiB)} -> ${f(r.rssAfterMiB)} MiB) |`,
    `| network inspect / ps at ${r.count}, p50 (API) | ${f(r.inspectP50Ms)} ms / ${f(r.psP50Ms)} ms |`,
    `| bridge ports | ${r.bridgePorts} |`,
    `| run time | ${f(r.seconds, 0)} s |`,
  ].join('\n');
}

const entry = process.argv[1] ?? '';
if (entry.endsWith('/bench/scale.js')) {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const driver = process.argv.includes('--driver') ? process.argv[process.argv.indexOf('--driver') + 1] : 'bridge';
  if (driver !== 'bridge' && driver !== 'overlay') throw new Error(`--driver ${driver}: bridge or overlay`);
  runScaleBenchmark({ count: arg('--count', 4000), rounds: arg('--rounds', 3), driver, onProgress: (w) => process.stderr.write(`[scale] ${w}\n`) })
    .then((r) => {
      process.stdout.write(`${scaleTable(r)}\n`);
      process.stdout.write(`${JSON.stringify({ ...r, createMs: undefined })}\n`);
    })
    .catch((err) => {
      process.stderr.write(`${(err as Error).stack ?? err}\n`);
      process.exit(1);
    });
}
