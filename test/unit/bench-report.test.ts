// From raw samples to the report: series by repetition, paired ratios per setup (host networking,
// iptables, direct veth), the sweep, the control plane, the targets, the markdown tables,
// the README block, and the command line.
import { describe, expect, it } from 'vitest';
import { cells, controlRows, publishMs, series, sweepRows, targets } from '../../bench/report/analysis.js';
import { cell, num, ratioCell, readmeBlock, renderMarkdown } from '../../bench/report/markdown.js';
import { targetsSentence } from '../../bench/report/conclusions.js';
import { README_BEGIN, README_END, replaceBetweenMarkers } from '../../bench/report/write.js';
import { parseArgs, selected } from '../../bench/options.js';
import type { BenchResults, DataSample, SweepSample } from '../../bench/results-model.js';
import type { SetupName } from '../../bench/setups/setup.js';

const gbps = { key: 'gbps', label: 'Gb/s', unit: 'Gb/s', better: 'higher' as const };
const rps = { key: 'rps', label: 'req/s', unit: 'req/s', better: 'higher' as const };

function data(workload: string, metric: string, values: Partial<Record<SetupName, number[]>>): DataSample[] {
  return Object.entries(values).flatMap(([setup, xs]) =>
    xs!.map((v, rep) => (Number.isNaN(v) ? { workload, setup: setup as SetupName, rep, metrics: {}, error: 'failed' } : { workload, setup: setup as SetupName, rep, metrics: { [metric]: v } })),
  );
}

function sweep(setup: SetupName, ports: number, rates: number[], createMs: number, baselineMs: number): SweepSample[] {
  return rates.map((r, rep) => ({ setup, ports, rep, createMs, baselineMs, metrics: { rps: r, p99Us: 1000 } }));
}

function results(): BenchResults {
  return {
    schema: 2,
    command: 'npm run bench',
    quick: false,
    reps: 3,
    orderSeed: 42,
    startedAt: '2026-11-22T09:00:00.000Z',
    finishedAt: '2026-11-22T09:15:30.000Z',
    machine: {
      kernel: '6.18',
      cpus: 2,
      cpuModel: 'test',
      memoryGiB: 24,
      node: 'v20',
      iperf3: 'iperf 3.12',
      autocannon: '9.0.0',
      wrk: 'wrk 4.1.0',
      iptables: 'iptables v1.8.9 (nf_tables)',
      cniPlugins: 'containernetworking-plugins 1.1.1',
      commit: 'abc123',
      loadBefore: [0.1, 0.2, 0.3],
      loadAfter: [1.5, 1, 0.5],
    },
    setups: (['host', 'veth', 'routing', 'ebpf', 'iptables', 'cni'] as const).map((name) => ({ name, description: `${name} setup`, info: {} })),
    workloads: [
      { id: 'tcp-published-1', title: 'TCP published', path: 'published', metrics: [gbps] },
      { id: 'http-keepalive-published', title: 'HTTP keep-alive published', path: 'published', metrics: [rps] },
      { id: 'conn-egress', title: 'New connections egress', path: 'egress', metrics: [rps] },
    ],
    samples: [
      ...data('tcp-published-1', 'gbps', { host: [10, 12, 11], veth: [20, 20, 20], ebpf: [9.8, 11.4, 10.5], iptables: [8, 9, NaN], cni: [7, 8, 7.5] }),
      ...data('http-keepalive-published', 'rps', { host: [40000, 40000, 40000], ebpf: [36000, 37000, 38000], iptables: [20000, 20000, 20000] }),
      ...data('conn-egress', 'rps', { routing: [20000, 20000, 20000], ebpf: [19000, 19500, 20000], iptables: [5000, 5000, 5000] }),
    ],
    sweep: {
      ports: [1, 10000],
      samples: [...sweep('ebpf', 1, [10000, 10000, 10000], 60, 50), ...sweep('ebpf', 10000, [9900, 9800, 10000], 80, 50), ...sweep('iptables', 1, [8000, 8000, 8000], 70, 50), ...sweep('iptables', 10000, [800, 900, 1000], 1200, 50)],
    },
    controlPlane: {
      sandboxes: 4,
      samples: [
        { setup: 'ebpf', rep: 0, timesMs: [10, 20, 30, 40] },
        { setup: 'ebpf', rep: 1, timesMs: [10, 10, 10, 100] },
        { setup: 'iptables', rep: 0, timesMs: [20, 40, 60, 80] },
        { setup: 'iptables', rep: 1, timesMs: [20, 20, 20, 20] },
        { setup: 'cni', rep: 0, timesMs: [], error: 'boom' },
      ],
    },
    notes: ['a note'],
  };
}

