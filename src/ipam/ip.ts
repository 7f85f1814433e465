/**
 * Addresses and prefixes of either family, tagged: one type for IPAM, records, the API and
 * DNS, so nothing guesses a family from a string's shape. Values are BigInt (128 bits fit);
 * IPv4 keeps its numeric helpers in ipv4.ts for the code that only ever speaks IPv4.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface IpAddress {
  readonly family: Family;
  readonly value: bigint;
}

export interface IpPrefix {
  readonly family: Family;
  /** The address as written (may have host bits set). */
  readonly addr: bigint;
  readonly bits: number;
}

export function familyBits(f: Family): number {
  return f === 4 ? 32 : 128;
}

const ALL = (f: Family): bigint => (1n << BigInt(familyBits(f))) - 1n;

function parseDotted(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    // Leading zeros are refused: "010" is octal to some parsers and decimal to others.
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p.startsWith('0')) || Number(p) > 255) return undefined;
    v = (v << 8n) | BigInt(p);
  }
  return v;
}

function parseColons(text: string): bigint | undefined {
  // node:net checks the grammar (one "::", group sizes, an embedded IPv4 tail); zones are refused here.
  if (text.includes('%') || !isIPv6(text)) return undefined;
  let body = text;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = parseDotted(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    body = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, rest] = body.includes('::') ? body.split('::') : [body, undefined];
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => BigInt(`0x${g}`)));
  const h = groups(head);
  const r = rest === undefined ? [] : groups(rest);
  const fill = 8 - h.length - r.length;
  if (rest === undefined ? fill !== 0 : fill < 1) return undefined;
  const all = [...h, ...Array<bigint>(rest === undefined ? 0 : fill).fill(0n), ...r];
  return all.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** Parses an address of either family; undefined for anything else (brackets, zones, prefixes, spaces). */
export function parseIp(text: string): IpAddress | undefined {
  if (typeof text !== 'string' || text.length > 45) return undefined;
  if (isIPv4(text)) {
    const v = parseDotted(text);
    return v === undefined ? undefined : { family: 4, value: v };
  }
  const v = parseColons(text);
  return v === undefined ? undefined : { family: 6, value: v };
}

/** RFC 5952 text: lower case, no leading zeros, the longest run (of two or more) of zero groups as "::". */
export function formatIp(a: IpAddress): string {
  if (a.family === 4) return [24n, 16n, 8n, 0n].map((s) => String((a.value >> s) & 255n)).join('.');
  const g = Array.from({ length: 8 }, (_, i) => Number((a.value >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

export function parsePrefix(text: string): IpPrefix | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const a = parseIp(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  if (!a || !/^\d{1,3}$/.test(bitsText) || (bitsText.length > 1 && bitsText.startsWith('0'))) return undefined;
  const bits = Number(bitsText);
  if (bits > familyBits(a.family)) return undefined;
  return { family: a.family, addr: a.value, bits };
}

export function formatPrefix(p: IpPrefix): string {
  return `${formatIp({ family: p.family, value: p.addr })}/${p.bits}`;
}

function hostMask(p: { family: Family; bits: number }): bigint {
  return (1n << BigInt(familyBits(p.family) - p.bits)) - 1n;
}

/** The block's first address (host bits cleared). */
export function firstOf(p: IpPrefix): bigint {
  return p.addr & (ALL(p.family) ^ hostMask(p));
}

/** The block's last address (IPv4: its broadcast address). */
export function lastOf(p: IpPrefix): bigint {
  return firstOf(p) | hostMask(p);
}

export function maskedPrefix(p: IpPrefix): IpPrefix {
  return { family: p.family, addr: firstOf(p), bits: p.bits };
}

export function isMaskedPrefix(p: IpPrefix): boolean {
  return firstOf(p) === p.addr;
}

export function prefixContains(p: IpPrefix, a: IpAddress): boolean {
  return p.family === a.family && (a.value & (ALL(p.family) ^ hostMask(p))) === firstOf(p);
}

export function prefixOverlaps(a: IpPrefix, b: IpPrefix): boolean {
  if (a.family !== b.family) return false;
  const bits = Math.min(a.bits, b.bits);
  const m = ALL(a.family) ^ hostMask({ family: a.family, bits });
  return (a.addr & m) === (b.addr & m);
}

/** Number of addresses in the block (a BigInt: a /64 holds 2^64). */
export function sizeOfPrefix(p: IpPrefix): bigint {
  return 1n << BigInt(familyBits(p.family) - p.bits);
}

/** The address n after a (negative: before); undefined when it leaves the family's space. */
export function addIp(a: IpAddress, n: bigint): IpAddress | undefined {
  const v = a.value + n;
  return v < 0n || v > ALL(a.family) ? undefined : { family: a.family, value: v };
}

export function ipEquals(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.value === b.value;
}

/** Canonical text of an address given as text, or undefined if it is not one. */
export function canonicalIp(text: string): string | undefined {
  const a = parseIp(text);
  return a && formatIp(a);
}

/** The address as 16 bytes in network order (IPv4 as its 4 bytes), for DNS records and packets. */
export function ipBytes(a: IpAddress): Buffer {
  const n = familyBits(a.family) / 8;
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Number((a.value >> BigInt(8 * (n - 1 - i))) & 255n);
  return b;
}

export function ipFromBytes(b: Uint8Array): IpAddress | undefined {
  if (b.length !== 4 && b.length !== 16) return undefined;
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return { family: b.length === 4 ? 4 : 6, value: v };
}
