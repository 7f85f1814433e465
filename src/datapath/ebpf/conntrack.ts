/**
 * Garbage collection of the BPF connection table: entries whose expiry (CLOCK_MONOTONIC, the
 * clock bpf_ktime_get_ns reads) has passed are deleted in one batch. The programs already
 * treat expired entries as absent; this gives their slots back.
 */
import type { BpfMap } from '../libbpf/bpf.js';
import { CtHook, CtKind, ctEntry4, ctEntry6, ctKey4, ctKey6 } from '../abi.js';
import { ipv4, ipv4Word, ipv6, ipv6Bytes } from '../libbpf/codec.js';

type Key = ReturnType<typeof ctKey4.decodeFrom>;
type Entry = ReturnType<typeof ctEntry4.decodeFrom>;

/** Nanoseconds on CLOCK_MONOTONIC (libuv's hrtime uses it too). */
export function monotonicNs(): bigint {
  return process.hrtime.bigint();
}

/** The layout of one family's table: ct4 (default) or ct6. */
export interface CtLayout {
  key: typeof ctKey4 | typeof ctKey6;
  entry: typeof ctEntry4 | typeof ctEntry6;
}
export const CT4: CtLayout = { key: ctKey4, entry: ctEntry4 };
export const CT6: CtLayout = { key: ctKey6, entry: ctEntry6 };

export interface GcResult {
  scanned: number;
  removed: number;
}

/** What collectExpired counts of the entries that stay, each when given. */
export interface GcTally {
  owners?: Map<string, number>;
  sending?: Set<number>;
}

const IPPROTO_TCP = 6;

/** The sandbox address a flow's original-direction entry is charged to (bpf/lib/ct.h's ct_owner_of4). */
const FROM_SANDBOX = new Set<number>([CtKind.SNAT, CtKind.ROUTED, CtKind.HAIRPIN]);
function ownerAt(keys: Buffer, values: Buffer, i: number, layout: CtLayout): string {
  const addr = layout === CT6 ? ipv6 : ipv4;
  return FROM_SANDBOX.has(values.readUInt8(i * layout.entry.size + layout.entry.offsets.kind))
    ? addr.decodeFrom(keys, i * layout.key.size + layout.key.offsets.saddr)
    : addr.decodeFrom(values, i * layout.entry.size + layout.entry.offsets.daddr);
}

/** The TCP port a sandbox sends from in the i-th key of a packed dump: a key at a sandbox's hook; else undefined. */
function sendingPort(keys: Buffer, i: number, layout: CtLayout): number | undefined {
  const at = i * layout.key.size;
  if (keys.readUInt8(at + layout.key.offsets.hook) !== CtHook.CONTAINER || keys.readUInt8(at + layout.key.offsets.proto) !== IPPROTO_TCP) return undefined;
  return keys.readUInt16BE(at + layout.key.offsets.sport);
}

/**
 * Deletes every expired entry. Works on the packed dump (the expiry read in place at its ABI
 * offset), so a table of 500,000 entries is scanned without decoding one object per entry.
 * The programs reuse an expired key in place for a new flow, so a key seen expired in the dump
 * may be live by the time it is deleted: each candidate is read again and deleted only if it
 * is still expired (one lookup and one delete per expired key, never a blind batch).
 * The same pass tallies the flows that stay: with `owners`, per sandbox (the quota's figures);
 * with `sending`, the TCP ports a sandbox sends them from (sendingPort).
 */
export function collectExpired(ct: BpfMap<any, any>, now = monotonicNs(), layout: CtLayout = CT4, tally: GcTally = {}): GcResult {
  const { owners, sending } = tally;
  const { keys, values, count } = ct.dumpPacked();
  const keySize = layout.key.size;
  const valueSize = layout.entry.size;
  const at = layout.entry.offsets.expires;
  const dir = layout.entry.offsets.dir;
  let removed = 0;
  for (let i = 0; i < count; i++) {
    if (values.readBigUInt64LE(i * valueSize + at) < now) {
      const key = keys.subarray(i * keySize, (i + 1) * keySize);
      const current = ct.getEncoded(key);
      if (current === null) continue;
      if (current.readBigUInt64LE(at) < now) {
        if (ct.deleteEncoded(key)) removed++;
        continue;
      }
    }
    if (sending) {
      const port = sendingPort(keys, i, layout);
      if (port !== undefined) sending.add(port);
    }
    if (owners && values.readUInt8(i * valueSize + dir) === 0) {
      const owner = ownerAt(keys, values, i, layout);
      owners.set(owner, (owners.get(owner) ?? 0) + 1);
    }
  }
  return { scanned: count, removed };
}

