/** Default address pools, as Docker's: where a network's subnet comes from when none is given. */
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
