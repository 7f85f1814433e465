/**
 * From raw samples to what the report shows, pure: per-repetition series, their summaries,
 * ratios paired per repetition, the scaling sweep, control-plane percentiles and the targets.
 */
import { pairedRatio, pairedRatios, percentile, summarize, type Summary } from '../stats.js';
import type { BenchResults, DataSample, SweepSample } from '../results-model.js';
import { counts } from '../samples.js';
import { SETUP_NAMES, type SetupName } from '../setups/setup.js';

export const SETUP_ORDER: readonly SetupName[] = SETUP_NAMES;
/** The workloads of issue 12's dockerd targets (new connections, keep-alive), the only ones the docker+floor setup runs. */
export const DOCKER_TARGET_WORKLOADS: readonly string[] = ['conn-published', 'http-keepalive-published'];
const [DOCKER_CONN_WORKLOAD, DOCKER_KEEPALIVE_WORKLOAD] = DOCKER_TARGET_WORKLOADS;

/** The values of one metric indexed by repetition (NaN where that repetition failed, was dropped or is missing). */
export function series(samples: readonly DataSample[], workload: string, setup: SetupName, metric: string, reps: number): number[] {
  const out = Array.from({ length: reps }, () => NaN);
  for (const s of samples) {
    if (s.workload !== workload || s.setup !== setup || !counts(s)) continue;
    const v = s.metrics[metric];
    if (s.rep >= 0 && s.rep < reps && typeof v === 'number') out[s.rep] = v;
  }
  return out;
}

export interface Cell {
  setup: SetupName;
  values: number[];
  summary: Summary;
  /** This setup over host networking, over iptables and over the direct veth pair, paired per repetition. */
  vsHost: Summary;
  vsIptables: Summary;
  vsVeth: Summary;
}

/** Every setup's cell for one workload and metric (setups with no sample are left out). */
export function cells(results: BenchResults, workload: string, metric: string): Cell[] {
  const reps = results.reps;
  const present = SETUP_ORDER.filter((s) => results.samples.some((x) => x.workload === workload && x.setup === s));
  const of = (setup: SetupName) => series(results.samples, workload, setup, metric, reps);
  const host = of('host');
  const ipt = of('iptables');
  const veth = of('veth');
  return present.map((setup) => {
    const values = of(setup);
    return { setup, values, summary: summarize(values), vsHost: pairedRatio(values, host), vsIptables: pairedRatio(values, ipt), vsVeth: pairedRatio(values, veth) };
  });
}

/** A paired ratio of two setups on one workload metric. */
export function ratioBetween(results: BenchResults, workload: string, metric: string, a: SetupName, b: SetupName): Summary {
  const reps = results.reps;
  return pairedRatio(series(results.samples, workload, a, metric, reps), series(results.samples, workload, b, metric, reps));
}

/** One IPv6 workload beside its IPv4 twin (same client, same path over IPv4): each setup's IPv6 ÷ IPv4, paired per repetition. */
export interface FamilyRow {
  workload6: string;
  workload4: string;
  title: string;
  metric: string;
  bySetup: Array<{ setup: SetupName; ratio: Summary }>;
}

/** The IPv4 twin of an IPv6 workload: the same id with its path's trailing 6 dropped. */
function ipv4Twin(results: BenchResults, w6: BenchResults['workloads'][number]): BenchResults['workloads'][number] | undefined {
  if (!w6.path.endsWith('6')) return undefined;
  const path4 = w6.path.slice(0, -1);
  return results.workloads.find((w) => w.path === path4 && w.id === w6.id.replace(w6.path, path4));
}

