// The tagged address type both families share, and the allocator walking IPv6 blocks.
import { describe, expect, it } from 'vitest';
import { IpAllocator, type IpamStore, type Reservation } from '../../src/ipam/allocator.js';
import { parseIpAddressPool, pickIpSubnet, ulaPoolFor } from '../../src/ipam/pools.js';
import { addIp, canonicalIp, formatIp, formatPrefix, ipBytes, ipFromBytes, isMaskedPrefix, maskedPrefix, parseIp, parsePrefix, prefixContains, prefixOverlaps, sizeOfPrefix } from '../../src/ipam/ip.js';

class MapStore implements IpamStore {
  readonly held = new Map<string, string>();
  readonly last = new Map<string, string>();
  holder(pool: string, a: string) {
    return this.held.get(`${pool} ${a}`);
  }
  reserve(pool: string, a: string, owner: string): Reservation {
    const h = this.held.get(`${pool} ${a}`);
    if (h !== undefined && h !== owner) return { reserved: false, holder: h };
    this.held.set(`${pool} ${a}`, owner);
    return { reserved: true };
  }
  release(pool: string, a: string) {
    this.held.delete(`${pool} ${a}`);
  }
  lastAllocated(pool: string, f: 4 | 6) {
    return this.last.get(`${pool} ${f}`);
  }
  setLastAllocated(pool: string, a: string) {
    this.last.set(`${pool} ${a.includes(':') ? 6 : 4}`, a);
  }
}

describe('ip addresses of either family', () => {
  it('formats IPv6 as RFC 5952 says, whatever the input spelling', () => {
    const cases: Array<[string, string]> = [
      ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:0db8:0000:0000:0001:0000:0000:0000', '2001:db8:0:0:1::'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['::', '::'],
      ['::1', '::1'],
      ['fe80::', 'fe80::'],
      ['::ffff:192.0.2.1', '::ffff:c000:201'],
      ['64:ff9b::10.0.0.1', '64:ff9b::a00:1'],
      ['fd00:0:0:0:0:0:0:0', 'fd00::'],
    ];
    for (const [input, want] of cases) expect([input, canonicalIp(input)]).toEqual([input, want]);
    expect(parseIp('10.0.0.1')).toEqual({ family: 4, value: 0x0a000001n });
    expect(formatIp({ family: 4, value: 0xac110001n })).toBe('172.17.0.1');
  });

  it('refuses what is not an address', () => {
    for (const bad of ['', ' ::1', '::1 ', '[::1]', 'fe80::1%eth0', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '::ffff:1.2.3', '::ffff:01.2.3.4', '1.2.3.04', '::1/64', 'fd00::/64', '1:2:3:4:5:6:7:8::', ':1', '1:'])
      expect([bad, parseIp(bad)]).toEqual([bad, undefined]);
  });

  it('parses prefixes strictly and answers containment and overlap per family', () => {
    const p = parsePrefix('fd00:1:2:3::/64')!;
    expect(formatPrefix(p)).toBe('fd00:1:2:3::/64');
    expect(sizeOfPrefix(p)).toBe(1n << 64n);
    expect(isMaskedPrefix(parsePrefix('fd00::1/64')!)).toBe(false);
    expect(formatPrefix(maskedPrefix(parsePrefix('fd00::1/64')!))).toBe('fd00::/64');
    expect(prefixContains(p, parseIp('fd00:1:2:3:ffff::1')!)).toBe(true);
    expect(prefixContains(p, parseIp('fd00:1:2:4::1')!)).toBe(false);
    expect(prefixContains(parsePrefix('0.0.0.0/0')!, parseIp('::1')!)).toBe(false);
    expect(prefixOverlaps(parsePrefix('fd00::/8')!, p)).toBe(true);
    expect(prefixOverlaps(p, parsePrefix('fd00:1:2:4::/64')!)).toBe(false);
    expect(prefixOverlaps(parsePrefix('10.0.0.0/8')!, parsePrefix('::/0')!)).toBe(false);
    for (const bad of ['fd00::/129', '10.0.0.0/33', 'fd00::/064', 'fd00::', 'fd00::/', '/64', 'fd00::/-1']) expect([bad, parsePrefix(bad)]).toEqual([bad, undefined]);
  });

  it('steps and converts to bytes without leaving the family', () => {
    expect(addIp(parseIp('255.255.255.255')!, 1n)).toBeUndefined();
    expect(addIp(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe')!, 1n)).toEqual(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'));
    expect(ipBytes(parseIp('2001:db8::1')!).toString('hex')).toBe('20010db8000000000000000000000001');
    expect(ipFromBytes(ipBytes(parseIp('10.1.2.3')!))).toEqual(parseIp('10.1.2.3'));
  });
});

