// The overlay section of the bench report: the overlay targets from ratios paired per
// repetition (a failed run left out, not counted as zero), beside the same ratios with no overlay
// and of the overlay's floor, the propagation percentiles, and the
// section in latest.md and the README block only when the run had it; --only overlay selects it.
import { describe, expect, it } from 'vitest';
import { parseArgs, selected } from '../../bench/options.js';
import { readmeBlock, renderMarkdown } from '../../bench/report/markdown.js';
import { overlayMarkdown, overlayTargets } from '../../bench/report/overlay.js';
import type { BenchResults, OverlayResults } from '../../bench/results-model.js';

function overlay(): OverlayResults {
  return {
    setups: [
      { name: 'cross-host', description: 'cross', iperf1Gbps: [8, 9, 10], iperf2Gbps: [7, NaN, 9], keepAliveRps: [30000, 36000, 33000], newConnPerSec: [12000, 12000, 12000] },
      { name: 'same-host', description: 'same', iperf1Gbps: [10, 10, 10], iperf2Gbps: [10, 1, 10], keepAliveRps: [40000, 40000, 40000], newConnPerSec: [13000, 13000, 13000] },
      { name: 'docker-way', description: 'docker', iperf1Gbps: [9, 9, 9], iperf2Gbps: [9, 9, 9], keepAliveRps: [30000, 30000, 30000], newConnPerSec: [9000, 10000, 11000] },
    ],
    reach: { hosts: 5, method: 'traffic', everyHostMs: [-20, 10, 50, 120], perHostMs: [-30, -20, 10, 50, 120], createMs: [500, 500, 500, 500], errors: [] },
    seconds: 4,
    errors: ['TCP 2 streams on cross-host, rep 2: boom'],
    notes: ['a note'],
  };
}

function bench(o?: OverlayResults): BenchResults {
  return {
    schema: 2,
    command: 'npm run bench',
    quick: false,
    reps: 3,
    orderSeed: 1,
    startedAt: '2026-12-02T05:00:00.000Z',
    finishedAt: '2026-12-02T05:10:00.000Z',
    machine: { kernel: '6.18', cpus: 2, cpuModel: 't', memoryGiB: 24, node: 'v20', iperf3: 'iperf 3.12', autocannon: '9', wrk: 'wrk', iptables: 'ipt', cniPlugins: 'cni', commit: 'abc', loadBefore: [0, 0, 0], loadAfter: [0, 0, 0] },
    setups: [],
    workloads: [],
    samples: [],
    sweep: { ports: [], samples: [] },
    controlPlane: { sandboxes: 0, samples: [] },
    ...(o ? { overlay: o } : {}),
    notes: [],
  };
}

