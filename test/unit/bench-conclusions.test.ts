// Every conclusion sentence comes from the run's numbers: change the numbers and the sentences change.
import { describe, expect, it } from 'vitest';
import { conclusions, consistent, crossCheckSentences, shortcutSentences, standingSentences, targetsSentence, verdict, xdpSentences } from '../../bench/report/conclusions.js';
import type { BenchResults, DataSample } from '../../bench/results-model.js';
import type { SetupName } from '../../bench/setups/setup.js';

const rps = { key: 'rps', label: 'req/s', unit: 'req/s', better: 'higher' as const };

function data(workload: string, values: Partial<Record<SetupName, number[]>>, extra: Record<string, Partial<Record<SetupName, number[]>>> = {}): DataSample[] {
  return Object.entries(values).flatMap(([setup, xs]) =>
    xs!.map((v, rep) => {
      const metrics: Record<string, number> = { rps: v };
      for (const [k, byS] of Object.entries(extra)) {
        const e = byS[setup as SetupName];
        if (e) metrics[k] = e[rep];
      }
      return { workload, setup: setup as SetupName, rep, metrics };
    }),
  );
}

function run(ebpfKeepAlive: number[], autocannonEbpf: number[]): BenchResults {
  return {
    schema: 2,
    command: 'npm run bench',
    quick: false,
    reps: 3,
    orderSeed: 5,
    startedAt: '2026-12-01T00:00:00.000Z',
    finishedAt: '2026-12-01T00:10:00.000Z',
    machine: { kernel: '6.18', cpus: 2, cpuModel: 't', memoryGiB: 24, node: 'v20', iperf3: 'i', autocannon: 'a', wrk: 'w', iptables: 'x', cniPlugins: 'c', commit: 'abc', loadBefore: [0, 0, 0], loadAfter: [0, 0, 0] },
    setups: [],
    workloads: [
      { id: 'http-keepalive-published', title: 'Keep-alive (wrk)', path: 'published', metrics: [rps], client: 'wrk' },
      { id: 'http-keepalive-published-autocannon', title: 'Keep-alive (autocannon)', path: 'published', metrics: [rps], client: 'autocannon', crossCheckOf: 'http-keepalive-published' },
    ],
    samples: [
      ...data(
        'http-keepalive-published',
        { host: [100, 100, 100], ebpf: ebpfKeepAlive, 'ebpf-shortcut': ebpfKeepAlive.map((v) => v * 1.1), iptables: [80, 80, 80] },
        { clientCpuPct: { ebpf: [30, 30, 30] } },
      ),
      ...data('http-keepalive-published-autocannon', { host: [37.5, 37.5, 37.5], ebpf: autocannonEbpf, iptables: [30, 30, 30] }, { clientCpuPct: { ebpf: [95, 95, 95] } }),
    ],
    sweep: { ports: [], samples: [] },
    controlPlane: { sandboxes: 0, samples: [] },
    notes: [],
  };
}