describe('analysis', () => {
  it('lays samples out by repetition, NaN where one failed', () => {
    expect(series(results().samples, 'tcp-published-1', 'iptables', 'gbps', 3)).toEqual([8, 9, NaN]);
    expect(series(results().samples, 'tcp-published-1', 'routing', 'gbps', 3)).toEqual([NaN, NaN, NaN]);
  });

  it('gives each setup its median and ratios to host networking, iptables and the veth pair, paired per repetition', () => {
    const cs = cells(results(), 'tcp-published-1', 'gbps');
    expect(cs.map((c) => c.setup)).toEqual(['host', 'veth', 'ebpf', 'iptables', 'cni']);
    const ebpf = cs.find((c) => c.setup === 'ebpf')!;
    expect(ebpf.summary).toEqual({ n: 3, median: 10.5, min: 9.8, max: 11.4 });
    expect(ebpf.vsHost.median).toBeCloseTo(0.95);
    expect(ebpf.vsHost.min).toBeCloseTo(0.95);
    expect(ebpf.vsVeth.median).toBeCloseTo(0.525);
    // iptables failed in rep 3: only reps 1 and 2 pair.
    expect(ebpf.vsIptables.n).toBe(2);
    expect(ebpf.vsIptables.min).toBeCloseTo(9.8 / 8);
    expect(ebpf.vsIptables.max).toBeCloseTo(11.4 / 9);
  });

  it('reports publishing time as create-with-ports minus create-without, and conn/s against one port', () => {
    expect(publishMs({ setup: 'ebpf', ports: 1, rep: 0, createMs: 75, baselineMs: 50, metrics: {} })).toBe(25);
    const rows = sweepRows(results());
    const ipt10k = rows.find((r) => r.setup === 'iptables' && r.ports === 10000)!;
    expect(ipt10k.vsOnePort.median).toBeCloseTo(0.1125);
    expect(ipt10k.publishMs.median).toBe(1150);
    expect(rows.filter((r) => r.setup === 'cni')).toEqual([]);
  });

  it('pools control-plane times for p50/p99 and pairs per-repetition p50s', () => {
    const rows = controlRows(results());
    expect(rows.map((r) => r.setup)).toEqual(['ebpf', 'iptables']);
    const ebpf = rows[0];
    expect(ebpf.n).toBe(8);
    expect(ebpf.p50).toBe(15);
    expect(ebpf.perRepP50).toEqual({ n: 2, median: 17.5, min: 10, max: 25 });
    expect(ebpf.vsIptablesP50.min).toBeCloseTo(0.5);
  });

  it("measures the issue's targets against host networking, iptables and routing, and says which are met", () => {
    const t = Object.fromEntries(targets(results()).map((x) => [x.id, x]));
    expect(t['stream-vs-host'].measured.median).toBeCloseTo(0.95);
    expect(t['stream-vs-host'].met).toBe(true);
    expect(t['keepalive-vs-host'].measured.median).toBeCloseTo(0.925);
    expect(t['keepalive-vs-host'].met).toBe(false);
    expect(t['masq-vs-routing'].measured.median).toBeCloseTo(0.975);
    expect(t['masq-vs-routing'].met).toBe(true);
    // No publish section: the sweep's 10,000-port runs (80 - 50 ms each) stand in.
    expect(t['publish-10k'].measured.median).toBe(30);
    expect(t['publish-10k'].met).toBe(false);
    expect(t['publish-10k-p99'].met).toBe(true);
    // Nothing measured: neither met nor missed.
    expect(t['conn-vs-host'].met).toBeUndefined();
    expect(t['close-vs-host'].measured.n).toBe(0);
  });

  it('sets each ratio target beside the same ratio without bpfnet, and says when the target lies beyond it', () => {
    const r = results();
    r.samples.push(...data('http-keepalive-published', 'rps', { routing: [37000, 37000, 37000] }));
    const t = Object.fromEntries(targets(r).map((x) => [x.id, x]));
    // Plain routing takes the published port's hop without NAT or state: 37,000 ÷ 40,000.
    expect(t['keepalive-vs-host'].reference?.label).toBe('plain routing ÷ host');
    expect(t['keepalive-vs-host'].reference?.measured.median).toBeCloseTo(0.925);
    expect(t['stream-vs-host'].reference).toBeUndefined(); // no routing samples for it
    expect(t['stream-vs-host'].measured.n).toBeGreaterThan(0);
    const said = targetsSentence(r).join(' ');
    expect(said).toMatch(/Beyond what the path allows in this run .*Published port, HTTP keep-alive req\/s, vs host networking — plain routing ÷ host 0\.925x, the eBPF datapath 0\.925x/);
    // Without the routing samples nothing is said to be beyond the path.
    expect(targetsSentence(results()).join(' ')).not.toMatch(/Beyond/);
  });

  it('times publishing from the publish section when there is one: median and p99 over its runs', () => {
    const r = results();
    r.publish = { ports: 10000, samples: Array.from({ length: 10 }, (_, run) => ({ setup: 'ebpf' as const, run, createMs: 60 + (run === 9 ? 100 : run), baselineMs: 50 })) };
    const t = Object.fromEntries(targets(r).map((x) => [x.id, x]));
    expect(t['publish-10k'].measured.n).toBe(10);
    expect(t['publish-10k'].measured.median).toBeCloseTo(14.5);
    expect(t['publish-10k'].met).toBe(true);
    // One slow run of 110 ms pulls the p99 over 40 ms.
    expect(t['publish-10k-p99'].measured.median).toBeGreaterThan(40);
    expect(t['publish-10k-p99'].met).toBe(false);
  });
});

