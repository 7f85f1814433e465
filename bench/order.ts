/**
 * The order setups run in, per repetition: a seeded shuffle of the setups (one per workload),
 * rotated by the repetition number, so over n repetitions of n setups every setup runs once in
 * every position (a cyclic Latin square). Whatever drifts during a run (heat, a neighbour's
 * load, a conntrack table filling) then lands on every setup alike. The seed is recorded in
 * the results so a run's order can be rebuilt. Pure.
 */
import { seededRandom } from '../src/util/seeded-random.js';

export { seededRandom };


/** A 32-bit FNV-1a hash of a string: gives each workload its own stream from one seed. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h >>> 0;
}

/** A Fisher–Yates shuffle of items driven by rnd (a copy; items is left as it is). */
export function shuffled<T>(items: readonly T[], rnd: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** items rotated left by k (k may exceed the length). */
export function rotated<T>(items: readonly T[], k: number): T[] {
  const n = items.length;
  if (n === 0) return [];
  const s = ((k % n) + n) % n;
  return [...items.slice(s), ...items.slice(0, s)];
}

/** The setups of one workload in the order repetition rep runs them. */
export function runOrder<T>(setups: readonly T[], rep: number, seed: number, workload: string): T[] {
  return rotated(shuffled(setups, seededRandom((seed ^ hash32(workload)) >>> 0)), rep);
}

/** A fresh seed when none is given (recorded with the results). */
export function newSeed(): number {
  return Math.floor(Math.random() * 2 ** 32) >>> 0;
}
