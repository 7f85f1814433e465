/** The results as markdown: targets, a summary matrix, one table per workload, the sweep, the control plane, DNS. Pure. */
import { pairedRatio, summarize, type Summary } from '../stats.js';
import type { BenchResults } from '../results-model.js';
import { SETUP_ORDER, cells, controlRows, crossChecks, familyRows, sweepRows, targets, type TargetResult } from './analysis.js';
import { conclusions, xdpSentences } from './conclusions.js';
import { overlayMarkdown } from './overlay.js';

/** A number with about three significant digits, thousands separated. */
export function num(x: number): string {
  if (!Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return '0';
  return x.toPrecision(2);
}

/** "median (min–max)", or the value alone when there is one sample. */
export function cell(s: Summary, f: (x: number) => string = num): string {
  if (s.n === 0) return '—';
  if (s.n === 1 || s.min === s.max) return f(s.median);
  return `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

export const ratio = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}x` : '—');

/** A ratio summary as "0.97x (0.95–0.99)" (digits: decimals, 3 where a target is compared). */
export function ratioCell(s: Summary, digits = 2): string {
  if (s.n === 0) return '—';
  const x = `${s.median.toFixed(digits)}x`;
  if (s.n === 1 || s.min === s.max) return x;
  return `${x} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

function table(header: string[], rows: string[][]): string {
  const line = (cols: string[]) => `| ${cols.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

function targetsTable(ts: TargetResult[]): string {
  return table(
    ['target (eBPF datapath, NIC-like uplink)', 'measured', 'target', 'result', 'the same without bpfnet', 'the floor on the same hooks'],
    ts.map((t) => [
      t.label,
      // Three decimals: a 0.897x must not read as a 0.90x that missed a 0.90x target.
      t.unit === 'x' ? ratioCell(t.measured, 3) : cell(t.measured, (x) => `${num(x)} ms`),
      `${t.op === '>=' ? '≥' : '≤'} ${t.unit === 'x' ? ratio(t.target) : `${t.target} ms`}`,
      t.met === undefined ? 'not measured' : t.met ? 'met' : '**missed**',
      t.reference ? `${t.reference.label} ${ratioCell(t.reference.measured, 3)}` : '—',
      t.bound ? `${t.bound.label} ${ratioCell(t.bound.measured, 3)}` : '—',
    ]),
  );
}

/** The summary matrix: one row per workload headline, one column per setup, then ebpf's ratios. */
export function summaryTable(r: BenchResults): string {
  const setups = SETUP_ORDER.filter((s) => r.setups.some((x) => x.name === s));
  const withDocker = setups.includes('docker28');
  const rows: string[][] = [];
  for (const w of r.workloads) {
    const m = w.metrics[0];
    const cs = cells(r, w.id, m.key);
    if (cs.length === 0) continue;
    const by = new Map(cs.map((c) => [c.setup, c]));
    const ebpf = by.get('ebpf');
    const shortcut = by.get('ebpf-shortcut');
    const docker = by.get('docker28');
    rows.push([
      `${w.title} — ${m.label}`,
      ...setups.map((s) => (by.has(s) ? num(by.get(s)!.summary.median) : '')),
      ebpf ? ratio(ebpf.vsHost.median) : '—',
      ebpf ? ratio(ebpf.vsIptables.median) : '—',
      ...(withDocker ? [ebpf && docker ? ratio(pairedRatio(ebpf.values, docker.values).median) : '—'] : []),
      ebpf && shortcut ? ratio(pairedRatio(shortcut.values, ebpf.values).median) : '—',
    ]);
  }
  return table(['workload', ...setups, 'ebpf ÷ host', 'ebpf ÷ iptables', ...(withDocker ? ['ebpf ÷ docker28'] : []), 'shortcut ÷ ebpf'], rows);
}

function workloadTables(r: BenchResults): string {
  const parts: string[] = [];
  for (const w of r.workloads) {
    const head = w.metrics[0];
    const main = cells(r, w.id, head.key);
    if (main.length === 0) continue;
    const others = w.metrics.slice(1).map((m) => ({ m, cs: new Map(cells(r, w.id, m.key).map((c) => [c.setup, c])) }));
    parts.push(
      `### ${w.title}\n\n` +
        table(
          ['setup', `${head.label} median (min–max)`, '÷ host', '÷ iptables', '÷ veth', ...others.map((o) => o.m.label)],
          main.map((c) => [c.setup, cell(c.summary), ratioCell(c.vsHost), ratioCell(c.vsIptables), ratioCell(c.vsVeth), ...others.map((o) => cell(o.cs.get(c.setup)?.summary ?? summarize([])))]),
        ),
    );
  }
  return parts.join('\n\n');
}

/** IPv6 ÷ IPv4 per setup; host networking's column is what the kernel's own IPv6 path costs, the bound for the others. */
function familyTable(r: BenchResults): string {
  const rows = familyRows(r);
  if (rows.length === 0) return '';
  const setups = SETUP_ORDER.filter((s) => rows.some((row) => row.bySetup.some((b) => b.setup === s)));
  return table(
    ['workload', ...setups.map((s) => `${s} IPv6 ÷ IPv4`)],
    rows.map((row) => [row.title, ...setups.map((s) => ratioCell(row.bySetup.find((b) => b.setup === s)?.ratio ?? summarize([])))]),
  );
}

function sweepTable(r: BenchResults): string {
  const rows = sweepRows(r);
  if (rows.length === 0) return '';
  return table(
    ['setup', 'published ports', 'conn/s median (min–max)', '÷ 1 port', 'p99 µs', 'time to publish, ms'],
    rows.map((x) => [x.setup, x.ports.toLocaleString('en-US'), cell(x.rate), ratioCell(x.vsOnePort), cell(x.p99Us), cell(x.publishMs)]),
  );
}

function controlTable(r: BenchResults): string {
  const rows = controlRows(r);
  if (rows.length === 0) return '';
  return table(
    ['setup', 'sandboxes timed', 'p50 ms', 'p99 ms', 'p50 per repetition, ms', 'p50 ÷ iptables'],
    rows.map((x) => [x.setup, String(x.n), num(x.p50), num(x.p99), cell(x.perRepP50), ratioCell(x.vsIptablesP50)]),
  );
}

function dnsTable(r: BenchResults): string {
  if (!r.dns) return '';
  const rows = r.dns.setups.map((s) => [s.name, cell(summarize(s.qps)), cell(summarize(s.p50Ms)), cell(summarize(s.p99Ms))]);
  const base = r.dns.setups[0];
  const ratios = r.dns.setups.slice(1).map((s) => `${s.name} ÷ ${base.name}: ${ratioCell(pairedRatio(s.qps, base.qps))}`);
  return [table(['setup', 'queries/s', 'p50 ms', 'p99 ms'], rows), ratios.length ? `\nqueries/s ${ratios.join('; ')}` : '', ...r.dns.notes.map((n) => `\n- ${n}`)].join('\n');
}

function uplinkXdpTable(r: BenchResults): string {
  const x = r.uplinkXdp;
  if (!x || (x.tcGbps.length === 0 && x.tcXdpGbps.length === 0)) return '';
  const rows = [
    ['TC programs only (what bpfnet runs)', cell(summarize(x.tcGbps)), '1.00x'],
    ['TC + a no-op XDP program on the uplink', cell(summarize(x.tcXdpGbps)), ratioCell(pairedRatio(x.tcXdpGbps, x.tcGbps))],
  ];
  return [
    table(['uplink (ebpf, external client → published port, 1 TCP stream)', 'Gb/s median (min–max)', '÷ TC only'], rows),
    ...xdpSentences(r).map((s) => `\n${s}`),
    ...x.errors.map((e) => `\n- failed: ${e}`),
  ].join('\n');
}

/** The same paths under two clients: ebpf's ratios under each, and what each client cost. */
function crossCheckTable(r: BenchResults): string {
  const cs = crossChecks(r);
  if (!cs.length) return '';
  return table(
    ['path', 'clients', 'ebpf ÷ iptables', 'ebpf ÷ host', 'ebpf req/s', 'client CPU % (ebpf)'],
    cs.map((c) => [
      c.headline,
      `${c.headlineClient} / ${c.checkClient}`,
      `${ratioCell(c.vsIptables[0])} / ${ratioCell(c.vsIptables[1])}`,
      `${ratioCell(c.vsHost[0])} / ${ratioCell(c.vsHost[1])}`,
      `${num(c.rate[0])} / ${num(c.rate[1])}`,
      `${num(c.clientCpuPct[0])} / ${num(c.clientCpuPct[1])}`,
    ]),
  );
}

/** The block the README's Performance section carries: generated, pasted by the writer between markers. */
export function readmeBlock(r: BenchResults, resultsLink: string): string {
  return [
    `Measured at commit ${r.machine.commit} on ${r.startedAt.slice(0, 10)} with \`${r.command}\` (${r.reps} repetitions, setup order seed ${r.orderSeed}); raw samples and every table: [${resultsLink}](${resultsLink}).`,
    machineLine(r),
    `### Targets\n\n${targetsTable(targets(r))}`,
    `### Summary (medians; ratios are medians of per-repetition ratios)\n\n${summaryTable(r)}`,
    ...(familyRows(r).length ? [`### IPv6 ÷ IPv4 (same client, same path; host networking: the kernel's own IPv6 cost)\n\n${familyTable(r)}`] : []),
    `### What this run shows\n\n${conclusions(r).map((c) => `- ${c}`).join('\n')}`,
    ...(r.overlay ? [`### Overlay across hosts (five hosts, one etcd)\n\n${overlayMarkdown(r.overlay, { notes: false })}`] : []),
  ].join('\n\n');
}

/** The header: when, what command, on what machine, how quiet it was. */
export function machineLine(r: BenchResults): string {
  const m = r.machine;
  return [
    `Linux ${m.kernel}, ${m.cpus} vCPU (${m.cpuModel}), ${m.memoryGiB} GiB; Node ${m.node}; ${m.iperf3}; autocannon ${m.autocannon}; ${m.wrk ?? 'wrk unknown'}; ${m.iptables}; ${m.cniPlugins}; commit ${m.commit}.`,
    `Load average at start ${m.loadBefore.map((x) => x.toFixed(2)).join(' ')}, at end ${m.loadAfter.map((x) => x.toFixed(2)).join(' ')}` +
      (m.loadDuring ? `; during the run median ${m.loadDuring.median.toFixed(2)}, max ${m.loadDuring.max.toFixed(2)}.` : '.'),
  ].join(' ');
}

export function renderMarkdown(r: BenchResults, chartsDir?: string): string {
  const dur = Math.round((Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000);
  const out: string[] = [];
  out.push(`# bpfnet benchmark${r.quick ? ' (quick)' : ''}, ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC`);
  out.push(
    `\`${r.command}\` — ${r.reps} repetitions; in each, every workload runs its setups in a seeded shuffle rotated by one per repetition (seed ${r.orderSeed}, recorded in the results); medians with min–max; ratios are paired per repetition. ` +
      `Ran ${Math.floor(dur / 60)} min ${dur % 60} s.\n\n${machineLine(r)}`,
  );
  out.push(`## Targets\n\n${targetsTable(targets(r))}`);
  out.push(`## What this run shows\n\n${conclusions(r).map((c) => `- ${c}`).join('\n')}`);
  out.push(
    `## Summary (medians)\n\n${summaryTable(r)}\n\nThe ratio columns are medians of the per-repetition ratios (setups measured side by side), so they can differ from the quotient of the medians beside them.`,
  );
  if (chartsDir !== undefined) {
    out.push(
      ['throughput', 'requests', 'scaling', 'latency'].map((c) => `![${c}](${chartsDir}${c}.svg)`).join('\n'),
    );
  }
  const family = familyTable(r);
  if (family) out.push(`## IPv6 ÷ IPv4\n\nEach setup's IPv6 rate over its IPv4 rate on the same path with the same client, paired per repetition. Host networking has no bpfnet in the path: its column is what the kernel's own IPv6 stack costs here, the bound for the datapaths.\n\n${family}`);
  const sweep = sweepTable(r);
  if (sweep) out.push(`## Scaling with published ports\n\nNew TCP connections/s to the last-published port (the one a linear rule list reaches last), through the published range. Time to publish: creating the sandbox with its ports minus the median of three identical creations without; the 1-port row shows how far that difference strays when almost nothing is published.\n\n${sweep}`);
  const control = controlTable(r);
  if (control) out.push(`## Control plane: create and attach ${r.controlPlane.sandboxes} sandboxes, one after another\n\n${control}`);
  const dns = dnsTable(r);
  if (dns) out.push(`## DNS\n\n${dns}`);
  const xdp = uplinkXdpTable(r);
  if (xdp) out.push(`## XDP or TC on the uplink\n\n${xdp}`);
  if (r.overlay) out.push(`## Overlay across hosts (five hosts, one etcd)\n\n${overlayMarkdown(r.overlay)}`);
  const cross = crossCheckTable(r);
  if (cross) out.push(`## Clients side by side (headline / cross-check)\n\n${cross}`);
  out.push(`## Each workload\n\n${workloadTables(r)}`);
  const info = (i: Record<string, string>) => (Object.keys(i).length ? ` (${Object.entries(i).map(([k, v]) => `${k}: ${v}`).join('; ')})` : '');
  out.push(`## Setups\n\n${r.setups.map((s) => `- **${s.name}**: ${s.description}${info(s.info)}`).join('\n')}`);
  if (r.notes.length) out.push(`## Notes\n\n${r.notes.map((n) => `- ${n}`).join('\n')}`);
  return out.join('\n\n') + '\n';
}
