/**
 * Address allocation policy, apart from storage: the allocator decides which address,
 * an IpamStore remembers who holds what. Addresses are handed out in order after the last
 * one given (wrapping around), so a released address is not reused while others are free.
 */
import { forbidden, invalid, unavailable } from '../errors.js';
import { broadcastOf, contains, formatCidr, formatIPv4, networkOf, type Cidr } from './ipv4.js';

/** The outcome of one conditional reservation: won, or lost to the holder named. */
export type Reservation = { reserved: true } | { reserved: false; holder: string };

/**
 * What the allocator needs from storage. Reads are hints; reserve is the one write that
 * decides, conditionally, so a store shared between hosts can do it as a compare-and-swap.
 */
export interface IpamStore {
  /** Who holds address in pool, if anyone. */
  holder(pool: string, address: number): string | undefined;
  /** Makes owner the holder of address unless someone else holds it (holding it already is a win). */
  reserve(pool: string, address: number, owner: string): Reservation;
  /** Frees address; freeing a free address is a no-op. */
  release(pool: string, address: number): void;
  /** The address most recently handed out dynamically, if any. */
  lastAllocated(pool: string): number | undefined;
  setLastAllocated(pool: string, address: number): void;
}

export interface Pool {
  /** Store key of the pool (the network's id). */
  readonly id: string;
  /** Shown in errors: the network's name. */
  readonly label: string;
  readonly subnet: Cidr;
  /** Dynamic allocation stays inside this block (--ip-range). */
  readonly range?: Cidr;
}

/** Usable host addresses of a block: without the network and broadcast addresses (except /31 and /32). */
function hostBounds(c: Cidr): [number, number] {
  if (c.bits >= 31) return [networkOf(c), broadcastOf(c)];
  return [networkOf(c) + 1, broadcastOf(c) - 1];
}

/** Conflicts one allocation survives before giving up: each is another writer winning a race. */
export const MAX_RESERVE_CONFLICTS = 16;

export class Ipv4Allocator {
  readonly #store: IpamStore;

  constructor(store: IpamStore) {
    this.#store = store;
  }

  /** Hands out the next free address of the pool's range (or subnet) to owner. */
  allocate(pool: Pool, owner: string): number {
    const block = pool.range ?? pool.subnet;
    const [subFirst, subLast] = hostBounds(pool.subnet);
    const first = Math.max(hostBounds(block)[0], subFirst);
    const last = Math.min(hostBounds(block)[1], subLast);
    const count = last - first + 1;
    if (count <= 0) throw unavailable(`no available IPv4 addresses on network ${pool.label}: ${formatCidr(block)} has no host addresses`);
    const previous = this.#store.lastAllocated(pool.id);
    const start = previous !== undefined && previous >= first && previous < last ? previous + 1 : first;
    let conflicts = 0;
    for (let i = 0; i < count; i++) {
      const candidate = first + ((start - first + i) % count);
      if (this.#store.holder(pool.id, candidate) !== undefined) continue;
      // The read above only proposes; another writer may have taken it since.
      if (!this.#store.reserve(pool.id, candidate, owner).reserved) {
        if (++conflicts >= MAX_RESERVE_CONFLICTS) {
          throw unavailable(`no available IPv4 addresses on network ${pool.label}: lost ${conflicts} reservation races, try again`);
        }
        continue;
      }
      this.#store.setLastAllocated(pool.id, candidate);
      return candidate;
    }
    throw unavailable(`no available IPv4 addresses on network ${pool.label}: all of ${formatCidr(block)} are in use`);
  }

  /** Gives owner exactly `address` (a static --ip, the gateway, an aux address). */
  reserve(pool: Pool, address: number, owner: string): void {
    const [first, last] = hostBounds(pool.subnet);
    if (!contains(pool.subnet, address) || address < first || address > last) {
      throw invalid(`invalid endpoint settings:\nno configured subnet or ip-range contain the IP address ${formatIPv4(address)}`);
    }
    const r = this.#store.reserve(pool.id, address, owner);
    if (!r.reserved) throw forbidden(`Address already in use: ${formatIPv4(address)} on network ${pool.label} is taken by ${r.holder}`);
  }

  release(pool: Pool, address: number): void {
    this.#store.release(pool.id, address);
  }
}
