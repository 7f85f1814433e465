/**
 * node dist/bench/bpf-cost.js [--reps N] [--base-objects [NAME=]DIR]... [--only ID,...] [--no-floor]
 *
 * Where the datapath's time goes, by the kernel's own run-time statistics: the bench's
 * published-port workloads (new connections, one request per connection, keep-alive) on the
 * ebpf setup and on the floor (the fixed stateless translation on the same hooks), with
 * `bpfstats` (bench/tools/bpfstats.c: BPF_ENABLE_STATS for as long as it runs, no sysctl)
 * reading every program attached in the simulated host over the measured part of each run.
 * Prints, per workload and setup, the machine's CPU time per request (all CPUs, /proc/stat), the
 * BPF time per request and its share of that, and per program the time per request, the runs
 * (packets) per request and the time per run: ebpf − floor is what the datapath's state and
 * checks cost per request. Run-time statistics add two clock reads to every program run while
 * they are on, the floor's as the datapath's.
 *
 * --only keeps the workloads whose ids start with one of the given prefixes (conn-published,
 * http-close-published, http-keepalive-published); --no-floor leaves the floor out.
 * With --base-objects DIR (lxc/uplink/host/bridge objects built from another commit or a
 * variant), one more setup runs those objects, interleaved with the others: a datapath change
 * measured as BPF time per request, which the machine's load moves far less than a rate. Given
 * more than once (NAME=DIR labels each), several variants run side by side.
 */
import { join } from 'node:path';
import type { Lab } from '../src/lab/lab.js';
import { withDatapathObjects } from './datapath-objects.js';
import { BpfnetSetup } from './setups/bpfnet.js';
import { FloorSetup } from './setups/floor.js';
import { TOOLS } from './setups/servers.js';
import type { Setup } from './setups/setup.js';
import { median } from './stats.js';
import { connPerRequestWorkload, newConnectionsWorkload } from './workloads/http.js';
import { wrkWorkload } from './workloads/wrk.js';
import type { Durations } from './workloads/workload.js';

const D: Durations = { iperf: 1, iperfOmit: 0, http: 3, httpWarmup: 0.5, conn: 3, connWarmup: 0.5 };
/** The statistics cover the middle of the measured part: it starts this late and ends this early. */
const MARGIN_S = 0.5;

interface ProgRun {
  id: number;
  name: string;
  runs: number;
  ns: number;
}

/** Every BPF program attached to a device of the simulated host (tc and tcx, both directions). */
async function attachedPrograms(lab: Lab): Promise<number[]> {
  const out = JSON.parse(await lab.exec(lab.host, 'bpftool', ['-j', 'net', 'show'])) as Array<Record<string, Array<{ prog_id?: number; id?: number }>>>;
  const ids = new Set<number>();
  for (const section of out)
    for (const [kind, entries] of Object.entries(section)) {
      if (kind === 'xdp' || !Array.isArray(entries)) continue;
      for (const e of entries) {
        const id = e.prog_id ?? e.id;
        if (typeof id === 'number') ids.add(id);
      }
    }
  return [...ids];
}

async function bpfStats(lab: Lab, ids: number[], seconds: number): Promise<ProgRun[]> {
  const out = JSON.parse(await lab.exec(lab.host, join(TOOLS, 'bpfstats'), [String(seconds), ...ids.map(String)])) as { progs: ProgRun[] };
  return out.progs;
}

/** Per program name: BPF ns and runs per request, summed over programs of that name. */
function perRequest(progs: ProgRun[], seconds: number, rps: number): Map<string, { ns: number; runs: number }> {
  const requests = rps * seconds;
  const m = new Map<string, { ns: number; runs: number }>();
  for (const p of progs) {
    if (p.runs === 0) continue;
    const cur = m.get(p.name) ?? { ns: 0, runs: 0 };
    cur.ns += p.ns / requests;
    cur.runs += p.runs / requests;
    m.set(p.name, cur);
  }
  return m;
}

/** The objects a variant replaces: every program the ebpf setup attaches. */
const DATAPATH_OBJECTS = ['lxc', 'uplink', 'host', 'bridge'];

