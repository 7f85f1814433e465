/**
 * Published ports as a conditional write: a sandbox's ports are stored only if none of them
 * competes with another sandbox's for the same host socket. The service checks first (to
 * pick free ports and word Docker's message); the store's check is the one that decides, as
 * a shared store would with a compare-and-swap on each (protocol, port).
 */
import { BindingIndex } from '../networks/ports.js';
import type { PortRecord, PortRun } from '../networks/model.js';
import { StoreConflict } from './store.js';

/** Throws StoreConflict naming the first port of `wanted` (runs: every port of each) that another sandbox's port already holds. */
export function checkPortClaims(sandboxId: string, others: Iterable<PortRecord>, wanted: readonly PortRun[]): void {
  if (wanted.length === 0) return;
  const taken = new BindingIndex<PortRecord>();
  for (const p of others) if (p.sandboxId !== sandboxId) taken.add(p);
  if (taken.size === 0) return;
  for (const run of wanted) {
    const clash = taken.clashInRun(run);
    if (clash) throw new StoreConflict(`store: port ${run.protocol} ${run.hostIp || '0.0.0.0'}:${clash.port} for sandbox ${sandboxId} is held by sandbox ${clash.holder.sandboxId}`);
  }
}
