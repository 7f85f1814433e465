// The benchmark's statistics: medians and percentiles, ratios paired per repetition, CPU
// accounting from /proc/stat, and the progress estimate.
import { describe, expect, it } from 'vitest';
import { busySeconds, cpuPerUnit, median, pairedRatio, pairedRatios, parseProcStat, percentile, summarize, timeLeft } from '../../bench/stats.js';

describe('median and percentiles', () => {
  it('takes the middle value of an odd count and the mean of the two middle ones of an even count', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });

  it('ignores NaN, null and undefined, and is NaN for nothing', () => {
    expect(median([NaN, 5, undefined, 1, null, 3])).toBe(3);
    expect(median([])).toBeNaN();
    expect(median([NaN])).toBeNaN();
  });

  it('interpolates between closest ranks', () => {
    const xs = [10, 20, 30, 40, 50];
    expect(percentile(xs, 0)).toBe(10);
    expect(percentile(xs, 100)).toBe(50);
    expect(percentile(xs, 25)).toBe(20);
    expect(percentile(xs, 90)).toBeCloseTo(46);
    expect(percentile([1, 2], 99)).toBeCloseTo(1.99);
  });

  it('does not reorder its input', () => {
    const xs = [3, 1, 2];
    percentile(xs, 50);
    expect(xs).toEqual([3, 1, 2]);
  });

  it('refuses a percentile outside 0..100', () => {
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], -1)).toThrow(RangeError);
  });

  it('summarizes median, min, max and count of the finite values', () => {
    expect(summarize([5, 1, NaN, 9])).toEqual({ n: 3, median: 5, min: 1, max: 9 });
    const empty = summarize([]);
    expect(empty.n).toBe(0);
    expect(empty.median).toBeNaN();
  });
});

describe('ratios paired per repetition', () => {
  it('divides repetition i of a by repetition i of b', () => {
    expect(pairedRatios([10, 20, 30], [5, 10, 10])).toEqual([2, 2, 3]);
  });

  it('drops a pair whose either side failed, without shifting the others', () => {
    // rep 1 of a failed: rep 2 must still be paired with rep 2 of b.
    expect(pairedRatios([10, NaN, 30], [5, 10, 15])).toEqual([2, 2]);
    expect(pairedRatios([10, undefined, 30], [5, 10, null])).toEqual([2]);
    expect(pairedRatios([10, 20], [0, 10])).toEqual([2]);
  });

  it('pairs only as many repetitions as both have', () => {
    expect(pairedRatios([1, 2, 3, 4], [1, 1])).toEqual([1, 2]);
  });

  it('differs from the ratio of medians when repetitions drift together', () => {
    // The machine slows down over the run: both setups drift, their quotient does not.
    const a = [100, 80, 60];
    const b = [50, 40, 30];
    expect(pairedRatio(a, b)).toEqual({ n: 3, median: 2, min: 2, max: 2 });
    const unpaired = pairedRatios([100, 80, 60], [30, 40, 50]);
    expect(summarize(unpaired).min).toBeLessThan(summarize(unpaired).max);
  });

  it('summarizes the ratios: median ratio and its range', () => {
    expect(pairedRatio([9, 10, 12], [10, 10, 10])).toEqual({ n: 3, median: 1, min: 0.9, max: 1.2 });
  });
});

describe('CPU accounting', () => {
  const stat = (user: number, system: number, idle: number, softirq: number) =>
    `cpu  ${user} 0 ${system} ${idle} 5 0 ${softirq} 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1 2 3\n`;

  it('reads busy and total ticks of all CPUs from the aggregate line', () => {
    expect(parseProcStat(stat(100, 50, 1000, 25))).toEqual({ busy: 175, total: 1180 });
  });

  it('turns tick differences into CPU-seconds (USER_HZ 100) and per-unit costs', () => {
    const before = parseProcStat(stat(100, 50, 1000, 25));
    const after = parseProcStat(stat(300, 150, 1100, 75));
    expect(busySeconds(before, after)).toBeCloseTo(3.5);
    expect(cpuPerUnit(3.5, 7)).toBeCloseTo(0.5);
    expect(cpuPerUnit(3.5, 0)).toBeNaN();
  });

  it('refuses text without the aggregate line', () => {
    expect(() => parseProcStat('cpu0 1 2 3 4\n')).toThrow(/aggregate/);
  });
});

describe('time left', () => {
  it('is the remaining estimate when the run keeps to plan', () => {
    expect(timeLeft([10, 10, 10, 10], 2, 20)).toBe(20);
  });

  it('scales the remaining estimates by the pace so far, damped by a prior', () => {
    // Twice as slow as planned over 20 s: with no prior, 2x; with 60 s of prior, 1.25x.
    expect(timeLeft([10, 10, 10, 10], 2, 40, 0)).toBe(40);
    expect(timeLeft([10, 10, 10, 10], 2, 40)).toBe(25);
    expect(timeLeft([10, 10], 0, 0)).toBe(20);
  });

  it('does not swing on the first short steps', () => {
    // One 5 s step done in 0.2 s: a raw pace would promise 25x faster.
    expect(timeLeft([5, 100, 100], 1, 0.2)).toBeGreaterThan(150);
  });
});
