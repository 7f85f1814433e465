// From raw samples to the report: series by repetition, paired ratios per setup, the sweep,
// the control plane, the targets, the markdown tables, and the command line.
import { describe, expect, it } from 'vitest';
import { cells, controlRows, publishMs, series, sweepRows, targets } from '../../bench/report/analysis.js';
import { cell, num, ratioCell, renderMarkdown } from '../../bench/report/markdown.js';
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
    schema: 1,
    command: 'npm run bench',
    quick: false,
    reps: 3,
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
      iptables: 'iptables v1.8.9 (nf_tables)',
      cniPlugins: 'containernetworking-plugins 1.1.1',
      commit: 'abc123',
      loadBefore: [0.1, 0.2, 0.3],
      loadAfter: [1.5, 1, 0.5],
    },
    setups: (['ceiling', 'routing', 'ebpf', 'iptables', 'cni'] as const).map((name) => ({ name, description: `${name} setup`, info: {} })),
    workloads: [
      { id: 'tcp-published-1', title: 'TCP published', path: 'published', metrics: [gbps] },
      { id: 'http-keepalive-published', title: 'HTTP keep-alive published', path: 'published', metrics: [rps] },
      { id: 'conn-egress', title: 'New connections egress', path: 'egress', metrics: [rps] },
    ],
    samples: [
      ...data('tcp-published-1', 'gbps', { ceiling: [10, 12, 11], ebpf: [9.8, 11.4, 10.5], iptables: [8, 9, NaN], cni: [7, 8, 7.5] }),
      ...data('http-keepalive-published', 'rps', { ceiling: [40000, 40000, 40000], ebpf: [36000, 37000, 38000], iptables: [20000, 20000, 20000] }),
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

  it('gives each setup its median and ratios to iptables and the ceiling, paired per repetition', () => {
    const cs = cells(results(), 'tcp-published-1', 'gbps');
    expect(cs.map((c) => c.setup)).toEqual(['ceiling', 'ebpf', 'iptables', 'cni']);
    const ebpf = cs.find((c) => c.setup === 'ebpf')!;
    expect(ebpf.summary).toEqual({ n: 3, median: 10.5, min: 9.8, max: 11.4 });
    expect(ebpf.vsCeiling.median).toBeCloseTo(0.95);
    expect(ebpf.vsCeiling.min).toBeCloseTo(0.95);
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

  it('measures every target and says which are met', () => {
    const t = Object.fromEntries(targets(results()).map((x) => [x.id, x]));
    expect(t['published-stream'].measured.median).toBeCloseTo(0.95);
    expect(t['published-stream'].met).toBe(true);
    expect(t['published-keepalive'].measured.median).toBeCloseTo(0.925);
    expect(t['published-keepalive'].met).toBe(true);
    expect(t['egress-connections'].measured.median).toBeCloseTo(0.975);
    expect(t['ports-scaling'].measured.median).toBeCloseTo(0.99);
    expect(t['publish-10k'].measured.median).toBe(30);
    expect(t['publish-10k'].met).toBe(true);
    // Nothing measured: neither met nor failed.
    expect(t['same-network-keepalive'].met).toBeUndefined();
    expect(t['published-close'].measured.n).toBe(0);
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
    expect(md).toContain('Ran 15 min 30 s');
    expect(md).toContain('| Published port, one TCP stream | 0.955x (0.950–0.980) | ≥ 0.95x | yes |');
    expect(md).toContain('| Same network, sandbox → sandbox HTTP keep-alive req/s | — | ≥ 0.95x | not measured |');
    expect(md).toContain('| workload | ceiling | routing | ebpf | iptables | cni | ebpf ÷ iptables | ebpf ÷ ceiling |');
    expect(md).toContain('| TCP published — Gb/s | 11.0 |  | 10.5 | 8.50 | 7.50 | 1.25x | 0.95x |');
    expect(md).toContain('| ebpf | 10.5 (9.80–11.4) | 1.25x (1.23–1.27) | 0.95x (0.95–0.98) |');
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
    expect(renderMarkdown(results())).not.toContain('XDP or TC');
  });

  it('leaves out the charts when no directory is given', () => {
    expect(renderMarkdown(results())).not.toContain('.svg');
  });
});

describe('command line', () => {
  it('defaults to a full run of 3 repetitions on every setup', () => {
    expect(parseArgs([])).toEqual({ quick: false, reps: 3, setups: ['ceiling', 'routing', 'ebpf', 'iptables', 'cni'], help: false });
  });

  it('takes --quick, --reps, --only, --setups and --out', () => {
    const o = parseArgs(['--quick', '--reps', '5', '--only', 'tcp,sweep', '--setups', 'ebpf,iptables', '--out', '/tmp/x']);
    expect(o).toMatchObject({ quick: true, reps: 5, only: ['tcp', 'sweep'], setups: ['ebpf', 'iptables'], out: '/tmp/x' });
  });

  it('refuses what it does not know', () => {
    expect(() => parseArgs(['--reps', '0'])).toThrow(/positive integer/);
    expect(() => parseArgs(['--setups', 'docker'])).toThrow(/unknown setup docker/);
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
