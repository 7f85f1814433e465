/**
 * Published ports as a conditional write: a sandbox's ports are stored only if none of them
 * competes with another sandbox's for the same host socket. The service checks first (to
 * pick free ports and word Docker's message); the store's check is the one that decides, as
 * a shared store would with a compare-and-swap on each (protocol, port).
 */
import { BindingIndex } from '../networks/ports.js';
import type { PortRecord } from '../networks/model.js';
import { StoreConflict } from './store.js';

/** Throws StoreConflict naming the first of `wanted` that another sandbox's port already holds. */
export function checkPortClaims(sandboxId: string, others: Iterable<PortRecord>, wanted: readonly PortRecord[]): void {
  if (wanted.length === 0) return;
  const taken = new BindingIndex<PortRecord>();
  for (const p of others) if (p.sandboxId !== sandboxId) taken.add(p);
  for (let i = 0; i < wanted.length; i++) {
    const p = wanted[i];
    const holder = taken.clash(p);
    if (holder) throw new StoreConflict(`store: port ${p.protocol} ${p.hostIp || '0.0.0.0'}:${p.hostPort} for sandbox ${sandboxId} is held by sandbox ${holder.sandboxId}`);
  }
}