/** IPv6 ÷ IPv4 per setup for every IPv6 workload that has an IPv4 twin (host networking: what the kernel's IPv6 stack itself costs). */
export function familyRows(results: BenchResults): FamilyRow[] {
  const rows: FamilyRow[] = [];
  for (const w6 of results.workloads) {
    const w4 = ipv4Twin(results, w6);
    if (!w4) continue;
    const metric = w6.metrics[0].key;
    const bySetup = SETUP_ORDER.flatMap((setup) => {
      const ratio = pairedRatio(series(results.samples, w6.id, setup, metric, results.reps), series(results.samples, w4.id, setup, metric, results.reps));
      return ratio.n ? [{ setup, ratio }] : [];
    });
    if (bySetup.length) rows.push({ workload6: w6.id, workload4: w4.id, title: w6.title.replace(/^IPv6: /, ''), metric, bySetup });
  }
  return rows;
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

/** A setup's control-plane p50 of each repetition (NaN where it failed or did not run). */
export function controlP50s(results: BenchResults, setup: SetupName): number[] {
  const out = Array.from({ length: results.reps }, () => NaN);
  for (const s of results.controlPlane.samples) if (s.setup === setup && !s.error && s.rep < results.reps) out[s.rep] = percentile(s.timesMs, 50);
  return out;
}

export function controlRows(results: BenchResults): ControlRow[] {
  const ipt = controlP50s(results, 'iptables');
  return SETUP_ORDER.filter((setup) => results.controlPlane.samples.some((s) => s.setup === setup && !s.error)).map((setup) => {
    const all = results.controlPlane.samples.filter((s) => s.setup === setup && !s.error).flatMap((s) => s.timesMs);
    const p50s = controlP50s(results, setup);
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
  /**
   * The same ratio with no bpfnet in the path, measured in the same run (e.g. plain routing ÷ host
   * networking for a "vs host" target, host networking ÷ iptables for a "vs iptables" one): how far
   * the kernel alone gets, so a target above it asks for more than the path allows.
   */
  reference?: { label: string; measured: Summary };
  /**
   * For a target against host networking or Docker's own path: the floor setup (a fixed stateless
   * eBPF translation on the datapath's own hooks) ÷ the same, in the same run: what no eBPF
   * datapath on this path gets past.
   */
  bound?: { label: string; measured: Summary };
}

/** The eBPF datapath's targets (issue 15: NIC-like uplink, medians of paired per-repetition ratios), measured. */
export function targets(results: BenchResults): TargetResult[] {
  // Without bpfnet: plain routing takes the same namespace hop as a published port (no NAT, no
  // state); host networking has no hop at all.
  const without: Partial<Record<SetupName, { a: SetupName; b: SetupName; label: string }>> = {
    host: { a: 'routing', b: 'host', label: 'plain routing ÷ host' },
    iptables: { a: 'host', b: 'iptables', label: 'host ÷ iptables' },
  };
  const ratio = (id: string, label: string, workload: string, metric: string, b: SetupName, target: number, a: SetupName = 'ebpf'): TargetResult => {
    const measured = ratioBetween(results, workload, metric, a, b);
    const ref = without[b];
    const reference = ref && { label: ref.label, measured: ratioBetween(results, workload, metric, ref.a, ref.b) };
    // Docker's containers are bounded by the floor in Docker's containers (they carry Docker's own
    // conntrack whatever the driver), not by the floor in a namespace of bpfnet's.
    const floor: SetupName = b === 'docker' ? 'docker+floor' : 'floor';
    const bound = b === 'host' || b === 'docker' ? { label: `${floor} ÷ ${b}`, measured: ratioBetween(results, workload, metric, floor, b) } : undefined;
    return {
      id,
      label,
      basis: `${a} / ${b}, ${workload} ${metric}, paired per repetition`,
      measured,
      unit: 'x',
      op: '>=',
      target,
      met: measured.n ? measured.median >= target : undefined,
      ...(reference?.measured.n ? { reference } : {}),
      ...(bound?.measured.n ? { bound } : {}),
    };
  };
  const family = (id: string, label: string, w6: string, w4: string, metric: string): TargetResult => {
    const measured = pairedRatio(series(results.samples, w6, 'ebpf', metric, results.reps), series(results.samples, w4, 'ebpf', metric, results.reps));
    const host = pairedRatio(series(results.samples, w6, 'host', metric, results.reps), series(results.samples, w4, 'host', metric, results.reps));
    return {
      id,
      label,
      basis: `ebpf ${w6} / ebpf ${w4}, ${metric}, paired per repetition`,
      measured,
      unit: 'x',
      op: '>=',
      target: 0.95,
      met: measured.n ? measured.median >= 0.95 : undefined,
      ...(host.n ? { reference: { label: 'host IPv6 ÷ IPv4', measured: host } } : {}),
    };
  };
  const pub = publishTimes(results);
  const p99 = percentile(pub, 99);
  const ms = (id: string, label: string, basis: string, measured: Summary, target: number): TargetResult => ({
    id,
    label,
    basis,
    measured,
    unit: 'ms',
    op: '<=',
    target,
    met: measured.n ? measured.median <= target : undefined,
  });
  return [
    ratio('conn-vs-host', 'New TCP connections/s, published port, vs host networking', 'conn-published', 'rps', 'host', 0.9),
    ratio('conn-vs-iptables', 'New TCP connections/s, published port, vs iptables', 'conn-published', 'rps', 'iptables', 1.4),
    ratio('close-vs-host', 'HTTP, one connection per request, published port, vs host networking', 'http-close-published', 'rps', 'host', 0.9),
    ratio('masq-vs-routing', 'Masquerade new connections/s vs plain routing', 'conn-egress', 'rps', 'routing', 0.95),
    ratio('keepalive-vs-host', 'Published port, HTTP keep-alive req/s, vs host networking', 'http-keepalive-published', 'rps', 'host', 0.95),
    ratio('stream-vs-host', 'Published port, one TCP stream, vs host networking', 'tcp-published-1', 'gbps', 'host', 0.95),
    // Issue 11: every IPv6 rate at least 0.95x the same IPv4 rate, and ip6tables beaten by 1.3x on new connections.
    family('v6-keepalive', 'IPv6 ÷ IPv4, published port, HTTP keep-alive req/s', 'http-keepalive-published6', 'http-keepalive-published', 'rps'),
    family('v6-conn', 'IPv6 ÷ IPv4, published port, new TCP connections/s', 'conn-published6', 'conn-published', 'rps'),
    family('v6-same-network', 'IPv6 ÷ IPv4, same network, HTTP keep-alive req/s', 'http-keepalive-same-network6', 'http-keepalive-same-network', 'rps'),
    family('v6-masq', 'IPv6 ÷ IPv4, NAT66 vs masquerade, new TCP connections/s', 'conn-egress6', 'conn-egress', 'rps'),
    ratio('conn6-vs-ip6tables', 'IPv6 new TCP connections/s, published port, vs ip6tables', 'conn-published6', 'rps', 'iptables', 1.3),
    // Issue 12: a real dockerd's containers on bpfnet's plugin against the same dockerd's own bridge and iptables.
    ratio('docker-conn', "dockerd on bpfnet's plugin vs dockerd's own bridge, new TCP connections/s, published port", DOCKER_CONN_WORKLOAD, 'rps', 'docker', 1.3, 'docker+bpfnet'),
    ratio('docker-keepalive', "dockerd on bpfnet's plugin vs dockerd's own bridge, HTTP keep-alive req/s, published port", DOCKER_KEEPALIVE_WORKLOAD, 'rps', 'docker', 1.2, 'docker+bpfnet'),
    // Issue 12: a container on bpfnet's plugin starts (docker run -d to its first packet outside) within 10 % of one on dockerd's own bridge.
    startTime(results),
    ms('publish-10k', 'Publishing 10,000 ports (median)', `sandbox with 10,000 ports minus one without, ${pub.length} runs`, summarize(pub), 20),
    ms('publish-10k-p99', 'Publishing 10,000 ports (p99)', `p99 over ${pub.length} runs`, pub.length ? { n: pub.length, median: p99, min: p99, max: p99 } : summarize([]), 40),
  ];
}

/** Container start time on bpfnet's plugin ÷ on dockerd's own bridge: the p50s of each repetition, paired. */
function startTime(results: BenchResults): TargetResult {
  const measured = pairedRatio(controlP50s(results, 'docker+bpfnet'), controlP50s(results, 'docker'));
  return {
    id: 'docker-start',
    label: "dockerd on bpfnet's plugin vs dockerd's own bridge, container start time (docker run -d to its first packet outside, p50)",
    basis: 'docker+bpfnet / docker, control-plane p50 of each repetition, paired',
    measured,
    unit: 'x',
    op: '<=',
    target: 1.1,
    met: measured.n ? measured.median <= 1.1 : undefined,
  };
}

/** The eBPF datapath's times to publish 10,000 ports: the publish section's runs, else the sweep's. */
export function publishTimes(results: BenchResults): number[] {
  const own = (results.publish?.samples ?? []).filter((s) => s.setup === 'ebpf' && !s.error).map((s) => s.createMs - s.baselineMs);
  if (own.length) return own;
  return results.sweep.samples.filter((s) => s.setup === 'ebpf' && s.ports === 10000 && !s.error).map(publishMs);
}

/** The same path measured by two clients: the headline's and a cross-check's ratios side by side. */
export interface CrossCheck {
  headline: string;
  check: string;
  headlineClient: string;
  checkClient: string;
  /** ebpf over iptables and over host networking, under each client. */
  vsIptables: [Summary, Summary];
  vsHost: [Summary, Summary];
  /** The ebpf setup's median client CPU share (% of one CPU) under each client. */
  clientCpuPct: [number, number];
  /** The ebpf setup's median rate under each client. */
  rate: [number, number];
}

export function crossChecks(results: BenchResults): CrossCheck[] {
  const out: CrossCheck[] = [];
  for (const w of results.workloads) {
    if (!w.crossCheckOf) continue;
    const h = results.workloads.find((x) => x.id === w.crossCheckOf);
    if (!h) continue;
    const m = (id: string, metric: string) => summarize(series(results.samples, id, 'ebpf', metric, results.reps)).median;
    out.push({
      headline: h.id,
      check: w.id,
      headlineClient: h.client ?? '?',
      checkClient: w.client ?? '?',
      vsIptables: [ratioBetween(results, h.id, 'rps', 'ebpf', 'iptables'), ratioBetween(results, w.id, 'rps', 'ebpf', 'iptables')],
      vsHost: [ratioBetween(results, h.id, 'rps', 'ebpf', 'host'), ratioBetween(results, w.id, 'rps', 'ebpf', 'host')],
      clientCpuPct: [m(h.id, 'clientCpuPct'), m(w.id, 'clientCpuPct')],
      rate: [m(h.id, 'rps'), m(w.id, 'rps')],
    });
  }
  return out;
}

/** Every sample left out of the statistics, with its reason. */
export function droppedSamples(results: BenchResults): DataSample[] {
  return results.samples.filter((s) => s.dropped !== undefined);
}
