/**
 * Address allocation policy, apart from storage: the allocator decides which address,
 * an IpamStore remembers who holds what. Addresses are handed out in order after the last
 * one given (wrapping around), so a released address is not reused while others are free.
 * One allocator walks either family: an IPv6 /64 is never enumerated, only stepped from the
 * cursor past the addresses that are held (at most as many steps as there are holders).
 */
import { forbidden, invalid, unavailable } from '../errors.js';
import { formatIp, formatPrefix, parseIp, prefixContains, firstOf, lastOf, type Family, type IpAddress, type IpPrefix } from './ip.js';
import type { Cidr } from './ipv4.js';

/** The outcome of one conditional reservation: won, or lost to the holder named. */
export type Reservation = { reserved: true } | { reserved: false; holder: string };

/**
 * What the allocator needs from storage. Addresses are canonical text (formatIp), so both
 * families share one table. Reads are hints; reserve is the one write that decides,
 * conditionally, so a store shared between hosts can do it as a compare-and-swap.
 */
export interface IpamStore {
  /** Who holds address in pool, if anyone. */
  holder(pool: string, address: string): string | undefined;
  /** Makes owner the holder of address unless someone else holds it (holding it already is a win). */
  reserve(pool: string, address: string, owner: string): Reservation;
  /** Frees address; freeing a free address is a no-op. */
  release(pool: string, address: string): void;
  /** The address of that family most recently handed out dynamically in pool, if any. */
  lastAllocated(pool: string, family: Family): string | undefined;
  /** Remembers address as the last handed out in pool (for its family). */
  setLastAllocated(pool: string, address: string): void;
}

/** The family of an address held as canonical text. */
export function familyOfText(address: string): Family {
  return address.includes(':') ? 6 : 4;
}

export interface IpPool {
  /** Store key of the pool (the network's id; both families of a network share it). */
  readonly id: string;
  /** Shown in errors: the network's name. */
  readonly label: string;
  readonly subnet: IpPrefix;
  /** Dynamic allocation stays inside this block (--ip-range). */
  readonly range?: IpPrefix;
}

/**
 * Usable host addresses of a block. IPv4: without the network and broadcast addresses
 * (except /31 and /32). IPv6: without the subnet-router anycast address (the first; except
 * /127 and /128), and there is no broadcast.
 */
function hostBounds(c: IpPrefix): [bigint, bigint] {
  const width = c.family === 4 ? 32 : 128;
  if (c.bits >= width - 1) return [firstOf(c), lastOf(c)];
  return [firstOf(c) + 1n, c.family === 4 ? lastOf(c) - 1n : lastOf(c)];
}

/** Conflicts one allocation survives before giving up: each is another writer winning a race. */
export const MAX_RESERVE_CONFLICTS = 16;

/** Steps past held addresses before an allocation gives up on a huge block that is nearly full of holders. */
export const MAX_HELD_STEPS = 1 << 20;

const familyName = (f: Family) => (f === 4 ? 'IPv4' : 'IPv6');

export class IpAllocator {
  readonly #store: IpamStore;

  constructor(store: IpamStore) {
    this.#store = store;
  }

  /** Hands out the next free address of the pool's range (or subnet) to owner. */
  allocate(pool: IpPool, owner: string): IpAddress {
    const family = pool.subnet.family;
    const block = pool.range ?? pool.subnet;
    const [subFirst, subLast] = hostBounds(pool.subnet);
    // An IPv6 --ip-range is not a subnet: its first address is no anycast address and is handed out.
    const [blockFirst, blockLast] = family === 6 && pool.range ? [firstOf(block), lastOf(block)] : hostBounds(block);
    const first = blockFirst > subFirst ? blockFirst : subFirst;
    const last = blockLast < subLast ? blockLast : subLast;
    const count = last - first + 1n;
    const what = `no available ${familyName(family)} addresses on network ${pool.label}`;
    if (count <= 0n) throw unavailable(`${what}: ${formatPrefix(block)} has no host addresses`);
    const previousText = this.#store.lastAllocated(pool.id, family);
    const previous = previousText === undefined ? undefined : parseIp(previousText);
    const p = previous && previous.family === family ? previous.value : undefined;
    const start = p !== undefined && p >= first && p < last ? p + 1n : first;
    const steps = count < BigInt(MAX_HELD_STEPS) ? count : BigInt(MAX_HELD_STEPS);
    let conflicts = 0;
    for (let i = 0n; i < steps; i++) {
      const candidate = formatIp({ family, value: first + ((start - first + i) % count) });
      if (this.#store.holder(pool.id, candidate) !== undefined) continue;
      // The read above only proposes; another writer may have taken it since.
      if (!this.#store.reserve(pool.id, candidate, owner).reserved) {
        if (++conflicts >= MAX_RESERVE_CONFLICTS) throw unavailable(`${what}: lost ${conflicts} reservation races, try again`);
        continue;
      }
      this.#store.setLastAllocated(pool.id, candidate);
      return parseIp(candidate)!;
    }
    if (steps < count) throw unavailable(`${what}: ${MAX_HELD_STEPS} addresses in a row after the last one given are in use`);
    throw unavailable(`${what}: all of ${formatPrefix(block)} are in use`);
  }

  /** Gives owner exactly `address` (a static --ip/--ip6, the gateway, an aux address). */
  reserve(pool: IpPool, address: IpAddress, owner: string): void {
    const [first, last] = hostBounds(pool.subnet);
    const text = formatIp(address);
    if (!prefixContains(pool.subnet, address) || address.value < first || address.value > last) {
      throw invalid(`invalid endpoint settings:\nno configured subnet or ip-range contain the IP address ${text}`);
    }
    const r = this.#store.reserve(pool.id, text, owner);
    if (!r.reserved) throw forbidden(`Address already in use: ${text} on network ${pool.label} is taken by ${r.holder}`);
  }

  release(pool: IpPool, address: IpAddress): void {
    this.#store.release(pool.id, formatIp(address));
  }
}

/** An IPv4 pool in the numeric form IPv4-only callers use. */
export interface Pool {
  readonly id: string;
  readonly label: string;
  readonly subnet: Cidr;
  readonly range?: Cidr;
}

const v4 = (c: Cidr): IpPrefix => ({ family: 4, addr: BigInt(c.addr), bits: c.bits });
const v4Pool = (p: Pool): IpPool => ({ id: p.id, label: p.label, subnet: v4(p.subnet), range: p.range && v4(p.range) });

/** The IPv4 face of IpAllocator, for callers that hold IPv4 addresses as numbers. */
export class Ipv4Allocator {
  readonly #inner: IpAllocator;

  constructor(store: IpamStore) {
    this.#inner = new IpAllocator(store);
  }

  get ip(): IpAllocator {
    return this.#inner;
  }

  allocate(pool: Pool, owner: string): number {
    return Number(this.#inner.allocate(v4Pool(pool), owner).value);
  }

  reserve(pool: Pool, address: number, owner: string): void {
    this.#inner.reserve(v4Pool(pool), { family: 4, value: BigInt(address) }, owner);
  }

  release(pool: Pool, address: number): void {
    this.#inner.release(v4Pool(pool), { family: 4, value: BigInt(address) });
  }
}

