/**
 * Garbage collection of the BPF connection table: entries whose expiry (CLOCK_MONOTONIC, the
 * clock bpf_ktime_get_ns reads) has passed are deleted in one batch. The programs already
 * treat expired entries as absent; this gives their slots back.
 */
import type { BpfMap } from '../libbpf/bpf.js';
import type { ctEntry4, ctKey4 } from '../abi.js';

type Key = ReturnType<typeof ctKey4.decodeFrom>;
type Entry = ReturnType<typeof ctEntry4.decodeFrom>;

/** Nanoseconds on CLOCK_MONOTONIC (libuv's hrtime uses it too). */
export function monotonicNs(): bigint {
  return process.hrtime.bigint();
}

export interface GcResult {
  scanned: number;
  removed: number;
}

export function collectExpired(ct: BpfMap<Key, Entry>, now = monotonicNs()): GcResult {
  const entries = ct.entries();
  const expired = entries.filter(([, e]) => e.expires < now).map(([k]) => k);
  let removed = 0;
  if (expired.length > 0) {
    try {
      removed = ct.deleteMany(expired);
    } catch {
      // A key vanished meanwhile (a program replaced it): fall back to one by one.
      for (const k of expired) if (ct.delete(k)) removed++;
    }
  }
  return { scanned: entries.length, removed };
}

/** Removes every entry whose tuples involve addr (an endpoint that went away). */
export function forgetAddress(ct: BpfMap<Key, Entry>, addr: string): number {
  let removed = 0;
  for (const [k, e] of ct.entries()) {
    if (k.saddr === addr || k.daddr === addr || e.saddr === addr || e.daddr === addr) {
      if (ct.delete(k)) removed++;
    }
  }
  return removed;
}