describe('overlay report', () => {
  it('checks the targets against ratios paired per repetition, leaving a failed run out', () => {
    const t = overlayTargets(overlay());
    expect(t.map((x) => [x.measured, x.met])).toEqual([
      ['0.90x (0.80–1.00)', true], // 8/10, 9/10, 10/10
      ['0.80x (0.70–0.90)', true], // the failed repetition is not a pair
      ['1.10x (1.00–1.20)', false], // keep-alive vs Docker's way: below 1.2x
      ['1.20x (1.09–1.33)', true],
      ['120.0 ms', false], // p99 of four sandboxes is the slowest
    ]);
  });

  it('renders the rows, the ratio rows, the propagation from the answer and from the start, and the failures', () => {
    const md = overlayMarkdown(overlay());
    expect(md).toContain('| cross | 9.00 (8.00–10.0) | 8.00 (7.00–9.00) | 33,000 (30,000–36,000) | 12,000 |');
    expect(md).toContain("| cross-host ÷ Docker's way | 1.00x (0.89–1.11) |");
    expect(md).toContain('p50 10.0, p99 120.0, max 120.0');
    expect(md).toContain('Counted from the create call\'s start instead');
    expect(md).toContain('p50 510.0, p99 620.0');
    expect(md).toContain('- failed: TCP 2 streams on cross-host, rep 2: boom');
  });

  it('pairs the IPv6 cross-host rates with the IPv4 ones, and leaves them out of the other ratio rows', () => {
    const o = overlay();
    o.setups.push({ name: 'cross-host-v6', description: 'cross v6', iperf1Gbps: [], iperf2Gbps: [], keepAliveRps: [27000, 36000, NaN], newConnPerSec: [12000, 10800, 13200] });
    const md = overlayMarkdown(o);
    expect(md).toContain('| cross v6 | — | — | 31,500 (27,000–36,000) | 12,000 (10,800–13,200) |');
    expect(md).toContain('| cross-host IPv6 ÷ IPv4 | — | — | 0.95x (0.90–1.00) | 1.00x (0.90–1.10) |');
    expect(md.match(/^\| cross-host ÷/gm)).toHaveLength(2);
    expect(overlayTargets(o)).toHaveLength(5);
  });

  it('gives each target the same ratio of the pair with no overlay, and says which misses it shares', () => {
    const o = overlay();
    o.setups.push({ name: 'no-overlay', description: 'routed', iperf1Gbps: [12, 12, 12], iperf2Gbps: [12, 12, 12], keepAliveRps: [34500, 34500, 34500], newConnPerSec: [14000, 14000, 14000] });
    const t = overlayTargets(o);
    expect(t.map((x) => x.reference)).toEqual([
      { measured: '1.20x', met: true }, // 12/10
      { measured: '1.20x (1.20–12.00)', met: true }, // 12/10, 12/1, 12/10
      { measured: '1.15x', met: false }, // 34,500/30,000: with no overlay at all 1.2x is missed too
      { measured: '1.40x (1.27–1.56)', met: true },
      undefined, // propagation has no reference
    ]);
    const md = overlayMarkdown(o);
    expect(md).toContain('| cross-host ÷ no overlay | 0.75x (0.67–0.83) |');
    expect(md).toContain("| no overlay ÷ Docker's way (what Docker's tunnel and bridge cost) | 1.33x |");
    expect(md).toContain("| overlay cross-host ÷ Docker's way, HTTP keep-alive req/s | 1.10x (1.00–1.20) | ≥ 1.2x | **missed** | 1.15x |");
    expect(md).toContain("Missed where the same two hosts with no overlay at all (the kernel routing) stay below the target too in this run: overlay cross-host ÷ Docker's way, HTTP keep-alive req/s (1.10x (1.00–1.20); with no overlay 1.15x).");
    expect(md).not.toContain('Missed though');
  });

  it('gives each target the same ratio of the floor, and says which misses are beyond it and which within its reach', () => {
    const withFloor = (keepAliveRps: number[]) => {
      const o = overlay();
      o.setups.push({ name: 'floor', description: 'floor', iperf1Gbps: [9, 9, 9], iperf2Gbps: [9, 9, 9], keepAliveRps, newConnPerSec: [15000, 15000, 15000] });
      return o;
    };
    const within = withFloor([39000, 39000, 39000]);
    expect(overlayTargets(within).map((x) => x.floor)).toEqual([
      { measured: '0.90x', met: true }, // throughput: floor ÷ same host
      { measured: '0.90x (0.90–9.00)', met: true }, // 9/10, 9/1, 9/10
      { measured: '1.30x', met: true }, // request rates: floor ÷ Docker's way
      { measured: '1.50x (1.36–1.67)', met: true },
      undefined, // propagation has no floor
    ]);
    const md = overlayMarkdown(within);
    expect(md).toContain('| overlay target | measured | target | result | the same with no overlay (kernel routing) | the floor (fixed eBPF encap/decap, no state) |');
    expect(md).toContain("| overlay cross-host ÷ Docker's way, HTTP keep-alive req/s | 1.10x (1.00–1.20) | ≥ 1.2x | **missed** | — | 1.30x |");
    expect(md).toContain("| the floor ÷ Docker's way (the least eBPF overlay on these hooks) | 1.00x | 1.00x | 1.30x | 1.50x (1.36–1.67) |");
    expect(md).toContain('| cross-host ÷ the floor | 1.00x (0.89–1.11) |');
    expect(md).toContain("Missed but within the floor's reach in this run (the fixed stateless encap/decap meets the target; the rest is bpfnet's state, checks and routing): overlay cross-host ÷ Docker's way, HTTP keep-alive req/s (1.10x (1.00–1.20); the floor 1.30x).");
    expect(md).not.toContain('beyond even the floor');
    const beyond = overlayMarkdown(withFloor([34500, 34500, 34500]));
    expect(beyond).toContain("Missed and beyond even the floor in this run (a fixed stateless eBPF VXLAN encap/decap on the same hooks, no state and no check, misses the target too): overlay cross-host ÷ Docker's way, HTTP keep-alive req/s (1.10x (1.00–1.20); the floor 1.15x).");
    expect(beyond).not.toContain("within the floor's reach");
  });

  it('is in latest.md and the README block only when the run had it', () => {
    expect(renderMarkdown(bench(overlay()))).toContain('## Overlay across hosts (five hosts, one etcd)');
    expect(readmeBlock(bench(overlay()), 'x.md')).toContain('### Overlay across hosts (five hosts, one etcd)');
    expect(renderMarkdown(bench())).not.toContain('Overlay across hosts');
    expect(readmeBlock(bench(), 'x.md')).not.toContain('Overlay across hosts');
  });

  it('is a section --only selects, and part of a run without --only', () => {
    expect(selected(parseArgs(['--only', 'overlay']), 'overlay')).toBe(true);
    expect(selected(parseArgs(['--only', 'overlay']), 'tcp-published-1')).toBe(false);
    expect(selected(parseArgs([]), 'overlay')).toBe(true);
  });
});
