// Runs once around the kernel project: sweeps labs left by a run that died
// (its owner pid is gone) before and after, so a crash never leaves objects behind.
import { sweepStaleLabs } from '../src/lab/lab.js';

export async function setup(): Promise<void> {
  const swept = await sweepStaleLabs();
  if (swept.length > 0) console.warn(`[kernel] swept stale labs: ${swept.join(', ')}`);
}

export async function teardown(): Promise<void> {
  const swept = await sweepStaleLabs();
  if (swept.length > 0) console.warn(`[kernel] swept labs left by killed workers: ${swept.join(', ')}`);
}