async function main(argv: string[]): Promise<void> {
  const repsAt = argv.indexOf('--reps');
  const reps = repsAt >= 0 ? Number(argv[repsAt + 1]) : 3;
  const bases = argv.flatMap((a, i) => (a === '--base-objects' ? [argv[i + 1]] : [])).map((v, i) => {
    const eq = v.indexOf('=');
    return eq > 0 ? { label: v.slice(0, eq), dir: v.slice(eq + 1) } : { label: i ? `base${i + 1}` : 'base', dir: v };
  });
  const onlyAt = argv.indexOf('--only');
  const only = onlyAt >= 0 ? argv[onlyAt + 1].split(',') : undefined;
  const workloads = [
    newConnectionsWorkload('published', 'new connections, published port (per connection)', true),
    connPerRequestWorkload('published', 'one request per connection, published port (per request)', true),
    wrkWorkload('published', false, 'HTTP keep-alive, published port (per request)', true),
  ].filter((w) => !only || only.some((o) => w.id.startsWith(o)));
  const setups: Array<{ label: string; setup: Setup }> = [];
  try {
    // The daemon loads its objects once at start: the base setup starts with the base objects in place.
    for (const b of bases) setups.push({ label: b.label, setup: await withDatapathObjects(b.dir, DATAPATH_OBJECTS, () => BpfnetSetup.create('ebpf')) });
    setups.push({ label: 'ebpf', setup: await BpfnetSetup.create('ebpf') });
    if (!argv.includes('--no-floor')) setups.push({ label: 'floor', setup: await FloorSetup.create() });
    const ids = new Map<string, number[]>();
    for (const s of setups) ids.set(s.label, await attachedPrograms(s.setup.lab));
    // samples[workload][setup] = one Map per repetition, plus the rates
    const samples = new Map<string, Map<string, Array<{ rps: number; cpuNs: number; progs: Map<string, { ns: number; runs: number }> }>>>();
    for (let rep = 0; rep < reps; rep++)
      for (const w of workloads)
        for (let k = 0; k < setups.length; k++) {
          const { label, setup } = setups[(k + rep) % setups.length];
          const target = setup.targets[w.path]!;
          const seconds = (w.client === 'wrk' ? D.http : D.conn) - 2 * MARGIN_S;
          const warm = (w.client === 'wrk' ? D.httpWarmup : D.connWarmup) + MARGIN_S;
          const stats = new Promise<ProgRun[]>((resolve, reject) => setTimeout(() => bpfStats(setup.lab, ids.get(label)!, seconds).then(resolve, reject), warm * 1000));
          const [r, progs] = await Promise.all([w.run(setup.lab, target, D), stats]);
          const row = samples.get(w.id) ?? new Map();
          samples.set(w.id, row);
          const list = row.get(label) ?? [];
          row.set(label, list);
          list.push({ rps: r.metrics.rps, cpuNs: r.metrics.cpuPer1k * 1e6, progs: perRequest(progs, seconds, r.metrics.rps) });
          process.stderr.write(`rep ${rep + 1}/${reps} ${w.id} ${label}: ${r.metrics.rps.toFixed(0)}/s\n`);
        }
    const lines: string[] = [];
    for (const w of workloads) {
      lines.push(
        `\n${w.title}\n`,
        '| setup | rate /s | machine CPU ns per request | BPF ns per request | BPF share | program: ns per request (runs per request, ns per run) |',
        '|---|---:|---:|---:|---:|---|',
      );
      for (const { label } of setups) {
        const list = samples.get(w.id)!.get(label)!;
        const names = [...new Set(list.flatMap((s) => [...s.progs.keys()]))].sort();
        const totals = list.map((s) => [...s.progs.values()].reduce((a, p) => a + p.ns, 0));
        const total = median(totals);
        const share = median(list.map((s, i) => totals[i] / s.cpuNs));
        const parts = names.map((n) => {
          const ns = median(list.map((s) => s.progs.get(n)?.ns ?? 0));
          const runs = median(list.map((s) => s.progs.get(n)?.runs ?? 0));
          return `${n}: ${ns.toFixed(0)} (${runs.toFixed(1)}, ${(ns / runs).toFixed(0)})`;
        });
        const cpu = median(list.map((s) => s.cpuNs));
        lines.push(`| ${label} | ${median(list.map((s) => s.rps)).toFixed(0)} | ${cpu.toFixed(0)} | ${total.toFixed(0)} | ${(100 * share).toFixed(1)} % | ${parts.join('; ')} |`);
      }
    }
    process.stdout.write(`${lines.join('\n')}\n\nmedians of ${reps} interleaved repetitions; statistics over ${D.conn - 2 * MARGIN_S} s of each run\n`);
  } finally {
    for (const { setup } of setups) await setup.destroy();
  }
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
