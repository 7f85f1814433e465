/**
 * The overlay section of the report: cross-host vs same-host vs Docker's way per workload, the
 * issue's targets checked against this run's own numbers beside the same ratio with no overlay
 * and of the overlay's floor, and the propagation percentiles. Pure.
 */
import { pairedRatio, summarize, type Summary } from '../stats.js';
import type { OverlayResults } from '../results-model.js';

type Key = 'iperf1Gbps' | 'iperf2Gbps' | 'keepAliveRps' | 'newConnPerSec';
const COLUMNS: Array<{ key: Key; label: string }> = [
  { key: 'iperf1Gbps', label: 'TCP 1 stream Gb/s' },
  { key: 'iperf2Gbps', label: 'TCP 2 streams Gb/s' },
  { key: 'keepAliveRps', label: 'HTTP keep-alive req/s (wrk, 50 conn)' },
  { key: 'newConnPerSec', label: 'new TCP conn/s (connrate, 32)' },
];
/** The targets: cross-host throughput ≥ 0.8x same-host, cross-host request rates ≥ 1.2x Docker's way, propagation p99 ≤ 100 ms. */
const THROUGHPUT_VS_SAME_HOST = 0.8;
const RATES_VS_DOCKER = 1.2;
const REACH_P99_MS = 100;

function num(x: number): string {
  if (!Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}
const cell = (s: Summary) => (s.n === 0 ? '—' : s.n === 1 || s.min === s.max ? num(s.median) : `${num(s.median)} (${num(s.min)}–${num(s.max)})`);
const ratioCell = (s: Summary) => (s.n === 0 ? '—' : s.n === 1 || s.min === s.max ? `${s.median.toFixed(2)}x` : `${s.median.toFixed(2)}x (${s.min.toFixed(2)}–${s.max.toFixed(2)})`);

/** Nearest-rank percentile. */
function pct(xs: readonly number[], p: number): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! : NaN;
}

export interface OverlayTarget {
  label: string;
  measured: string;
  target: string;
  met?: boolean;
  /**
   * The same ratio for the pair with no overlay (the kernel routing across the underlay): how far
   * these hosts get with no tunnel at all. A reference, not a ceiling: bpfnet's path skips the
   * kernel's forwarding.
   */
  reference?: { measured: string; met: boolean };
  /**
   * The same ratio for the overlay's floor (bpf/overlay_floor.bpf.c: a fixed stateless VXLAN
   * encap/decap on the same hooks): below the target, no eBPF overlay on these hooks reaches it;
   * above it, the gap is bpfnet's own state, checks and routing.
   */
  floor?: { measured: string; met: boolean };
}

/** How a ratio row names its base setup. */
const BASE_LABEL: Record<string, string> = { 'same-host': 'same host', 'docker-way': "Docker's way", 'no-overlay': 'no overlay', floor: 'the floor' };

export function overlayTargets(r: OverlayResults): OverlayTarget[] {
  const by = (n: string) => r.setups.find((s) => s.name === n);
  const cross = by('cross-host');
  const same = by('same-host');
  const docker = by('docker-way');
  const none = by('no-overlay');
  const floor = by('floor');
  const out: OverlayTarget[] = [];
  const vs = (label: string, key: Key, base: typeof same, target: number) => {
    const ratio = (of: typeof same) => (of && base ? pairedRatio(of[key], base[key]) : summarize([]));
    const s = ratio(cross);
    const b = ratio(none);
    const f = ratio(floor);
    out.push({
      label,
      measured: ratioCell(s),
      target: `≥ ${target.toFixed(1)}x`,
      ...(s.n ? { met: s.median >= target } : {}),
      ...(b.n ? { reference: { measured: ratioCell(b), met: b.median >= target } } : {}),
      ...(f.n ? { floor: { measured: ratioCell(f), met: f.median >= target } } : {}),
    });
  };
  vs('overlay cross-host ÷ same host, TCP 1 stream', 'iperf1Gbps', same, THROUGHPUT_VS_SAME_HOST);
  vs('overlay cross-host ÷ same host, TCP 2 streams', 'iperf2Gbps', same, THROUGHPUT_VS_SAME_HOST);
  vs("overlay cross-host ÷ Docker's way, HTTP keep-alive req/s", 'keepAliveRps', docker, RATES_VS_DOCKER);
  vs("overlay cross-host ÷ Docker's way, new conn/s", 'newConnPerSec', docker, RATES_VS_DOCKER);
  const p99 = pct(r.reach.everyHostMs, 99);
  out.push({ label: `new sandbox reachable from every other host, p99 (${r.reach.everyHostMs.length} sandboxes, ${r.reach.hosts} hosts)`, measured: Number.isFinite(p99) ? `${p99.toFixed(1)} ms` : '—', target: `≤ ${REACH_P99_MS} ms`, ...(Number.isFinite(p99) ? { met: p99 <= REACH_P99_MS } : {}) });
  return out;
}