describe('default IPv6 pool', () => {
  it("derives moby's ULA /48 from the host id (moby's own test vectors) and hands out its /64s in order", () => {
    expect(formatPrefix(ulaPoolFor('').base)).toBe('fd42:98fc:1c14::/48');
    const pool = ulaPoolFor('499d4bc0-b0b3-416f-b1ee-cf6486315593');
    expect([formatPrefix(pool.base), pool.size]).toEqual(['fd62:fb69:18af::/48', 64]);
    expect(formatPrefix(pickIpSubnet([pool], [])!)).toBe('fd62:fb69:18af::/64');
    expect(formatPrefix(pickIpSubnet([pool], [parsePrefix('fd62:fb69:18af::/64')!, parsePrefix('fd62:fb69:18af:1::/80')!])!)).toBe('fd62:fb69:18af:2::/64');
    expect(pickIpSubnet([pool], [parsePrefix('fd00::/8')!])).toBeUndefined();
    expect(parseIpAddressPool('base=fd00:1::/48,size=64')).toEqual({ base: parsePrefix('fd00:1::/48'), size: 64 });
    expect(() => parseIpAddressPool('base=fd00:1::1/48,size=64')).toThrow(/base must be/);
    expect(() => parseIpAddressPool('base=fd00:1::/48,size=40')).toThrow(/size must be/);
  });
});

describe('allocator on IPv6 blocks', () => {
  const pool = { id: 'n1', label: 'v6net', subnet: parsePrefix('fd00:aa::/64')! };

  it('starts after the subnet-router anycast address, never enumerates a /64, and skips holders', () => {
    const store = new MapStore();
    const a = new IpAllocator(store);
    a.reserve(pool, parseIp('fd00:aa::1')!, 'gateway');
    const t0 = performance.now();
    const got = Array.from({ length: 3 }, (_, i) => formatIp(a.allocate(pool, `e${i}`)));
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(got).toEqual(['fd00:aa::2', 'fd00:aa::3', 'fd00:aa::4']);
    expect(() => a.reserve(pool, parseIp('fd00:aa::')!, 'x')).toThrow(/no configured subnet or ip-range contain the IP address fd00:aa::/);
    expect(() => a.reserve(pool, parseIp('fd00:aa::3')!, 'x')).toThrow(/Address already in use: fd00:aa::3 on network v6net is taken by e1/);
    // The last address of a /64 is usable (IPv6 has no broadcast), and allocation wraps after it.
    store.setLastAllocated('n1', 'fd00:aa::ffff:ffff:ffff:fffe');
    expect(formatIp(a.allocate(pool, 'e3'))).toBe('fd00:aa::ffff:ffff:ffff:ffff');
    expect(formatIp(a.allocate(pool, 'e4'))).toBe('fd00:aa::5');
    // IPv4 and IPv6 of one pool keep separate cursors.
    expect(store.lastAllocated('n1', 4)).toBeUndefined();
  });

  it('honours an IPv6 --ip-range and reports a full one', () => {
    const store = new MapStore();
    const a = new IpAllocator(store);
    const ranged = { ...pool, range: parsePrefix('fd00:aa::100/126')! };
    expect(Array.from({ length: 4 }, (_, i) => formatIp(a.allocate(ranged, `e${i}`)))).toEqual(['fd00:aa::100', 'fd00:aa::101', 'fd00:aa::102', 'fd00:aa::103']);
    expect(() => a.allocate(ranged, 'e5')).toThrow(/no available IPv6 addresses on network v6net: all of fd00:aa::100\/126 are in use/);
  });
});
