/** Default address pools, as Docker's: where a network's subnet comes from when none is given. */
import { createHash } from 'node:crypto';
import { isMaskedPrefix, parsePrefix, prefixOverlaps, type IpPrefix } from './ip.js';
import { formatCidr, isMasked, overlaps, parseCidr, type Cidr } from './ipv4.js';

export interface AddressPool {
  readonly base: Cidr;
  /** Prefix length of the subnets carved out of base. */
  readonly size: number;
}

/** Docker's defaults: 172.17.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/16 in /20 blocks. */
export const DEFAULT_POOLS: readonly AddressPool[] = [
  ...Array.from({ length: 15 }, (_, i) => ({ base: { addr: ((172 << 24) | ((17 + i) << 16)) >>> 0, bits: 16 }, size: 16 })),
  { base: { addr: ((192 << 24) | (168 << 16)) >>> 0, bits: 16 }, size: 20 },
];

/** Parses `base=CIDR,size=N` (the --default-address-pool flag). */
export function parseAddressPool(text: string): AddressPool {
  const fields = Object.fromEntries(
    text.split(',').map((kv) => {
      const eq = kv.indexOf('=');
      return eq < 0 ? [kv.trim(), ''] : [kv.slice(0, eq).trim(), kv.slice(eq + 1).trim()];
    }),
  );
  const base = parseCidr(fields.base ?? '');
  if (!base || !isMasked(base)) throw new Error(`invalid default address pool "${text}": base must be a CIDR block like 10.10.0.0/16`);
  const size = Number(fields.size);
  if (!Number.isInteger(size) || size < base.bits || size > 30)
    throw new Error(`invalid default address pool "${text}": size must be an integer between ${base.bits} and 30`);
  for (const key of Object.keys(fields)) {
    if (key !== 'base' && key !== 'size') throw new Error(`invalid default address pool "${text}": unknown field "${key}"`);
  }
  return { base, size };
}

/** Every subnet the pools offer, in order. */
export function* poolSubnets(pools: readonly AddressPool[]): Generator<Cidr> {
  for (const pool of pools) {
    const count = 2 ** (pool.size - pool.base.bits);
    const step = 2 ** (32 - pool.size);
    for (let i = 0; i < count; i++) yield { addr: (pool.base.addr + i * step) >>> 0, bits: pool.size };
  }
}

/** The first pool subnet that overlaps none of `taken`; undefined when the pools are exhausted. */
export function pickSubnet(pools: readonly AddressPool[], taken: readonly Cidr[]): Cidr | undefined {
  for (const candidate of poolSubnets(pools)) {
    if (!taken.some((t) => overlaps(t, candidate))) return candidate;
  }
  return undefined;
}

export function describePool(p: AddressPool): string {
  return `base=${formatCidr(p.base)},size=${p.size}`;
}

/** An address pool of either family: subnets of `size` bits carved out of base. */
export interface IpAddressPool {
  readonly base: IpPrefix;
  readonly size: number;
}

/**
 * Docker's default IPv6 pool (27+): a ULA /48 unique to this host, fd00::/8 plus a 40-bit
 * Global ID taken from the SHA-256 of the host's id (RFC 4193 3.2.2, loosely, as moby does),
 * split into /64s. Stable as long as hostId is.
 */
export function ulaPoolFor(hostId: string): IpAddressPool {
  const sha = createHash('sha256').update(hostId).digest();
  const globalId = sha.readBigUInt64BE(0) & ((1n << 40n) - 1n);
  const fd00 = 0xfdn << 120n;
  return { base: { family: 6, addr: fd00 | (globalId << 80n), bits: 48 }, size: 64 };
}

/** Parses `base=CIDR,size=N` of either family (an IPv6 base for --default-address-pool as moby allows). */
export function parseIpAddressPool(text: string): IpAddressPool {
  if (!text.includes(':')) {
    const p = parseAddressPool(text);
    return { base: { family: 4, addr: BigInt(p.base.addr), bits: p.base.bits }, size: p.size };
  }
  const fields = new Map(text.split(',').map((kv) => [kv.slice(0, Math.max(kv.indexOf('='), 0)).trim(), kv.slice(kv.indexOf('=') + 1).trim()]));
  const base = parsePrefix(fields.get('base') ?? '');
  if (!base || base.family !== 6 || !isMaskedPrefix(base)) throw new Error(`invalid default address pool "${text}": base must be a CIDR block like fd00:1::/48`);
  const size = Number(fields.get('size'));
  if (!Number.isInteger(size) || size < base.bits || size > 126) throw new Error(`invalid default address pool "${text}": size must be an integer between ${base.bits} and 126`);
  for (const key of fields.keys()) if (key !== 'base' && key !== 'size') throw new Error(`invalid default address pool "${text}": unknown field "${key}"`);
  return { base, size };
}

/** Subnets the pools offer before one is called exhausted: a /48 in /64s is 65,536 candidates. */
const MAX_CANDIDATES = 1 << 17;

/** The first subnet of the pools (of one family) that overlaps none of `taken`; undefined when none is left. */
export function pickIpSubnet(pools: readonly IpAddressPool[], taken: readonly IpPrefix[]): IpPrefix | undefined {
  let tried = 0;
  for (const pool of pools) {
    const width = pool.base.family === 4 ? 32 : 128;
    const step = 1n << BigInt(width - pool.size);
    const count = 1n << BigInt(pool.size - pool.base.bits);
    for (let i = 0n; i < count && tried < MAX_CANDIDATES; i++, tried++) {
      const candidate: IpPrefix = { family: pool.base.family, addr: pool.base.addr + i * step, bits: pool.size };
      if (!taken.some((t) => prefixOverlaps(t, candidate))) return candidate;
    }
  }
  return undefined;
}