/** What the no-overlay pair and the floor say of each missed target, from this run's numbers. */
export function referenceSentences(targets: readonly OverlayTarget[]): string[] {
  const sentences = (missed: OverlayTarget[], of: (t: OverlayTarget) => { measured: string; met: boolean }, named: string, below: string, above: string) => {
    const list = (ts: OverlayTarget[]) => ts.map((t) => `${t.label} (${t.measured}; ${named} ${of(t).measured})`).join('; ');
    const under = missed.filter((t) => !of(t).met);
    const over = missed.filter((t) => of(t).met);
    return [...(under.length ? [`\n${below}: ${list(under)}.`] : []), ...(over.length ? [`\n${above}: ${list(over)}.`] : [])];
  };
  const missed = targets.filter((t) => t.met === false);
  return [
    ...sentences(
      missed.filter((t) => t.reference),
      (t) => t.reference!,
      'with no overlay',
      'Missed where the same two hosts with no overlay at all (the kernel routing) stay below the target too in this run',
      'Missed though the same two hosts with no overlay reach the target in this run',
    ),
    // The floor bounds every eBPF overlay on these hooks: below the target, none reaches it;
    // above it, the gap is bpfnet's own state, checks and routing.
    ...sentences(
      missed.filter((t) => t.floor),
      (t) => t.floor!,
      'the floor',
      'Missed and beyond even the floor in this run (a fixed stateless eBPF VXLAN encap/decap on the same hooks, no state and no check, misses the target too)',
      "Missed but within the floor's reach in this run (the fixed stateless encap/decap meets the target; the rest is bpfnet's state, checks and routing)",
    ),
  ];
}

function table(header: string[], rows: string[][]): string {
  const line = (cols: string[]) => `| ${cols.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

/** Rows per setup (medians, min–max), the ratio rows, the targets and the propagation percentiles. */
export function overlayMarkdown(r: OverlayResults, opts: { notes?: boolean } = {}): string {
  const rows = r.setups.map((s) => [s.description, ...COLUMNS.map((c) => cell(summarize(s[c.key])))]);
  const cross = r.setups.find((s) => s.name === 'cross-host');
  const v6 = r.setups.find((s) => s.name === 'cross-host-v6');
  for (const base of r.setups.filter((s) => s !== cross && s !== v6)) {
    if (!cross) break;
    rows.push([`cross-host ÷ ${BASE_LABEL[base.name] ?? base.name}`, ...COLUMNS.map((c) => ratioCell(pairedRatio(cross[c.key], base[c.key])))]);
  }
  const none = r.setups.find((s) => s.name === 'no-overlay');
  const docker = r.setups.find((s) => s.name === 'docker-way');
  if (none && docker) rows.push(["no overlay ÷ Docker's way (what Docker's tunnel and bridge cost)", ...COLUMNS.map((c) => ratioCell(pairedRatio(none[c.key], docker[c.key])))]);
  const floor = r.setups.find((s) => s.name === 'floor');
  if (floor && docker) rows.push(["the floor ÷ Docker's way (the least eBPF overlay on these hooks)", ...COLUMNS.map((c) => ratioCell(pairedRatio(floor[c.key], docker[c.key])))]);
  if (cross && v6) rows.push(['cross-host IPv6 ÷ IPv4', ...COLUMNS.map((c) => ratioCell(pairedRatio(v6[c.key], cross[c.key])))]);
  const e = r.reach.everyHostMs;
  // Samples are pushed together (a failed one adds to neither), so the indexes pair up.
  const fromStart = e.map((x, i) => x + (r.reach.createMs[i] ?? NaN));
  const reach = e.length
    ? `A new sandbox reachable from every other host (by traffic, ${e.length} sandboxes over ${r.reach.hosts} hosts, ms after its create call answered; negative: before): p50 ${pct(e, 50).toFixed(1)}, p99 ${pct(e, 99).toFixed(1)}, max ${Math.max(...e).toFixed(1)}; per host pair (${r.reach.perHostMs.length}): p50 ${pct(r.reach.perHostMs, 50).toFixed(1)}, p99 ${pct(r.reach.perHostMs, 99).toFixed(1)}. ` +
      `Counted from the create call's start instead (the call's own work — address reservation and publication in etcd, the local build — included): p50 ${pct(fromStart, 50).toFixed(1)}, p99 ${pct(fromStart, 99).toFixed(1)}.`
    : 'A new sandbox reachable from every other host: not measured in this run.';
  const targets = overlayTargets(r);
  return [
    table(['setup', ...COLUMNS.map((c) => c.label)], rows),
    '',
    reach,
    '',
    table(
      ['overlay target', 'measured', 'target', 'result', 'the same with no overlay (kernel routing)', 'the floor (fixed eBPF encap/decap, no state)'],
      targets.map((t) => [t.label, t.measured, t.target, t.met === undefined ? 'not measured' : t.met ? 'met' : '**missed**', t.reference?.measured ?? '—', t.floor?.measured ?? '—']),
    ),
    ...referenceSentences(targets),
    ...[...r.errors, ...r.reach.errors].map((x) => `\n- failed: ${x}`),
    ...(opts.notes === false ? [] : r.notes.map((n) => `\n- ${n}`)),
  ].join('\n');
}