describe('markdown', () => {
  it('formats numbers to about three significant digits', () => {
    expect(num(31693.34)).toBe('31,693');
    expect(num(123.4)).toBe('123');
    expect(num(12.34)).toBe('12.3');
    expect(num(1.234)).toBe('1.23');
    expect(num(0.01234)).toBe('0.012');
    expect(num(NaN)).toBe('—');
  });

  it('writes a summary as median (min–max) and a ratio as 0.95x (min–max)', () => {
    expect(cell({ n: 3, median: 10, min: 9, max: 12 })).toBe('10.0 (9.00–12.0)');
    expect(cell({ n: 1, median: 10, min: 10, max: 10 })).toBe('10.0');
    expect(cell({ n: 0, median: NaN, min: NaN, max: NaN })).toBe('—');
    expect(ratioCell({ n: 3, median: 0.953, min: 0.91, max: 1.02 })).toBe('0.95x (0.91–1.02)');
    expect(ratioCell({ n: 3, median: 0.8967, min: 0.895, max: 0.98 }, 3)).toBe('0.897x (0.895–0.980)');
  });

  it('renders targets, the summary matrix, every workload, the sweep and the control plane', () => {
    const md = renderMarkdown(results(), './');
    expect(md).toContain('# bpfnet benchmark, 2026-11-22 09:00 UTC');
    expect(md).toContain('`npm run bench` — 3 repetitions');
    expect(md).toContain('seed 42');
    expect(md).toContain('commit abc123');
    expect(md).toContain('Ran 15 min 30 s');
    expect(md).toContain('| Published port, one TCP stream, vs host networking | 0.955x (0.950–0.980) | ≥ 0.95x | met |');
    expect(md).toContain('| Published port, HTTP keep-alive req/s, vs host networking | 0.925x (0.900–0.950) | ≥ 0.95x | **missed** |');
    expect(md).toContain('| New TCP connections/s, published port, vs host networking | — | ≥ 0.90x | not measured |');
    expect(md).toContain('| workload | host | veth | routing | ebpf | iptables | cni | ebpf ÷ host | ebpf ÷ iptables | shortcut ÷ ebpf |');
    expect(md).toContain('| TCP published — Gb/s | 11.0 | 20.0 |  | 10.5 | 8.50 | 7.50 | 0.95x | 1.25x | — |');
    expect(md).toContain('| ebpf | 10.5 (9.80–11.4) | 0.95x (0.95–0.98) | 1.25x (1.23–1.27) | 0.53x (0.49–0.57) |');
    expect(md).toContain('## What this run shows');
    expect(md).toContain('| iptables | 10,000 | 900 (800–1,000) | 0.11x (0.10–0.13) | 1,000 | 1,150 |');
    expect(md).toContain('| ebpf | 8 | 15.0 | 95.8 | 17.5 (10.0–25.0) | 0.50x |');
    expect(md).toContain('![scaling](./scaling.svg)');
    expect(md).toContain('- a note');
  });

  it('pairs TC alone against TC + XDP on the uplink per repetition, and leaves the section out when not run', () => {
    const md = renderMarkdown({ ...results(), uplinkXdp: { tcGbps: [10, 12, 11], tcXdpGbps: [2.5, 2.4, 3.3], errors: [] } });
    expect(md).toContain('## XDP or TC on the uplink');
    expect(md).toContain('| TC programs only (what bpfnet runs) | 11.0 (10.0–12.0) | 1.00x |');
    expect(md).toContain('| TC + a no-op XDP program on the uplink | 2.50 (2.40–3.30) | 0.25x (0.20–0.30) |');
    expect(md).not.toContain('Hence TC');
    expect(md).toContain('A no-op XDP program on the veth uplink cost 75 %');
    expect(renderMarkdown(results())).not.toContain('XDP or TC');
  });

  it('leaves out the charts when no directory is given', () => {
    expect(renderMarkdown(results())).not.toContain('.svg');
  });
});