/**
 * How many flows each sandbox holds in an assured table (ct_owner4/ct_owner6, the quota of
 * bpf/lib/ct.h): one per flow, from its original-direction entry. The sandbox is the source of
 * the flows it starts (masquerade, routed, hairpin) and the rewritten destination of those that
 * come to it.
 */
export function countOwners(ct: BpfMap<any, any>, layout: CtLayout = CT4): Map<string, number> {
  const { keys, values, count } = ct.dumpPacked();
  const counts = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    if (values.readUInt8(i * layout.entry.size + layout.entry.offsets.dir) !== 0) continue;
    const owner = ownerAt(keys, values, i, layout);
    counts.set(owner, (counts.get(owner) ?? 0) + 1);
  }
  return counts;
}

/**
 * Rewrites a quota map from counts of its assured table: the programs add at promotion and
 * subtract only for keys they take over, so expired and collected flows leave the figures here.
 * A flow promoted between the dump and the write is missed until the next round.
 */
export function writeOwners(owners: BpfMap<string, number>, counts: Map<string, number>): void {
  for (const k of owners.keys()) if (!counts.has(k)) owners.delete(k);
  for (const [k, n] of counts) owners.set(k, n);
}

/** countOwners then writeOwners: the figures exact again (at start, after a crash). */
export function recountOwners(ct: BpfMap<any, any>, owners: BpfMap<string, number>, layout: CtLayout = CT4): void {
  writeOwners(owners, countOwners(ct, layout));
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

/** forgetAddress for ct6: every entry whose tuples involve the IPv6 address addr. */
export function forgetAddress6(ct: BpfMap<any, any>, addr: string): number {
  const { keys, values, count } = ct.dumpPacked();
  const a = ipv6Bytes(addr);
  const ks = ctKey6.size;
  const vs = ctEntry6.size;
  const kOff = [ctKey6.offsets.saddr, ctKey6.offsets.daddr];
  const vOff = [ctEntry6.offsets.saddr, ctEntry6.offsets.daddr];
  const at = (buf: Buffer, o: number) => buf.subarray(o, o + 16).equals(a);
  let removed = 0;
  for (let i = 0; i < count; i++) {
    const hit = kOff.some((o) => at(keys, i * ks + o)) || vOff.some((o) => at(values, i * vs + o));
    if (hit && ct.deleteEncoded(keys.subarray(i * ks, (i + 1) * ks))) removed++;
  }
  return removed;
}

/**
 * How far back a scan vouches for the tables (the programs' clock is the coarse one, and a packet
 * being handled when the scan began has its time from before): a flow made earlier was in them.
 */
export const UNTRACKED_MARGIN_NS = 1_000_000_000n;

/**
 * Tells the programs from which TCP ports of the stateless published ports' targets no tracked
 * flow sends (ct_port_clean, bpf/lib/ct.h): `from` for each port no key of the scan sends from,
 * 0 for each one that does. `from` must be the scan's start less UNTRACKED_MARGIN_NS: the
 * programs trust it only while no flow from the port was made or moved since.
 */
export function writeUntracked(clean: BpfMap<number, bigint>, targetPorts: Iterable<number>, sending: Set<number>, from: bigint): void {
  for (const port of new Set(targetPorts)) clean.set(port, sending.has(port) ? 0n : from);
}

/** Forgets every port's clean time (at start: a daemon of a version that did not mark may have run since). */
export function clearUntracked(clean: BpfMap<number, bigint>): void {
  const { keys, values, count } = clean.dumpPacked();
  for (let i = 0; i < count; i++) if (values.readBigUInt64LE(i * 8) !== 0n) clean.set(keys.readUInt32LE(i * 4), 0n);
}
