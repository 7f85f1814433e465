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
import type { PathKind, Target } from '../setups/setup.js';
import { CONNRATE } from '../setups/servers.js';
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
}

const latencyMetrics = [
  { key: 'p50Us', label: 'p50 µs', unit: 'µs', better: 'lower' as const },
  { key: 'p99Us', label: 'p99 µs', unit: 'µs', better: 'lower' as const },
];

async function keepAlive(lab: Lab, target: Target, d: Durations): Promise<Sample> {
  const opts = { url: `http://${target.address}:${target.httpPort}/`, connections: KEEPALIVE_CONNECTIONS, seconds: d.http, warmupSeconds: d.httpWarmup };
  const out = await lab.exec(target.client, process.execPath, [RUNNER, JSON.stringify(opts)], { timeoutMs: (d.http + d.httpWarmup + 30) * 1000 });
  const r = JSON.parse(out) as RunnerOutput;
  if (r.requests === 0) throw new Error(`autocannon to ${opts.url} from ${target.client.name}: no responses (errors ${r.errors}, timeouts ${r.timeouts})`);
  return {
    metrics: { rps: r.rps, p50Us: r.p50Us, p99Us: r.p99Us, cpuPer1k: cpuPerUnit(cpuSeconds(r.cpu), r.requests / 1000), errors: r.errors + r.timeouts + r.non2xx },
    raw: r,
  };
}

/** Runs connrate in the target's client namespace. */
export async function connrate(lab: Lab, target: Target, port: number, mode: 'http' | 'connect', d: Durations): Promise<ConnrateOutput> {
  const args = ['-a', target.address, '-p', String(port), '-c', String(CONNRATE_CONCURRENCY), '-d', String(d.conn), '-w', String(d.connWarmup), '-m', mode];
  const out = await lab.exec(target.client, CONNRATE, args, { timeoutMs: (d.conn + d.connWarmup + 30) * 1000 });
  const r = JSON.parse(out) as ConnrateOutput;
  if (r.connections === 0) throw new Error(`connrate ${args.join(' ')} from ${target.client.name}: no connection completed (${r.errors} errors)`);
  return r;
}

export function connrateSample(r: ConnrateOutput): Sample {
  return {
    metrics: { rps: r.rate, p50Us: r.p50Us, p99Us: r.p99Us, cpuPer1k: cpuPerUnit(cpuSeconds(r.cpu), r.connections / 1000), errors: r.errors },
    raw: r,
  };
}

export function keepAliveWorkload(path: PathKind, title: string): Workload {
  return {
    id: `http-keepalive-${path}`,
    title,
    path,
    quick: true,
    metrics: [{ key: 'rps', label: 'req/s', unit: 'req/s', better: 'higher' }, ...latencyMetrics, { key: 'cpuPer1k', label: 'CPU-s/1k req', unit: 'CPU-s', better: 'lower' }],
    estimate: (d) => d.http + d.httpWarmup + 0.5,
    run: keepAlive,
  };
}

export function connPerRequestWorkload(path: PathKind, title: string): Workload {
  return {
    id: `http-close-${path}`,
    title,
    path,
    quick: true,
    metrics: [{ key: 'rps', label: 'req/s', unit: 'req/s', better: 'higher' }, ...latencyMetrics, { key: 'cpuPer1k', label: 'CPU-s/1k req', unit: 'CPU-s', better: 'lower' }],
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
    metrics: [
      { key: 'rps', label: 'conn/s', unit: 'conn/s', better: 'higher' },
      { key: 'p50Us', label: 'p50 µs', unit: 'µs', better: 'lower' },
      { key: 'p99Us', label: 'p99 µs', unit: 'µs', better: 'lower' },
      { key: 'cpuPer1k', label: 'CPU-s/1k conn', unit: 'CPU-s', better: 'lower' },
    ],
    estimate: (d) => d.conn + d.connWarmup + 0.1,
    run: async (lab, target, d) => connrateSample(await connrate(lab, target, target.httpPort, 'connect', d)),
  };
}