describe('README block', () => {
  it('carries the commit, the seed, the targets, the summary and the conclusions, between the markers only', () => {
    const block = readmeBlock(results(), 'bench/results/latest.md');
    expect(block).toContain('Measured at commit abc123');
    expect(block).toContain('setup order seed 42');
    expect(block).toContain('### Targets');
    expect(block).toContain('| workload | host |');
    expect(block).toContain('### What this run shows');
    const readme = `# x\n\n## Performance\n\nintro\n\n${README_BEGIN}\nold numbers\n${README_END}\n\nafter\n`;
    const out = replaceBetweenMarkers(readme, block);
    expect(out).not.toContain('old numbers');
    expect(out.startsWith('# x\n\n## Performance\n\nintro\n\n')).toBe(true);
    expect(out.endsWith(`${README_END}\n\nafter\n`)).toBe(true);
    expect(() => replaceBetweenMarkers('# no markers\n', block)).toThrow(/README.md has no/);
  });
});

describe('command line', () => {
  it('defaults to a full run of 5 repetitions on every setup, writing the README', () => {
    expect(parseArgs([])).toEqual({ quick: false, reps: 5, setups: ['host', 'veth', 'routing', 'floor', 'ebpf', 'ebpf-shortcut', 'iptables', 'docker28', 'cni', 'docker', 'docker+bpfnet', 'docker+floor'], help: false, readme: true, plan: false });
  });

  it('runs 3 repetitions with --quick, and writes the README only from a complete full run', () => {
    expect(parseArgs(['--quick'])).toMatchObject({ reps: 3, readme: false });
    expect(parseArgs(['--only', 'tcp']).readme).toBe(false);
    expect(parseArgs(['--setups', 'ebpf']).readme).toBe(false);
    expect(parseArgs(['--out', '/tmp/x']).readme).toBe(false);
    expect(parseArgs(['--no-readme']).readme).toBe(false);
    expect(parseArgs(['--seed', '7']).seed).toBe(7);
    expect(() => parseArgs(['--seed', '-1'])).toThrow(/--seed/);
  });

  it('takes --quick, --reps, --only, --setups and --out', () => {
    const o = parseArgs(['--quick', '--reps', '5', '--only', 'tcp,sweep', '--setups', 'ebpf,iptables', '--out', '/tmp/x']);
    expect(o).toMatchObject({ quick: true, reps: 5, only: ['tcp', 'sweep'], setups: ['ebpf', 'iptables'], out: '/tmp/x' });
  });

  it('refuses what it does not know', () => {
    expect(() => parseArgs(['--reps', '0'])).toThrow(/positive integer/);
    expect(() => parseArgs(['--setups', 'dockerd'])).toThrow(/unknown setup dockerd/);
    expect(() => parseArgs(['--fast'])).toThrow(/unknown argument --fast/);
    expect(() => parseArgs(['--only'])).toThrow(/needs a value/);
  });

  it('selects workloads by id or by prefix up to a dash', () => {
    const o = parseArgs(['--only', 'tcp,conn-egress,control']);
    expect(selected(o, 'tcp-published-1')).toBe(true);
    expect(selected(o, 'conn-egress')).toBe(true);
    expect(selected(o, 'conn-published')).toBe(false);
    expect(selected(o, 'control')).toBe(true);
    expect(selected(o, 'sweep')).toBe(false);
    expect(selected(parseArgs([]), 'sweep')).toBe(true);
  });
});
