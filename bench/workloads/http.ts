/**
 * HTTP through a path: keep-alive with autocannon (50 connections, in-process runner in the
 * client namespace), and one connection per request with connrate's http mode (autocannon
 * 9.0.0's --reconnectRate 1 resets the connection before counting the response, so it reports
 * nothing). The server is the same C responder everywhere.
 */
import { join } from 'node:path';
import type { Lab } from '../../src/lab/lab.js';
import { projectRoot } from '../../src/paths.js';
import { cpuPerUnit } from '../stats.js';
import { hostPort, type PathKind, type Target } from '../setups/setup.js';
import { CONNRATE } from '../setups/servers.js';
import { execTimed } from '../clients/timed.js';
import { cpuSeconds, type Durations, type Sample, type Workload } from './workload.js';

const RUNNER = join(projectRoot, 'dist', 'bench', 'clients', 'autocannon-runner.js');
export const KEEPALIVE_CONNECTIONS = 50;
export const CONNRATE_CONCURRENCY = 32;

interface RunnerOutput {
  requests: number;
  rps: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  seconds: number;
  /** The runner's own CPU-seconds (user + system) over the measured run. */
  clientCpuSeconds: number;
  cpu: { busyTicks: number; totalTicks: number; hz: number };
}

export interface ConnrateOutput {
  mode: string;
  connections: number;
  errors: number;
  rate: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  cpu: { busyTicks: number; totalTicks: number; hz: number };
  /** Added here: the client's CPU share (% of one CPU). */
  clientCpuPct?: number;
}

const latencyMetrics = [
  { key: 'p50Us', label: 'p50 µs', unit: 'µs', better: 'lower' as const },
  { key: 'p99Us', label: 'p99 µs', unit: 'µs', better: 'lower' as const },
];

async function keepAlive(lab: Lab, target: Target, d: Durations): Promise<Sample> {
  const opts = { url: `http://${hostPort(target.address, target.httpPort)}/`, connections: KEEPALIVE_CONNECTIONS, seconds: d.http, warmupSeconds: d.httpWarmup };
  const out = await lab.exec(target.client, process.execPath, [RUNNER, JSON.stringify(opts)], { timeoutMs: (d.http + d.httpWarmup + 30) * 1000 });
  const r = JSON.parse(out) as RunnerOutput;
  if (r.requests === 0) throw new Error(`autocannon to ${opts.url} from ${target.client.name}: no responses (errors ${r.errors}, timeouts ${r.timeouts})`);
  return {
    metrics: {
      rps: r.rps,
      p50Us: r.p50Us,
      p99Us: r.p99Us,
      cpuPer1k: cpuPerUnit(cpuSeconds(r.cpu), r.requests / 1000),
      clientCpuPct: (100 * r.clientCpuSeconds) / r.seconds,
      errors: r.errors + r.timeouts,
      non2xx: r.non2xx,
    },
    raw: r,
  };
}

/** Runs connrate in the target's client namespace. */
export async function connrate(lab: Lab, target: Target, port: number, mode: 'http' | 'connect', d: Durations): Promise<ConnrateOutput> {
  const args = ['-a', target.address, '-p', String(port), '-c', String(CONNRATE_CONCURRENCY), '-d', String(d.conn), '-w', String(d.connWarmup), '-m', mode];
  const out = await execTimed(lab, target.client, CONNRATE, args, (d.conn + d.connWarmup + 30) * 1000);
  const r = JSON.parse(out.stdout) as ConnrateOutput;
  // Its warm-up runs the same load, so CPU over the whole run is the share during the measured part.
  r.clientCpuPct = (100 * out.cpuSeconds) / (d.conn + d.connWarmup);
  if (r.connections === 0) throw new Error(`connrate ${args.join(' ')} from ${target.client.name}: no connection completed (${r.errors} errors)`);
  return r;
}

export function connrateSample(r: ConnrateOutput): Sample {
  return {
    metrics: { rps: r.rate, p50Us: r.p50Us, p99Us: r.p99Us, cpuPer1k: cpuPerUnit(cpuSeconds(r.cpu), r.connections / 1000), clientCpuPct: r.clientCpuPct ?? NaN, errors: r.errors },
    raw: r,
  };
}

/** Keep-alive with autocannon, a cross-check of wrk's keep-alive row. */
export function keepAliveWorkload(path: PathKind, title: string, quick: boolean): Workload {
  return {
    id: `http-keepalive-${path}-autocannon`,
    title,
    path,
    quick,
    client: 'autocannon',
    crossCheckOf: `http-keepalive-${path}`,
    metrics: [
      { key: 'rps', label: 'req/s', unit: 'req/s', better: 'higher' },
      ...latencyMetrics,
      { key: 'cpuPer1k', label: 'CPU-s/1k req', unit: 'CPU-s', better: 'lower' },
      { key: 'clientCpuPct', label: 'client CPU %', unit: '%', better: 'lower' },
    ],
    estimate: (d) => d.http + d.httpWarmup + 0.5,
    run: keepAlive,
  };
}

/** One connection per request with connrate's http mode, a cross-check of wrk's Connection: close row. */
export function connPerRequestWorkload(path: PathKind, title: string, quick: boolean): Workload {
  return {
    id: `http-close-${path}-connrate`,
    title,
    path,
    quick,
    client: 'connrate',
    crossCheckOf: `http-close-${path}`,
    metrics: [
      { key: 'rps', label: 'req/s', unit: 'req/s', better: 'higher' },
      ...latencyMetrics,
      { key: 'cpuPer1k', label: 'CPU-s/1k req', unit: 'CPU-s', better: 'lower' },
      { key: 'clientCpuPct', label: 'client CPU %', unit: '%', better: 'lower' },
    ],
    estimate: (d) => d.conn + d.connWarmup + 0.1,
    run: async (lab, target, d) => connrateSample(await connrate(lab, target, target.httpPort, 'http', d)),
  };
}

export function newConnectionsWorkload(path: PathKind, title: string, quick: boolean): Workload {
  return {
    id: `conn-${path}`,
    title,
    path,
    quick,
    client: 'connrate',
    metrics: [
      { key: 'rps', label: 'conn/s', unit: 'conn/s', better: 'higher' },
      { key: 'p50Us', label: 'p50 µs', unit: 'µs', better: 'lower' },
      { key: 'p99Us', label: 'p99 µs', unit: 'µs', better: 'lower' },
      { key: 'cpuPer1k', label: 'CPU-s/1k conn', unit: 'CPU-s', better: 'lower' },
      { key: 'clientCpuPct', label: 'client CPU %', unit: '%', better: 'lower' },
    ],
    estimate: (d) => d.conn + d.connWarmup + 0.1,
    run: async (lab, target, d) => connrateSample(await connrate(lab, target, target.httpPort, 'connect', d)),
  };
}