describe('conclusions', () => {
  it('words a paired ratio by what its range shows', () => {
    expect(consistent({ n: 3, median: 1.1, min: 1.05, max: 1.2 })).toBe(true);
    expect(verdict({ n: 3, median: 1.1, min: 1.05, max: 1.2 })).toBe('above 1x in all 3 repetitions');
    expect(verdict({ n: 3, median: 0.9, min: 0.8, max: 0.95 })).toBe('below 1x in all 3 repetitions');
    expect(verdict({ n: 3, median: 1.01, min: 0.97, max: 1.04 })).toBe('range 0.97–1.04 spans 1x: within the noise');
    expect(verdict({ n: 1, median: 1.5, min: 1.5, max: 1.5 })).toBe('one repetition, no range');
  });

  it("states the eBPF datapath's standing against host networking and iptables from the numbers", () => {
    const [s] = standingSentences(run([90, 96, 98], [10, 10, 10]));
    expect(s).toBe('Keep-alive (wrk): the eBPF datapath (NIC-like uplink) reached 0.96x host networking, 1.20x the iptables datapath (above 1x in all 3 repetitions).');
    const [t] = standingSentences(run([70, 75, 90], [10, 10, 10]));
    expect(t).toContain('reached 0.75x host networking, 0.94x the iptables datapath (range 0.88–1.13 spans 1x: within the noise)');
  });

  it('measures the uplink shortcut against the NIC-like uplink', () => {
    const [s] = shortcutSentences(run([90, 96, 98], [10, 10, 10]));
    expect(s).toContain('Keep-alive (wrk): +10 % (1.10x; above 1x in all 3 repetitions)');
  });

  it('flags clients that disagree and gives each one’s CPU per request, and says when they agree', () => {
    const [dis] = crossCheckSentences(run([90, 96, 98], [10, 10, 10]));
    expect(dis).toContain('ebpf ÷ iptables 1.20x with wrk, 0.33x with autocannon');
    expect(dis).toContain('**the clients disagree**');
    expect(dis).toContain('wrk used 30 % of a CPU for 96/s and autocannon 95 % for 10/s');
    expect(dis).toContain('so the autocannon ratio is the less trustworthy one');
    const [agree] = crossCheckSentences(run([60, 60, 60], [22.5, 22.5, 22.5]));
    expect(agree).toContain('ebpf ÷ iptables 0.75x with wrk, 0.75x with autocannon');
    expect(agree).toContain('the clients agree');
    expect(agree).not.toContain('trustworthy');
  });

  it('concludes on XDP from the measured ratio, with no fixed sentence', () => {
    const base = run([90, 96, 98], [10, 10, 10]);
    const slow = xdpSentences({ ...base, uplinkXdp: { tcGbps: [10, 10, 10], tcXdpGbps: [3, 3.5, 2.5], errors: [] } });
    expect(slow[0]).toContain('cost 70 % of one stream');
    expect(slow[0]).toContain('stays on TC');
    const free = xdpSentences({ ...base, uplinkXdp: { tcGbps: [10, 10, 10], tcXdpGbps: [9.9, 10.1, 10], errors: [] } });
    expect(free[0]).toContain('no measured reason to prefer TC');
    expect([...slow, ...free].join()).not.toContain('Hence');
  });

  it('counts targets met and names the misses with their measured value', () => {
    expect(targetsSentence(run([90, 96, 98], [10, 10, 10]))).toEqual(['1 of 1 measured targets met (15 not measured in this run).']);
    const s = targetsSentence(run([90, 92, 94], [10, 10, 10]));
    expect(s[0]).toBe('0 of 1 measured targets met (15 not measured in this run).');
    expect(s[1]).toBe('Missed: Published port, HTTP keep-alive req/s, vs host networking (0.920x, target ≥ 0.95x).');
  });

  it("pairs the Docker setups' container start times per repetition (target: at most 1.1x dockerd's own)", () => {
    const withStarts = (docker: number[], plugin: number[]): BenchResults => {
      const r = run([90, 96, 98], [10, 10, 10]);
      const samples = [
        ...docker.map((p50, rep) => ({ setup: 'docker' as const, rep, timesMs: [p50 - 10, p50, p50 + 10] })),
        ...plugin.map((p50, rep) => ({ setup: 'docker+bpfnet' as const, rep, timesMs: [p50 - 10, p50, p50 + 10] })),
      ];
      return { ...r, controlPlane: { sandboxes: 3, samples } };
    };
    expect(targetsSentence(withStarts([300, 280, 290], [310, 300, 290]))[0]).toBe('2 of 2 measured targets met (14 not measured in this run).');
    const slow = targetsSentence(withStarts([300, 280, 290], [360, 300, 330]));
    expect(slow[1]).toBe(
      "Missed: dockerd on bpfnet's plugin vs dockerd's own bridge, container start time (docker run -d to its first packet outside, p50) (1.138x, target ≤ 1.10x).",
    );
  });

  it('measures a missed "vs host" target against the floor (a stateless translation on the same hooks)', () => {
    const withFloor = (floor: number[]): BenchResults => {
      const r = run([90, 92, 94], [10, 10, 10]);
      return { ...r, samples: [...r.samples, ...data('http-keepalive-published', { floor })] };
    };
    const under = targetsSentence(withFloor([91, 93, 95]));
    expect(under[2]).toBe(
      'Beyond even the floor in this run (a fixed stateless eBPF translation on the same hooks, no state and no check, misses the target too): Published port, HTTP keep-alive req/s, vs host networking — floor ÷ host 0.930x, the eBPF datapath 0.920x.',
    );
    const over = targetsSentence(withFloor([97, 99, 98]));
    expect(over[2]).toContain("Within the floor's reach in this run");
    expect(over[2]).toContain('floor ÷ host 0.980x, the eBPF datapath 0.920x');
    // Without a floor in the run, neither sentence.
    expect(targetsSentence(run([90, 92, 94], [10, 10, 10]))).toHaveLength(2);
  });

  it('puts every sentence together, the dropped-sample statement last', () => {
    const all = conclusions(run([90, 96, 98], [10, 10, 10]));
    expect(all.at(-1)).toMatch(/No sample was dropped/);
    expect(all.length).toBeGreaterThanOrEqual(5);
  });
});

describe('a disturbed ceiling', () => {
  it('says so when the eBPF datapath beats host networking in every repetition', () => {
    const r = run([120, 130, 125], [10, 10, 10]);
    const [s] = standingSentences(r);
    expect(s).toContain('1.25x host networking (above the ceiling in every repetition');
    expect(standingSentences(run([90, 96, 98], [10, 10, 10]))[0]).not.toContain('above the ceiling');
  });
});
