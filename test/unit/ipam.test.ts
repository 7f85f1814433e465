// IPAM policy against a fake store: the allocator's contract, moby's validation
// messages, default pools.
import { describe, expect, it } from 'vitest';
import { Ipv4Allocator, MAX_RESERVE_CONFLICTS, type IpamStore, type Pool, type Reservation } from '../../src/ipam/allocator.js';
import { validateIpamConfig } from '../../src/ipam/config.js';
import { formatIp, formatPrefix, parseIp } from '../../src/ipam/ip.js';
import { formatCidr, formatIPv4, overlaps, parseCidr, parseIPv4 } from '../../src/ipam/ipv4.js';
import { DEFAULT_POOLS, parseAddressPool, pickSubnet } from '../../src/ipam/pools.js';

class FakeStore implements IpamStore {
  readonly held = new Map<string, string>();
  readonly last = new Map<string, string>();
  holder(pool: string, a: string) {
    return this.held.get(`${pool}/${a}`);
  }
  reserve(pool: string, a: string, owner: string): Reservation {
    const current = this.held.get(`${pool}/${a}`);
    if (current !== undefined && current !== owner) return { reserved: false, holder: current };
    this.held.set(`${pool}/${a}`, owner);
    return { reserved: true };
  }
  release(pool: string, a: string) {
    this.held.delete(`${pool}/${a}`);
  }
  lastAllocated(pool: string, family: 4 | 6) {
    return this.last.get(`${pool} ${family}`);
  }
  setLastAllocated(pool: string, a: string) {
    this.last.set(`${pool} ${a.includes(':') ? 6 : 4}`, a);
  }
}

const pool = (subnet: string, range?: string): Pool => ({ id: 'n1', label: 'net1', subnet: parseCidr(subnet)!, range: range ? parseCidr(range) : undefined });
const ip = (s: string) => parseIPv4(s)!;

describe('ipv4', () => {
  it('parses and formats addresses strictly', () => {
    expect(parseIPv4('172.17.0.1')).toBe(0xac110001);
    expect(formatIPv4(0xac110001)).toBe('172.17.0.1');
    for (const bad of ['1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', ' 1.2.3.4', 'a.b.c.d', '']) expect(parseIPv4(bad)).toBeUndefined();
  });
  it('detects overlap in both directions', () => {
    expect(overlaps(parseCidr('10.0.0.0/8')!, parseCidr('10.1.0.0/16')!)).toBe(true);
    expect(overlaps(parseCidr('10.1.0.0/16')!, parseCidr('10.0.0.0/8')!)).toBe(true);
    expect(overlaps(parseCidr('10.1.0.0/16')!, parseCidr('10.2.0.0/16')!)).toBe(false);
  });
});

