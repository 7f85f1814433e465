/**
 * From raw samples to what the report shows, pure: per-repetition series, their summaries,
 * ratios paired per repetition, the scaling sweep, control-plane percentiles and the targets.
 */
import { pairedRatio, pairedRatios, percentile, summarize, type Summary } from '../stats.js';
import type { BenchResults, DataSample, SweepSample } from '../results-model.js';
import type { SetupName } from '../setups/setup.js';

export const SETUP_ORDER: SetupName[] = ['ceiling', 'routing', 'ebpf', 'iptables', 'cni'];

/** The values of one metric indexed by repetition (NaN where that repetition failed or is missing). */
export function series(samples: readonly DataSample[], workload: string, setup: SetupName, metric: string, reps: number): number[] {
  const out = Array.from({ length: reps }, () => NaN);
  for (const s of samples) {
    if (s.workload !== workload || s.setup !== setup || s.error !== undefined) continue;
    const v = s.metrics[metric];
    if (s.rep >= 0 && s.rep < reps && typeof v === 'number') out[s.rep] = v;
  }
  return out;
}

export interface Cell {
  setup: SetupName;
  values: number[];
  summary: Summary;
  /** This setup over iptables and over the ceiling, paired per repetition. */
  vsIptables: Summary;
  vsCeiling: Summary;
}

/** Every setup's cell for one workload and metric (setups with no sample are left out). */
export function cells(results: BenchResults, workload: string, metric: string): Cell[] {
  const reps = results.reps;
  const present = SETUP_ORDER.filter((s) => results.samples.some((x) => x.workload === workload && x.setup === s));
  const ipt = series(results.samples, workload, 'iptables', metric, reps);
  const ceil = series(results.samples, workload, 'ceiling', metric, reps);
  return present.map((setup) => {
    const values = series(results.samples, workload, setup, metric, reps);
    return { setup, values, summary: summarize(values), vsIptables: pairedRatio(values, ipt), vsCeiling: pairedRatio(values, ceil) };
  });
}

/** A paired ratio of two setups on one workload metric. */
export function ratioBetween(results: BenchResults, workload: string, metric: string, a: SetupName, b: SetupName): Summary {
  const reps = results.reps;
  return pairedRatio(series(results.samples, workload, a, metric, reps), series(results.samples, workload, b, metric, reps));
}

/** Sweep values of one setup at one port count, by repetition. */
export function sweepSeries(samples: readonly SweepSample[], setup: SetupName, ports: number, pick: (s: SweepSample) => number, reps: number): number[] {
  const out = Array.from({ length: reps }, () => NaN);
  for (const s of samples) if (s.setup === setup && s.ports === ports && s.error === undefined && s.rep >= 0 && s.rep < reps) out[s.rep] = pick(s);
  return out;
}

/** Time spent publishing: creating the sandbox with its ports minus creating one without. */
export const publishMs = (s: SweepSample): number => s.createMs - s.baselineMs;

export interface SweepRow {
  setup: SetupName;
  ports: number;
  rate: Summary;
  p99Us: Summary;
  publishMs: Summary;
  /** conn/s at this port count over conn/s with one port, paired per repetition. */
  vsOnePort: Summary;
}

export function sweepRows(results: BenchResults): SweepRow[] {
  const reps = results.reps;
  const rows: SweepRow[] = [];
  for (const setup of SETUP_ORDER) {
    const one = sweepSeries(results.sweep.samples, setup, 1, (s) => s.metrics.rps, reps);
    for (const ports of results.sweep.ports) {
      if (!results.sweep.samples.some((s) => s.setup === setup && s.ports === ports)) continue;
      const rate = sweepSeries(results.sweep.samples, setup, ports, (s) => s.metrics.rps, reps);
      rows.push({
        setup,
        ports,
        rate: summarize(rate),
        p99Us: summarize(sweepSeries(results.sweep.samples, setup, ports, (s) => s.metrics.p99Us, reps)),
        publishMs: summarize(sweepSeries(results.sweep.samples, setup, ports, publishMs, reps)),
        vsOnePort: pairedRatio(rate, one),
      });
    }
  }
  return rows;
}

