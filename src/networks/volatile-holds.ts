/**
 * IPAM holds kept in memory beside the stored ones, for endpoints of namespaces bpfnet does
 * not own: those are not persisted (a restarted daemon sweeps their devices as strays), so
 * their addresses must not outlive the daemon either. One view for the allocator, so a stored
 * and a volatile hold never take the same address.
 */
import type { IpamStore, Reservation } from '../ipam/allocator.js';
import type { Family } from '../ipam/ip.js';

export class VolatileHolds implements IpamStore {
  readonly #base: IpamStore;
  readonly #volatile: (owner: string) => boolean;
  readonly #holds = new Map<string, string>();

  /** volatile: which owners are held in memory only. */
  constructor(base: IpamStore, volatile: (owner: string) => boolean) {
    this.#base = base;
    this.#volatile = volatile;
  }

  holder(pool: string, address: string): string | undefined {
    return this.#holds.get(`${pool}/${address}`) ?? this.#base.holder(pool, address);
  }

  /** Conditional across both views: an address held in either is refused to any other owner. */
  reserve(pool: string, address: string, owner: string): Reservation {
    const key = `${pool}/${address}`;
    const held = this.#holds.get(key);
    if (held !== undefined) return held === owner ? { reserved: true } : { reserved: false, holder: held };
    if (!this.#volatile(owner)) return this.#base.reserve(pool, address, owner);
    const stored = this.#base.holder(pool, address);
    if (stored !== undefined && stored !== owner) return { reserved: false, holder: stored };
    this.#holds.set(key, owner);
    return { reserved: true };
  }

  release(pool: string, address: string): void {
    if (!this.#holds.delete(`${pool}/${address}`)) this.#base.release(pool, address);
  }

  lastAllocated(pool: string, family: Family): string | undefined {
    return this.#base.lastAllocated(pool, family);
  }

  setLastAllocated(pool: string, address: string): void {
    this.#base.setLastAllocated(pool, address);
  }
}
