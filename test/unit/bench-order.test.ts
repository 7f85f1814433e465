// The rotated setup order: seeded, reproducible, and a Latin square over as many repetitions as setups.
import { describe, expect, it } from 'vitest';
import { hash32, rotated, runOrder, seededRandom, shuffled } from '../../bench/order.js';

const SETUPS = ['host', 'veth', 'routing', 'ebpf', 'ebpf-shortcut', 'iptables', 'cni'];

describe('setup order', () => {
  it('gives the same sequence for the same seed and another for another seed', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(xs.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(seededRandom(43)()).not.toBe(xs[0]);
  });

  it('shuffles into a permutation without touching the input', () => {
    const input = [...SETUPS];
    const out = shuffled(input, seededRandom(7));
    expect(input).toEqual(SETUPS);
    expect([...out].sort()).toEqual([...SETUPS].sort());
  });

  it('rotates left, wrapping any k', () => {
    expect(rotated([1, 2, 3], 1)).toEqual([2, 3, 1]);
    expect(rotated([1, 2, 3], 4)).toEqual([2, 3, 1]);
    expect(rotated([1, 2, 3], -1)).toEqual([3, 1, 2]);
    expect(rotated([], 3)).toEqual([]);
  });

  it('puts every setup in every position exactly once over n repetitions (a Latin square)', () => {
    const orders = SETUPS.map((_, rep) => runOrder(SETUPS, rep, 12345, 'http-keepalive-published'));
    for (const order of orders) expect([...order].sort()).toEqual([...SETUPS].sort());
    for (let pos = 0; pos < SETUPS.length; pos++) expect(new Set(orders.map((o) => o[pos])).size).toBe(SETUPS.length);
    // Not the fixed A B C … order of the old harness, for this seed.
    expect(orders[0]).not.toEqual(SETUPS);
  });

  it('rebuilds a run’s order from its recorded seed, and gives workloads their own shuffles', () => {
    expect(runOrder(SETUPS, 2, 99, 'conn-published')).toEqual(runOrder(SETUPS, 2, 99, 'conn-published'));
    const perWorkload = ['conn-published', 'conn-egress', 'tcp-published-1', 'http-close-published'].map((w) => runOrder(SETUPS, 0, 99, w).join());
    expect(new Set(perWorkload).size).toBeGreaterThan(1);
    expect(hash32('a')).not.toBe(hash32('b'));
  });
});
