/**
 * Every sentence of the report that draws a conclusion, generated from the run's own numbers:
 * nothing here is true because it was true last time. Pure; each function returns sentences
 * (markdown) or nothing when the data to say it is missing.
 */
import { pairedRatio, type Summary } from '../stats.js';
import type { BenchResults } from '../results-model.js';
import { cells, crossChecks, droppedSamples, targets, type CrossCheck } from './analysis.js';

/** Two ratios (e.g. ebpf÷iptables under two clients) disagree when they differ by more than this fraction. */
export const DISAGREEMENT = 0.05;

const x = (s: number, d = 2) => `${s.toFixed(d)}x`;
const pct = (r: number) => `${r >= 1 ? '+' : '−'}${Math.abs((r - 1) * 100).toFixed(0)} %`;

/** Whether a paired-ratio summary's range lies entirely on one side of 1 (the difference held in every repetition). */
export function consistent(s: Summary): boolean {
  return s.n >= 2 && (s.min > 1 || s.max < 1);
}

/** How far a paired ratio can be trusted, in words: one repetition, a difference held in every one, or noise. */
export function verdict(s: Summary): string {
  if (s.n < 2) return 'one repetition, no range';
  if (consistent(s)) return `${s.median > 1 ? 'above' : 'below'} 1x in all ${s.n} repetitions`;
  return `range ${s.min.toFixed(2)}–${s.max.toFixed(2)} spans 1x: within the noise`;
}

/** "N of M targets met" and the misses by name, with their measured values. */
export function targetsSentence(r: BenchResults): string[] {
  const ts = targets(r);
  const measured = ts.filter((t) => t.met !== undefined);
  if (measured.length === 0) return [];
  const missed = measured.filter((t) => !t.met);
  const unmeasured = ts.length - measured.length;
  const fmt = (t: (typeof ts)[number]) => (t.unit === 'x' ? x(t.measured.median, 3) : `${t.measured.median.toFixed(1)} ms`);
  const out = [`${measured.length - missed.length} of ${measured.length} measured targets met${unmeasured ? ` (${unmeasured} not measured in this run)` : ''}.`];
  if (missed.length) out.push(`Missed: ${missed.map((t) => `${t.label} (${fmt(t)}, target ${t.op === '>=' ? '≥' : '≤'} ${t.unit === 'x' ? x(t.target) : `${t.target} ms`})`).join('; ')}.`);
  /** One sentence naming each missed target with a comparison ratio beside its own; none when the list is empty. */
  const compared = (lead: string, ts: typeof missed, pick: (t: (typeof missed)[number]) => { label: string; measured: { median: number } }) => {
    if (ts.length) out.push(`${lead}: ${ts.map((t) => `${t.label} — ${pick(t).label} ${x(pick(t).measured.median, 3)}, the eBPF datapath ${fmt(t)}`).join('; ')}.`);
  };
  // A missed target whose ratio the kernel alone does not reach either: the path's bound, measured.
  compared(
    'Beyond what the path allows in this run (the same ratio without bpfnet is below the target too)',
    missed.filter((t) => t.reference && t.op === '>=' && t.reference.measured.median < t.target),
    (t) => t.reference!,
  );
  // The floor: a fixed stateless translation on the datapath's own hooks. Below the target, no
  // eBPF datapath on this path reaches it; above it, the gap is the datapath's own state and checks.
  const bounded = missed.filter((t) => t.bound && t.op === '>=');
  compared(
    'Beyond even the floor in this run (a fixed stateless eBPF translation on the same hooks, no state and no check, misses the target too)',
    bounded.filter((t) => t.bound!.measured.median < t.target),
    (t) => t.bound!,
  );
  compared(
    "Within the floor's reach in this run (the fixed stateless translation meets the target; the rest is the datapath's state and checks)",
    bounded.filter((t) => t.bound!.measured.median >= t.target),
    (t) => t.bound!,
  );
  return out;
}

/** Per headline workload: where the eBPF datapath stands against host networking and iptables. */
export function standingSentences(r: BenchResults): string[] {
  const out: string[] = [];
  for (const w of r.workloads) {
    if (w.crossCheckOf) continue;
    const m = w.metrics[0];
    const ebpf = cells(r, w.id, m.key).find((c) => c.setup === 'ebpf');
    if (!ebpf || ebpf.summary.n === 0) continue;
    const parts: string[] = [];
    if (ebpf.vsHost.n) {
      const above = consistent(ebpf.vsHost) && ebpf.vsHost.median > 1.05;
      // A published port adds hops to host networking's path; beating it says the run was disturbed.
      parts.push(`${x(ebpf.vsHost.median)} host networking${above ? ' (above the ceiling in every repetition: host networking adds no hop, so something other than the datapath — load, scheduling — decided this row)' : ''}`);
    }
    if (ebpf.vsIptables.n) {
      const v = ebpf.vsIptables;
      parts.push(`${x(v.median)} the iptables datapath (${verdict(v)})`);
    }
    const docker = cells(r, w.id, m.key).find((c) => c.setup === 'docker28');
    if (docker) {
      const d = pairedRatio(ebpf.values, docker.values);
      if (d.n) parts.push(`${x(d.median)} Docker 28's own rules (${verdict(d)})`);
    }
    if (w.path === 'egress') {
      const rt = pairedRatio(ebpf.values, cells(r, w.id, m.key).find((c) => c.setup === 'routing')?.values ?? []);
      if (rt.n) parts.push(`${x(rt.median)} plain routing`);
    }
    if (!parts.length) continue;
    out.push(`${w.title}: the eBPF datapath (NIC-like uplink) reached ${parts.join(', ')}.`);
  }
  return out;
}

