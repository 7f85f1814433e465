/**
 * Garbage collection of the BPF connection table: entries whose expiry (CLOCK_MONOTONIC, the
 * clock bpf_ktime_get_ns reads) has passed are deleted in one batch. The programs already
 * treat expired entries as absent; this gives their slots back.
 */
import type { BpfMap } from '../libbpf/bpf.js';
import { ctEntry4, ctKey4 } from '../abi.js';
import { ipv4Word } from '../libbpf/codec.js';

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

/**
 * Deletes every expired entry. Works on the packed dump (the expiry read in place at its ABI
 * offset), so a table of 500,000 entries is scanned without decoding one object per entry.
 * The programs reuse an expired key in place for a new flow, so a key seen expired in the dump
 * may be live by the time it is deleted: each candidate is read again and deleted only if it
 * is still expired (one lookup and one delete per expired key, never a blind batch).
 */
export function collectExpired(ct: BpfMap<Key, Entry>, now = monotonicNs()): GcResult {
  const { keys, values, count } = ct.dumpPacked();
  const keySize = ctKey4.size;
  const valueSize = ctEntry4.size;
  const at = ctEntry4.offsets.expires;
  let removed = 0;
  for (let i = 0; i < count; i++) {
    if (values.readBigUInt64LE(i * valueSize + at) >= now) continue;
    const key = keys.subarray(i * keySize, (i + 1) * keySize);
    const current = ct.getEncoded(key);
    if (current === null || current.readBigUInt64LE(at) >= now) continue;
    if (ct.deleteEncoded(key)) removed++;
  }
  return { scanned: count, removed };
}

/** Removes every entry whose tuples involve addr (an endpoint that went away); scans the packed dump. */
export function forgetAddress(ct: BpfMap<Key, Entry>, addr: string): number {
  const { keys, values, count } = ct.dumpPacked();
  const a = ipv4Word(addr);
  const ks = ctKey4.size;
  const vs = ctEntry4.size;
  const kOff = [ctKey4.offsets.saddr, ctKey4.offsets.daddr];
  const vOff = [ctEntry4.offsets.saddr, ctEntry4.offsets.daddr];
  let removed = 0;
  for (let i = 0; i < count; i++) {
    const hit = kOff.some((o) => keys.readUInt32BE(i * ks + o) === a) || vOff.some((o) => values.readUInt32BE(i * vs + o) === a);
    if (hit && ct.deleteEncoded(keys.subarray(i * ks, (i + 1) * ks))) removed++;
  }
  return removed;
}
