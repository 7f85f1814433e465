// Runs once around the kernel project: refuses to run without what the kernel tests need
// (root, bpffs), naming it, and sweeps labs left by a run that died (its owner pid is gone)
// before and after, so a crash never leaves objects behind.
import { sweepStaleLabs } from '../src/lab/lab.js';
import { missingForKernelTests } from './support/requirements.js';

export async function setup(): Promise<void> {
  const missing = missingForKernelTests();
  if (missing.length > 0) throw new Error(`the kernel project cannot run: ${missing.join('; ')}`);
  const swept = await sweepStaleLabs();
  if (swept.length > 0) console.warn(`[kernel] swept stale labs: ${swept.join(', ')}`);
}

export async function teardown(): Promise<void> {
  if (missingForKernelTests().length > 0) return;
  const swept = await sweepStaleLabs();
  if (swept.length > 0) console.warn(`[kernel] swept labs left by killed workers: ${swept.join(', ')}`);
}
