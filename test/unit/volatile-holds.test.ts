// Addresses of foreign endpoints are held in memory beside the stored ones: one view for the
// allocator, so neither kind is handed out twice, and nothing of them reaches the store.
import { describe, expect, it } from 'vitest';
import { Ipv4Allocator, type IpamStore, type Pool } from '../../src/ipam/allocator.js';
import { formatIPv4, parseCidr, parseIPv4 } from '../../src/ipam/ipv4.js';
import { VolatileHolds } from '../../src/networks/volatile-holds.js';

/** The store's side, as a map (what SQLite keeps). */
function mapStore(): IpamStore & { held: Map<string, string> } {
  const held = new Map<string, string>();
  const last = new Map<string, string>();
  return {
    held,
    holder: (pool, a) => held.get(`${pool}/${a}`),
    reserve: (pool, a, owner) => {
      const holder = held.get(`${pool}/${a}`);
      if (holder !== undefined && holder !== owner) return { reserved: false, holder };
      held.set(`${pool}/${a}`, owner);
      return { reserved: true };
    },
    release: (pool, a) => void held.delete(`${pool}/${a}`),
    lastAllocated: (pool, family) => last.get(`${pool} ${family}`),
    setLastAllocated: (pool, a) => void last.set(`${pool} ${a.includes(':') ? 6 : 4}`, a),
  };
}

const pool: Pool = { id: 'n1', label: 'net', subnet: parseCidr('10.7.0.0/29')! };

describe('volatile IPAM holds', () => {
  it('keeps foreign holds out of the store, and never gives their addresses to anyone else', () => {
    const store = mapStore();
    const holds = new VolatileHolds(store, (owner) => owner.startsWith('foreign '));
    const alloc = new Ipv4Allocator(holds);
    alloc.reserve(pool, parseIPv4('10.7.0.1')!, 'the gateway');
    const foreign = alloc.allocate(pool, 'foreign endpoint abc');
    const sandbox = alloc.allocate(pool, 'sandbox s1');
    expect(foreign).not.toBe(sandbox);
    expect([...store.held.values()].sort()).toEqual(['sandbox s1', 'the gateway']);
    expect(holds.holder('n1', formatIPv4(foreign))).toBe('foreign endpoint abc');
    expect(() => alloc.reserve(pool, foreign, 'sandbox s2')).toThrow();
    holds.release('n1', formatIPv4(foreign));
    expect(holds.holder('n1', formatIPv4(foreign))).toBeUndefined();
    // Releasing a stored hold reaches the store.
    holds.release('n1', formatIPv4(sandbox));
    expect([...store.held.values()]).toEqual(['the gateway']);
  });
});