describe('allocator', () => {
  it('hands out addresses in order, skipping the reserved and the network/broadcast addresses', () => {
    const store = new FakeStore();
    const a = new Ipv4Allocator(store);
    const p = pool('10.0.0.0/29');
    a.reserve(p, ip('10.0.0.1'), 'gateway');
    const got = Array.from({ length: 5 }, (_, i) => formatIPv4(a.allocate(p, `ep${i}`)));
    expect(got).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
    expect(() => a.allocate(p, 'ep6')).toThrow(expect.objectContaining({ kind: 'unavailable', message: expect.stringMatching(/network net1/) }));
  });

  it('does not hand a released address out again while others are free', () => {
    const store = new FakeStore();
    const a = new Ipv4Allocator(store);
    const p = pool('10.0.0.0/24');
    const first = a.allocate(p, 'a');
    const second = a.allocate(p, 'b');
    a.release(p, first);
    const third = a.allocate(p, 'c');
    expect(third).not.toBe(first);
    expect(third).toBe(second + 1);
  });

  it('wraps around to released addresses once the range is used up', () => {
    const store = new FakeStore();
    const a = new Ipv4Allocator(store);
    const p = pool('10.0.0.0/30'); // hosts .1 and .2
    const x = a.allocate(p, 'x');
    a.allocate(p, 'y');
    a.release(p, x);
    expect(a.allocate(p, 'z')).toBe(x);
  });

  it('keeps dynamic allocation inside --ip-range but accepts static addresses anywhere in the subnet', () => {
    const store = new FakeStore();
    const a = new Ipv4Allocator(store);
    const p = pool('172.29.0.0/16', '172.29.5.0/24');
    expect(formatIPv4(a.allocate(p, 'a'))).toBe('172.29.5.1');
    a.reserve(p, ip('172.29.9.9'), 'static');
    expect(store.holder('n1', '172.29.9.9')).toBe('static');
  });

  it('refuses static addresses that are taken, reserved or outside the subnet', () => {
    const store = new FakeStore();
    const a = new Ipv4Allocator(store);
    const p = pool('172.29.0.0/16');
    a.reserve(p, ip('172.29.0.1'), 'the gateway');
    a.reserve(p, ip('172.29.1.5'), 'auxiliary address host1');
    a.reserve(p, ip('172.29.5.9'), 'sandbox c1');
    expect(() => a.reserve(p, ip('172.29.5.9'), 'sandbox c2')).toThrow(/Address already in use: 172.29.5.9 on network net1 is taken by sandbox c1/);
    expect(() => a.reserve(p, ip('172.29.1.5'), 'sandbox c2')).toThrow(/taken by auxiliary address host1/);
    expect(() => a.reserve(p, ip('172.29.0.1'), 'sandbox c2')).toThrow(expect.objectContaining({ kind: 'forbidden' }));
    expect(() => a.reserve(p, ip('10.0.0.5'), 'sandbox c2')).toThrow(
      expect.objectContaining({ kind: 'invalid', message: 'invalid endpoint settings:\nno configured subnet or ip-range contain the IP address 10.0.0.5' }),
    );
    expect(() => a.reserve(p, ip('172.29.0.0'), 'sandbox c2')).toThrow(/no configured subnet/);
    expect(() => a.reserve(p, ip('172.29.255.255'), 'sandbox c2')).toThrow(/no configured subnet/);
  });

  it('takes the next candidate when another writer wins the race for the proposed one', () => {
    const store = new FakeStore();
    const p = pool('10.0.0.0/24');
    // Another host reserves each address between our read and our write, three times.
    let races = 3;
    const racing: IpamStore = {
      ...store,
      holder: (pl, a) => store.holder(pl, a),
      reserve: (pl, a, owner) => {
        if (races-- > 0) store.reserve(pl, a, `other host ${a.split('.')[3]}`);
        return store.reserve(pl, a, owner);
      },
      release: (pl, a) => store.release(pl, a),
      lastAllocated: (pl, f) => store.lastAllocated(pl, f),
      setLastAllocated: (pl, a) => store.setLastAllocated(pl, a),
    };
    expect(formatIPv4(new Ipv4Allocator(racing).allocate(p, 'mine'))).toBe('10.0.0.4');
    expect(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'].map((a) => store.holder('n1', a))).toEqual(['other host 1', 'other host 2', 'other host 3', 'mine']);
  });

  it('gives up after a bounded number of lost races instead of spinning', () => {
    const store = new FakeStore();
    const always: IpamStore = {
      holder: () => undefined,
      reserve: () => ({ reserved: false, holder: 'other host' }),
      release: () => undefined,
      lastAllocated: () => undefined,
      setLastAllocated: () => undefined,
    };
    let tries = 0;
    const counting: IpamStore = { ...always, reserve: (...args) => (tries++, always.reserve(...args)) };
    expect(() => new Ipv4Allocator(counting).allocate(pool('10.0.0.0/16'), 'mine')).toThrow(expect.objectContaining({ kind: 'unavailable', message: expect.stringMatching(/lost 16 reservation races/) }));
    expect(tries).toBe(MAX_RESERVE_CONFLICTS);
    expect(store.held.size).toBe(0);
  });

  it('never gives one address twice under many allocations', () => {
    const store = new FakeStore();
    const a = new Ipv4Allocator(store);
    const p = pool('10.9.0.0/22');
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const x = a.allocate(p, `e${i}`);
      expect(seen.has(x)).toBe(false);
      seen.add(x);
      if (i % 3 === 0) {
        a.release(p, x);
        seen.delete(x);
      }
    }
  });
});