/** What the veth-only uplink shortcut changes, per published-port workload where both were measured. */
export function shortcutSentences(r: BenchResults): string[] {
  const rows: string[] = [];
  for (const w of r.workloads) {
    if (w.path !== 'published' || w.crossCheckOf) continue;
    const cs = cells(r, w.id, w.metrics[0].key);
    const on = cs.find((c) => c.setup === 'ebpf-shortcut');
    const off = cs.find((c) => c.setup === 'ebpf');
    if (!on || !off) continue;
    const s = pairedRatio(on.values, off.values);
    if (!s.n) continue;
    rows.push(`${w.title}: ${pct(s.median)} (${x(s.median)}; ${verdict(s)})`);
  }
  if (!rows.length) return [];
  return [`With the veth-only shortcut (bpf_redirect_peer into the uplink's peer) instead of a NIC-like uplink: ${rows.join('; ')}. The headline rows leave it off.`];
}

/** Where a cross-check client and the headline client disagree on a ratio, and what each client cost. */
export function crossCheckSentences(r: BenchResults): string[] {
  const out: string[] = [];
  const describe = (c: CrossCheck, which: 'vsIptables' | 'vsHost', against: string) => {
    const [a, b] = c[which];
    if (!a.n || !b.n) return undefined;
    const rel = Math.abs(b.median / a.median - 1);
    const agree = rel <= DISAGREEMENT;
    return { agree, text: `ebpf ÷ ${against} ${x(a.median)} with ${c.headlineClient}, ${x(b.median)} with ${c.checkClient}` };
  };
  for (const c of crossChecks(r)) {
    const parts = [describe(c, 'vsIptables', 'iptables'), describe(c, 'vsHost', 'host networking')].filter((p): p is NonNullable<typeof p> => p !== undefined);
    if (!parts.length) continue;
    const disagree = parts.some((p) => !p.agree);
    let sentence = `${c.headline} vs ${c.check}: ${parts.map((p) => p.text).join('; ')} — ${disagree ? `**the clients disagree** (by more than ${DISAGREEMENT * 100} %)` : 'the clients agree'}.`;
    const [cpuA, cpuB] = c.clientCpuPct;
    if (Number.isFinite(cpuA) && Number.isFinite(cpuB)) {
      const [ra, rb] = c.rate;
      sentence += ` On the eBPF setup ${c.headlineClient} used ${cpuA.toFixed(0)} % of a CPU for ${Math.round(ra).toLocaleString('en-US')}/s and ${c.checkClient} ${cpuB.toFixed(0)} % for ${Math.round(rb).toLocaleString('en-US')}/s`;
      const perA = cpuA / ra;
      const perB = cpuB / rb;
      if (disagree && Number.isFinite(perA) && Number.isFinite(perB) && perB > 1.5 * perA)
        sentence += ` (${(perB / perA).toFixed(1)}x the client CPU per request): on ${r.machine.cpus} vCPUs that CPU is taken from the server and the datapath being measured, so the ${c.checkClient} ratio is the less trustworthy one`;
      else if (disagree && Number.isFinite(perA) && Number.isFinite(perB) && perA > 1.5 * perB)
        sentence += ` (${c.headlineClient} needs ${(perA / perB).toFixed(1)}x the client CPU per request here, so its ratio is the less trustworthy one)`;
      sentence += '.';
    }
    out.push(sentence);
  }
  return out;
}

/** One sentence per dropped sample group, saying that it was dropped and why. */
export function droppedSentences(r: BenchResults): string[] {
  const dropped = droppedSamples(r);
  if (!dropped.length) return ['No sample was dropped: no client saw an error or a non-2xx response.'];
  return [
    `${dropped.length} sample${dropped.length === 1 ? ' was' : 's were'} dropped from the statistics because the client saw errors or non-2xx responses: ` +
      dropped.map((s) => `${s.workload} on ${s.setup}, repetition ${s.rep + 1} (${s.dropped})`).join('; ') +
      '.',
  ];
}

/** The uplink XDP measurement's conclusion. */
export function xdpSentences(r: BenchResults): string[] {
  const u = r.uplinkXdp;
  if (!u) return [];
  const s = pairedRatio(u.tcXdpGbps, u.tcGbps);
  if (!s.n) return [];
  if (consistent(s) && s.median < 0.95)
    return [`A no-op XDP program on the veth uplink cost ${((1 - s.median) * 100).toFixed(0)} % of one stream's throughput (${x(s.median)}, every repetition below 1x): an XDP published-port path would start that far behind, so the datapath stays on TC here.`];
  return [`A no-op XDP program on the veth uplink changed one stream's throughput by ${pct(s.median)} (${x(s.median)}; ${verdict(s)}): this run gives no measured reason to prefer TC over XDP on the uplink.`];
}

/** Every conclusion of the run, in report order. */
export function conclusions(r: BenchResults): string[] {
  return [...targetsSentence(r), ...standingSentences(r), ...shortcutSentences(r), ...crossCheckSentences(r), ...xdpSentences(r), ...droppedSentences(r)];
}

