/**
 * Starting a setup on other BPF objects than the build's (another commit's, or a variant's), for
 * the A/B measurements of bench/bpf-cost.ts and bench/flowlog-cost.ts. The daemon loads its
 * objects once at start, so the given ones sit in build/bpf only while `make` runs; the build's
 * own are put back afterwards, also when it fails.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bpfObjectDir } from '../src/paths.js';

/** Runs make() with the objects `names` (e.g. 'lxc' for lxc.bpf.o) taken from dir. */
export async function withDatapathObjects<T>(dir: string, names: readonly string[], make: () => Promise<T>): Promise<T> {
  const keep = mkdtempSync(join(tmpdir(), 'bpfnet-objs-'));
  const objs = names.map((n) => `${n}.bpf.o`);
  for (const o of objs) copyFileSync(join(bpfObjectDir, o), join(keep, o));
  try {
    for (const o of objs) copyFileSync(join(dir, o), join(bpfObjectDir, o));
    return await make();
  } finally {
    for (const o of objs) copyFileSync(join(keep, o), join(bpfObjectDir, o));
    rmSync(keep, { recursive: true, force: true });
  }
}
