/**
 * HTTP with wrk (C, one event-loop thread): keep-alive, and one connection per request with
 * `Connection: close`. The headline HTTP client: it needs a fraction of the CPU autocannon's
 * Node process needs for the same rate, so on 2 vCPUs it leaves the server and the datapath
 * the CPU they are being measured on. A warm-up run of the same load comes first (wrk has none
 * of its own); the measured run's own CPU time is recorded as the client's share.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../../src/lab/lab.js';
import { projectRoot } from '../../src/paths.js';
import { busySeconds, cpuPerUnit, parseProcStat } from '../stats.js';
import { execTimed } from '../clients/timed.js';
import { hostPort, type PathKind, type Target } from '../setups/setup.js';
import type { Durations, Sample, Workload } from './workload.js';

export const WRK_REPORT_SCRIPT = join(projectRoot, 'bench', 'clients', 'wrk-report.lua');
export const WRK_KEEPALIVE_CONNECTIONS = 50;
export const WRK_CLOSE_CONNECTIONS = 32;

export interface WrkReport {
  requests: number;
  durationUs: number;
  bytes: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  timeouts: number;
  non2xx: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
}

/** The JSON line wrk-report.lua writes, found among wrk's own text. */
export function parseWrkReport(stdout: string): WrkReport {
  const line = stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{"requests"'))
    .at(-1);
  if (!line) throw new Error(`wrk printed no report line: ${stdout.trim().split('\n').slice(-3).join(' ')}`);
  return JSON.parse(line) as WrkReport;
}

/** wrk takes whole seconds. */
const wholeSeconds = (s: number) => `${Math.max(1, Math.round(s))}s`;

async function runWrk(lab: Lab, target: Target, d: Durations, close: boolean): Promise<Sample> {
  const url = `http://${hostPort(target.address, target.httpPort)}/`;
  const conns = close ? WRK_CLOSE_CONNECTIONS : WRK_KEEPALIVE_CONNECTIONS;
  const base = ['-t', '1', '-c', String(conns), '--timeout', '2s', '-s', WRK_REPORT_SCRIPT, ...(close ? ['-H', 'Connection: close'] : [])];
  const timeoutMs = (d.http + d.httpWarmup + 30) * 1000;
  if (d.httpWarmup > 0) await execTimed(lab, target.client, 'wrk', [...base, '-d', wholeSeconds(d.httpWarmup), url], timeoutMs);
  const before = parseProcStat(readFileSync('/proc/stat', 'utf8'));
  const out = await execTimed(lab, target.client, 'wrk', [...base, '-d', wholeSeconds(d.http), url], timeoutMs);
  const after = parseProcStat(readFileSync('/proc/stat', 'utf8'));
  const r = parseWrkReport(out.stdout);
  const seconds = r.durationUs / 1e6;
  if (r.requests === 0) throw new Error(`wrk to ${url} from ${target.client.name}: no responses (${r.connectErrors} connect, ${r.readErrors} read errors)`);
  return {
    metrics: {
      rps: r.requests / seconds,
      p50Us: r.p50Us,
      p99Us: r.p99Us,
      cpuPer1k: cpuPerUnit(busySeconds(before, after), r.requests / 1000),
      clientCpuPct: (100 * out.cpuSeconds) / seconds,
      errors: r.connectErrors + r.readErrors + r.writeErrors + r.timeouts,
      non2xx: r.non2xx,
    },
    raw: { ...r, clientCpuSeconds: out.cpuSeconds },
  };
}

const httpMetrics = [
  { key: 'rps', label: 'req/s', unit: 'req/s', better: 'higher' as const },
  { key: 'p50Us', label: 'p50 µs', unit: 'µs', better: 'lower' as const },
  { key: 'p99Us', label: 'p99 µs', unit: 'µs', better: 'lower' as const },
  { key: 'cpuPer1k', label: 'CPU-s/1k req', unit: 'CPU-s', better: 'lower' as const },
  { key: 'clientCpuPct', label: 'client CPU %', unit: '%', better: 'lower' as const },
];

export function wrkWorkload(path: PathKind, close: boolean, title: string, quick: boolean): Workload {
  return {
    id: close ? `http-close-${path}` : `http-keepalive-${path}`,
    title,
    path,
    quick,
    client: 'wrk',
    metrics: httpMetrics,
    estimate: (d) => Math.max(1, Math.round(d.http)) + (d.httpWarmup > 0 ? Math.max(1, Math.round(d.httpWarmup)) : 0) + 0.3,
    run: (lab, target, d) => runWrk(lab, target, d, close),
  };
}