describe('validateIpamConfig (moby messages)', () => {
  const err = (cfg: object) => {
    try {
      validateIpamConfig([cfg]);
    } catch (e) {
      return (e as Error).message;
    }
    return 'no error';
  };
  it('accepts a full valid config', () => {
    const [p] = validateIpamConfig([{ Subnet: '172.29.0.0/16', IPRange: '172.29.5.0/24', Gateway: '172.29.0.1', AuxiliaryAddresses: { host1: '172.29.1.5' } }]);
    expect(formatPrefix(p.subnet)).toBe('172.29.0.0/16');
    expect(formatIp(p.gateway!)).toBe('172.29.0.1');
    expect(p.aux).toEqual({ host1: parseIp('172.29.1.5') });
  });
  it('words each problem as moby does', () => {
    expect(err({ Subnet: 'notacidr' })).toBe('invalid network config:\ninvalid subnet notacidr: invalid CIDR block notation');
    expect(err({ Subnet: '10.9.1.5/24' })).toBe('invalid network config:\ninvalid subnet 10.9.1.5/24: it should be 10.9.1.0/24');
    expect(err({ Subnet: '10.9.0.0/16', IPRange: '10.8.0.0/24' })).toBe(
      "invalid network config:\ninvalid ip-range 10.8.0.0/24: parent subnet 10.9.0.0/16 doesn't contain ip-range",
    );
    expect(err({ Subnet: '10.9.0.0/16', Gateway: '10.8.0.1' })).toBe(
      "invalid network config:\ninvalid gateway 10.8.0.1: parent subnet 10.9.0.0/16 doesn't contain this address",
    );
    expect(err({ Subnet: '10.9.0.0/16', AuxiliaryAddresses: { h: 'x' } })).toBe('invalid network config:\ninvalid auxiliary address h: invalid address');
    expect(err({ Subnet: '10.9.0.0/16', IPRange: '10.0.0.0/8' })).toMatch(/CIDR block is bigger than its parent subnet/);
  });
  it('checks IPv6 blocks with the same words when IPv6 is enabled, and skips them otherwise (as moby)', () => {
    const err6 = (cfg: object) => {
      try {
        validateIpamConfig([cfg], true);
      } catch (e) {
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(err6({ Subnet: 'fd00::1/64' })).toBe('invalid network config:\ninvalid subnet fd00::1/64: it should be fd00::/64');
    expect(err6({ Subnet: 'fd00::/64', Gateway: '10.0.0.1' })).toBe('invalid network config:\ninvalid gateway 10.0.0.1: parent subnet is an IPv6 block');
    expect(err6({ Subnet: '10.0.0.0/24', Gateway: 'fd00::1' })).toBe('invalid network config:\ninvalid gateway fd00::1: parent subnet is an IPv4 block');
    expect(err6({ Subnet: 'fd00::/64', IPRange: '10.0.0.0/24' })).toBe('invalid network config:\ninvalid ip-range 10.0.0.0/24: parent subnet is an IPv6 block');
    expect(err6({ Subnet: 'fd00::/64', IPRange: 'fd01::/80' })).toBe("invalid network config:\ninvalid ip-range fd01::/80: parent subnet fd00::/64 doesn't contain ip-range");
    expect(err6({ Subnet: 'fd00::/64', AuxiliaryAddresses: { h: 'fd00:1::5' } })).toBe("invalid network config:\ninvalid auxiliary address h: parent subnet fd00::/64 doesn't contain this address");
    expect(err6({ Subnet: 'fd00::/129' })).toBe('invalid network config:\ninvalid subnet fd00::/129: invalid CIDR block notation');
    const [p] = validateIpamConfig([{ Subnet: 'fd00:1::/64', IPRange: 'fd00:1::100/120', Gateway: 'fd00:1::fe', AuxiliaryAddresses: { r: 'fd00:1::ff' } }], true);
    expect([p.family, formatPrefix(p.subnet), formatPrefix(p.range!), formatIp(p.gateway!), formatIp(p.aux.r)]).toEqual([6, 'fd00:1::/64', 'fd00:1::100/120', 'fd00:1::fe', 'fd00:1::ff']);
    expect(validateIpamConfig([{ Subnet: 'fd00::1/64' }], false)).toEqual([]);
  });
  it('joins several problems with bullets', () => {
    expect(err({ Subnet: '10.9.1.5/16', Gateway: '1.1.1.1' })).toBe(
      "invalid network config:\n* invalid subnet 10.9.1.5/16: it should be 10.9.0.0/16\n* invalid gateway 1.1.1.1: parent subnet 10.9.1.5/16 doesn't contain this address",
    );
  });
});

describe('pools', () => {
  it('offers 172.17-31/16 then 192.168/20 blocks', () => {
    expect(DEFAULT_POOLS).toHaveLength(16);
    expect(formatCidr(pickSubnet(DEFAULT_POOLS, [])!)).toBe('172.17.0.0/16');
    expect(formatCidr(pickSubnet(DEFAULT_POOLS, [parseCidr('172.17.0.0/16')!])!)).toBe('172.18.0.0/16');
    const all172 = Array.from({ length: 15 }, (_, i) => parseCidr(`172.${17 + i}.0.0/16`)!);
    expect(formatCidr(pickSubnet(DEFAULT_POOLS, all172)!)).toBe('192.168.0.0/20');
    expect(formatCidr(pickSubnet(DEFAULT_POOLS, [...all172, parseCidr('192.168.0.0/20')!])!)).toBe('192.168.16.0/20');
    expect(pickSubnet(DEFAULT_POOLS, [parseCidr('0.0.0.0/0')!])).toBeUndefined();
  });
  it('skips candidates that overlap a user subnet', () => {
    expect(formatCidr(pickSubnet(DEFAULT_POOLS, [parseCidr('172.17.0.0/16')!, parseCidr('172.18.5.0/24')!])!)).toBe('172.19.0.0/16');
  });
  it('parses --default-address-pool', () => {
    expect(parseAddressPool('base=10.10.0.0/16,size=24')).toEqual({ base: parseCidr('10.10.0.0/16'), size: 24 });
    expect(() => parseAddressPool('base=10.10.0.1/16,size=24')).toThrow(/base must be/);
    expect(() => parseAddressPool('base=10.10.0.0/16,size=8')).toThrow(/size must be/);
    expect(() => parseAddressPool('base=10.10.0.0/16,size=24,x=1')).toThrow(/unknown field "x"/);
  });
});
