/**
 * TCP throughput with iperf3 (-J): one stream or two, client to server, for the path's
 * target. CPU cost: busy CPU-seconds of the whole machine (/proc/stat) over the client's
 * run, per GB moved in that run (the omitted warm-up second counts on both sides).
 */
import { readFileSync } from 'node:fs';
import type { Lab } from '../../src/lab/lab.js';
import { busySeconds, cpuPerUnit, parseProcStat } from '../stats.js';
import type { PathKind, Target } from '../setups/setup.js';
import type { Durations, Sample, Workload } from './workload.js';

interface IperfInterval {
  sum: { bytes: number; omitted?: boolean };
}
interface IperfReport {
  error?: string;
  intervals?: IperfInterval[];
  end?: { sum_received?: { bits_per_second: number; bytes: number }; sum_sent?: { retransmits?: number } };
}

export async function runIperf(lab: Lab, target: Target, streams: number, d: Durations): Promise<Sample> {
  const args = ['-c', target.address, '-p', String(target.iperfPort), '-t', String(d.iperf), '-O', String(d.iperfOmit), '-P', String(streams), '-J'];
  let lastError = '';
  for (let attempt = 0; attempt < 4; attempt++) {
    const before = parseProcStat(readFileSync('/proc/stat', 'utf8'));
    const r = await lab.execRaw(target.client, 'iperf3', args, { timeoutMs: (d.iperf + d.iperfOmit + 20) * 1000 });
    const after = parseProcStat(readFileSync('/proc/stat', 'utf8'));
    let report: IperfReport | undefined;
    try {
      report = JSON.parse(r.stdout) as IperfReport;
    } catch {
      report = undefined;
    }
    const received = report?.end?.sum_received;
    if (r.code === 0 && report && !report.error && received) {
      const bytes = (report.intervals ?? []).reduce((s, i) => s + i.sum.bytes, 0);
      const cpu = busySeconds(before, after);
      return {
        metrics: {
          gbps: received.bits_per_second / 1e9,
          cpuPerGB: cpuPerUnit(cpu, bytes / 1e9),
          retransmits: report.end?.sum_sent?.retransmits ?? NaN,
        },
        raw: { end: report.end, intervals: report.intervals?.map((i) => i.sum), cpuSeconds: cpu },
      };
    }
    lastError = report?.error ?? (r.stderr.trim() || `exit ${r.code}`);
    // iperf3's server takes a moment to accept the next test after one ends.
    if (!/busy|unable to connect|Connection refused/i.test(lastError)) break;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`iperf3 ${args.join(' ')} from ${target.client.name}: ${lastError}`);
}

export function iperfWorkload(path: PathKind, streams: number, title: string, quick: boolean): Workload {
  return {
    id: `tcp-${path}-${streams}`,
    title,
    path,
    quick,
    client: 'iperf3',
    metrics: [
      { key: 'gbps', label: 'Gb/s', unit: 'Gb/s', better: 'higher' },
      { key: 'cpuPerGB', label: 'CPU-s/GB', unit: 'CPU-s/GB', better: 'lower' },
      { key: 'retransmits', label: 'retransmits', unit: '', better: 'lower' },
    ],
    estimate: (d: Durations) => d.iperf + d.iperfOmit + 0.4,
    run: (lab, target, d) => runIperf(lab, target, streams, d),
  };
}