export interface ControlRow {
  setup: SetupName;
  n: number;
  p50: number;
  p99: number;
  /** The p50 of each repetition: its median and range. */
  perRepP50: Summary;
  vsIptablesP50: Summary;
}

export function controlRows(results: BenchResults): ControlRow[] {
  const reps = results.reps;
  const byRep = (setup: SetupName) => {
    const out = Array.from({ length: reps }, () => NaN);
    for (const s of results.controlPlane.samples) if (s.setup === setup && !s.error && s.rep < reps) out[s.rep] = percentile(s.timesMs, 50);
    return out;
  };
  const ipt = byRep('iptables');
  return SETUP_ORDER.filter((setup) => results.controlPlane.samples.some((s) => s.setup === setup && !s.error)).map((setup) => {
    const all = results.controlPlane.samples.filter((s) => s.setup === setup && !s.error).flatMap((s) => s.timesMs);
    const p50s = byRep(setup);
    return { setup, n: all.length, p50: percentile(all, 50), p99: percentile(all, 99), perRepP50: summarize(p50s), vsIptablesP50: pairedRatio(p50s, ipt) };
  });
}

export interface TargetResult {
  id: string;
  label: string;
  /** How the measured value is formed. */
  basis: string;
  measured: Summary;
  unit: 'x' | 'ms';
  op: '>=' | '<=';
  target: number;
  /** undefined when it could not be measured. */
  met: boolean | undefined;
}

/** The eBPF datapath's targets (from the issue), measured. */
export function targets(results: BenchResults): TargetResult[] {
  const reps = results.reps;
  const ratio = (id: string, label: string, workload: string, metric: string, b: SetupName, target: number): TargetResult => {
    const measured = ratioBetween(results, workload, metric, 'ebpf', b);
    return { id, label, basis: `ebpf / ${b}, ${workload} ${metric}, paired per repetition`, measured, unit: 'x', op: '>=', target, met: measured.n ? measured.median >= target : undefined };
  };
  const one = sweepSeries(results.sweep.samples, 'ebpf', 1, (s) => s.metrics.rps, reps);
  const tenK = sweepSeries(results.sweep.samples, 'ebpf', 10000, (s) => s.metrics.rps, reps);
  const scaled = pairedRatios(tenK, one);
  const pub = summarize(sweepSeries(results.sweep.samples, 'ebpf', 10000, publishMs, reps));
  return [
    ratio('published-stream', 'Published port, one TCP stream', 'tcp-published-1', 'gbps', 'ceiling', 0.95),
    ratio('published-keepalive', 'Published port, HTTP keep-alive req/s', 'http-keepalive-published', 'rps', 'ceiling', 0.9),
    ratio('published-close', 'Published port, one connection per request, req/s', 'http-close-published', 'rps', 'ceiling', 0.85),
    ratio('same-network-keepalive', 'Same network, sandbox → sandbox HTTP keep-alive req/s', 'http-keepalive-same-network', 'rps', 'ceiling', 0.95),
    ratio('egress-connections', 'Masqueraded egress, new connections/s vs plain routing', 'conn-egress', 'rps', 'routing', 0.95),
    {
      id: 'ports-scaling',
      label: 'New connections/s with 10,000 published ports vs 1',
      basis: 'ebpf sweep conn/s at 10,000 ports / at 1 port, paired per repetition',
      measured: summarize(scaled),
      unit: 'x',
      op: '>=',
      target: 0.95,
      met: scaled.length ? summarize(scaled).median >= 0.95 : undefined,
    },
    {
      id: 'publish-10k',
      label: 'Publishing 10,000 ports',
      basis: 'ebpf: create a sandbox with 10,000 ports minus an identical one with none',
      measured: pub,
      unit: 'ms',
      op: '<=',
      target: 50,
      met: pub.n ? pub.median <= 50 : undefined,
    },
  ];
}
