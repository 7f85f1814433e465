// bpfnet's Docker IPAM driver on the memory store: pools from --subnet or the default address
// pools, overlap refused, the gateway first, static and dynamic addresses, an address in use,
// releases, and hostile bodies answered with a PluginError (the plugin's {"Error"}).
import { describe, expect, it } from 'vitest';
import { DEFAULT_POOLS, ulaPoolFor } from '../../src/ipam/pools.js';
import { DockerIpamDriver } from '../../src/plugins/docker/ipam-driver.js';
import { PluginError } from '../../src/plugins/docker/protocol.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const gateway = { 'RequestAddressType': 'com.docker.network.gateway' };

function driver() {
  return new DockerIpamDriver({ store: new MemoryStore(), pools: DEFAULT_POOLS, pools6: [ulaPoolFor('unit-test-host')] });
}

describe('Docker IPAM driver', () => {
  it('gives a requested pool, its gateway first, then addresses inside the sub-pool, and refuses one in use', () => {
    const d = driver();
    const pool = d.requestPool({ AddressSpace: 'bpfnet', Pool: '10.50.0.0/24', SubPool: '10.50.0.128/25' }) as { PoolID: string; Pool: string };
    expect(pool.Pool).toBe('10.50.0.0/24');
    expect(d.requestAddress({ PoolID: pool.PoolID, Options: gateway })).toEqual({ Address: '10.50.0.1/24', Data: {} });
    expect(d.requestAddress({ PoolID: pool.PoolID })).toEqual({ Address: '10.50.0.129/24', Data: {} });
    expect(d.requestAddress({ PoolID: pool.PoolID, Address: '10.50.0.7' })).toEqual({ Address: '10.50.0.7/24', Data: {} });
    expect(() => d.requestAddress({ PoolID: pool.PoolID, Address: '10.50.0.7' })).toThrow(/Address already in use: 10.50.0.7/);
    expect(() => d.requestAddress({ PoolID: pool.PoolID, Address: '10.51.0.7' })).toThrow(/not in pool/);
    d.releaseAddress({ PoolID: pool.PoolID, Address: '10.50.0.7' });
    expect(d.requestAddress({ PoolID: pool.PoolID, Address: '10.50.0.7' })).toEqual({ Address: '10.50.0.7/24', Data: {} });
  });

  it('refuses overlapping pools until the first is released, and picks free default pools', () => {
    const d = driver();
    const a = d.requestPool({ Pool: '10.50.0.0/16' }) as { PoolID: string };
    expect(() => d.requestPool({ Pool: '10.50.3.0/24' })).toThrow(/overlaps/);
    d.releasePool({ PoolID: a.PoolID });
    d.releasePool({ PoolID: a.PoolID }); // twice: done already
    expect((d.requestPool({ Pool: '10.50.3.0/24' }) as { Pool: string }).Pool).toBe('10.50.3.0/24');
    const first = d.requestPool({}) as { Pool: string };
    const second = d.requestPool({}) as { Pool: string };
    expect(first.Pool).not.toBe(second.Pool);
    expect(first.Pool).toMatch(/^172\.\d+\.0\.0\/16$/);
  });

  it('gives IPv6 pools (V6): a requested /64 with its gateway prefix::1 and static and dynamic addresses, or a /64 of the default ULA pool', () => {
    const d = driver();
    const pool = d.requestPool({ Pool: 'fd50::/64', V6: true }) as { PoolID: string; Pool: string };
    expect(pool.Pool).toBe('fd50::/64');
    expect(() => d.requestPool({ Pool: 'fd50::/48', V6: true })).toThrow(/overlaps/);
    // The families are apart: an IPv4 pool never clashes with an IPv6 one.
    expect((d.requestPool({ Pool: '10.50.0.0/24' }) as { Pool: string }).Pool).toBe('10.50.0.0/24');
    expect(d.requestAddress({ PoolID: pool.PoolID, Options: gateway })).toEqual({ Address: 'fd50::1/64', Data: {} });
    expect(d.requestAddress({ PoolID: pool.PoolID })).toEqual({ Address: 'fd50::2/64', Data: {} });
    expect(d.requestAddress({ PoolID: pool.PoolID, Address: 'fd50::00b' })).toEqual({ Address: 'fd50::b/64', Data: {} });
    expect(() => d.requestAddress({ PoolID: pool.PoolID, Address: 'fd50::b' })).toThrow(/Address already in use: fd50::b/);
    expect(() => d.requestAddress({ PoolID: pool.PoolID, Address: '10.50.0.9' })).toThrow(/invalid address/);
    d.releaseAddress({ PoolID: pool.PoolID, Address: 'fd50::b/64' });
    expect(d.requestAddress({ PoolID: pool.PoolID, Address: 'fd50::b' })).toEqual({ Address: 'fd50::b/64', Data: {} });
    const auto = d.requestPool({ V6: true }) as { Pool: string };
    expect(auto.Pool).toMatch(/^fd[0-9a-f:]+\/64$/);
  });

  it('answers hostile or unsupported bodies with a PluginError naming the problem', () => {
    const d = driver();
    const bad: Array<[unknown, RegExp]> = [
      [[1, 2], /JSON object/],
      [{ Pool: 42 }, /Pool must be a string/],
      [{ Pool: '10.0.0.1/24' }, /host bits are set/],
      [{ Pool: '10.0.0.0/31' }, /\/30 or larger/],
      [{ Pool: 'nonsense' }, /invalid pool/],
      [{ V6: true, Pool: '10.0.0.0/24' }, /an IPv6 subnet/],
      [{ Pool: 'fd00::/64' }, /an IPv4 subnet/],
      [{ V6: true, Pool: 'fd00::/127' }, /\/126 or larger/],
      [{ V6: true, Pool: 'fd00::1/64' }, /host bits are set \(did you mean fd00::\/64\?\)/],
      [{ Pool: '10.0.0.0/24', SubPool: '10.1.0.0/25' }, /invalid sub-pool/],
      [{ SubPool: '10.1.0.0/25' }, /needs a pool/],
      [{ Options: { a: 1 } }, /must be a string/],
    ];
    for (const [body, message] of bad) {
      expect(() => d.requestPool(body), JSON.stringify(body)).toThrow(PluginError);
      expect(() => d.requestPool(body), JSON.stringify(body)).toThrow(message);
    }
    expect(() => d.requestAddress({ PoolID: 'missing' })).toThrow('no pool missing');
    expect(() => d.requestAddress({})).toThrow('PoolID is missing');
    expect(() => d.releaseAddress({ PoolID: 'x', Address: 'not-an-ip' })).toThrow(/invalid address/);
  });
});
