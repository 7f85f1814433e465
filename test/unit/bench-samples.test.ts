// Samples during which the client saw errors or non-2xx responses are recorded and left out of every statistic.
import { describe, expect, it } from 'vitest';
import { cells, droppedSamples, series } from '../../bench/report/analysis.js';
import { droppedSentences } from '../../bench/report/conclusions.js';
import { counts, dropReason } from '../../bench/samples.js';
import { parseTimes } from '../../bench/clients/timed.js';
import { parseWrkReport } from '../../bench/workloads/wrk.js';
import type { BenchResults } from '../../bench/results-model.js';

function run(): BenchResults {
  return {
    schema: 2,
    command: 'npm run bench',
    quick: false,
    reps: 3,
    orderSeed: 1,
    startedAt: '2026-12-01T00:00:00.000Z',
    finishedAt: '2026-12-01T00:10:00.000Z',
    machine: { kernel: '6.18', cpus: 2, cpuModel: 't', memoryGiB: 24, node: 'v20', iperf3: 'i', autocannon: 'a', wrk: 'w', iptables: 'x', cniPlugins: 'c', commit: 'abc', loadBefore: [0, 0, 0], loadAfter: [0, 0, 0] },
    setups: [],
    workloads: [{ id: 'w', title: 'W', path: 'published', metrics: [{ key: 'rps', label: 'req/s', unit: 'req/s', better: 'higher' }] }],
    samples: [
      { workload: 'w', setup: 'ebpf', rep: 0, metrics: { rps: 100, errors: 0, non2xx: 0 } },
      { workload: 'w', setup: 'ebpf', rep: 1, metrics: { rps: 999, errors: 3, non2xx: 0 }, dropped: '3 errors' },
      { workload: 'w', setup: 'ebpf', rep: 2, metrics: { rps: 120 } },
      { workload: 'w', setup: 'iptables', rep: 0, metrics: { rps: 50 } },
      { workload: 'w', setup: 'iptables', rep: 1, metrics: { rps: 50 } },
      { workload: 'w', setup: 'iptables', rep: 2, metrics: { rps: 60, non2xx: 1 }, dropped: '1 non-2xx response' },
    ],
    sweep: { ports: [], samples: [] },
    controlPlane: { sandboxes: 0, samples: [] },
    notes: [],
  };
}

describe('sample dropping', () => {
  it('names errors and non-2xx responses, and lets a clean sample count', () => {
    expect(dropReason({ rps: 1, errors: 0, non2xx: 0 })).toBeUndefined();
    expect(dropReason({ rps: 1 })).toBeUndefined();
    expect(dropReason({ errors: 1 })).toBe('1 error');
    expect(dropReason({ errors: 2, non2xx: 5 })).toBe('2 errors, 5 non-2xx responses');
    expect(counts({})).toBe(true);
    expect(counts({ dropped: 'x' })).toBe(false);
    expect(counts({ error: 'x' })).toBe(false);
  });

  it('leaves dropped samples out of series, medians and paired ratios', () => {
    const r = run();
    expect(series(r.samples, 'w', 'ebpf', 'rps', 3)).toEqual([100, NaN, 120]);
    const ebpf = cells(r, 'w', 'rps').find((c) => c.setup === 'ebpf')!;
    expect(ebpf.summary.median).toBe(110);
    // Rep 1 is dropped on ebpf, rep 2 on iptables: only rep 0 pairs.
    expect(ebpf.vsIptables).toEqual({ n: 1, median: 2, min: 2, max: 2 });
  });

  it('says in the report which samples were dropped and why', () => {
    expect(droppedSamples(run())).toHaveLength(2);
    const [s] = droppedSentences(run());
    expect(s).toContain('2 samples were dropped');
    expect(s).toContain('w on ebpf, repetition 2 (3 errors)');
    expect(s).toContain('w on iptables, repetition 3 (1 non-2xx response)');
    const clean = { ...run(), samples: run().samples.filter((x) => !x.dropped) };
    expect(droppedSentences(clean)[0]).toMatch(/No sample was dropped/);
  });
});

describe('client output', () => {
  it("reads wrk's report line among its own text", () => {
    const out = `Running 1s test @ http://1.2.3.4:80/\n  1 threads and 50 connections\n{"requests":1000,"durationUs":1000000,"bytes":5,"connectErrors":0,"readErrors":2,"writeErrors":0,"timeouts":1,"non2xx":3,"p50Us":100,"p90Us":200,"p99Us":300}\n`;
    expect(parseWrkReport(out)).toMatchObject({ requests: 1000, readErrors: 2, timeouts: 1, non2xx: 3, p99Us: 300 });
    expect(() => parseWrkReport('unable to connect\n')).toThrow(/no report line/);
  });

  it("reads the children's user + system time from `times`", () => {
    expect(parseTimes('0m0.010000s 0m0.002000s\n0m1.250000s 0m0.500000s\n')).toBeCloseTo(1.75);
    expect(parseTimes('wrk: error\n0m0.000000s 0m0.000000s\n1m2.000000s 0m0.000000s\n')).toBeCloseTo(62);
    expect(parseTimes('nothing')).toBeNaN();
  });
});
