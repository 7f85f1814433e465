// --cluster-store / --advertise-addr / --cluster-lease-ttl: parsed once, refused with the flag named.
import { describe, expect, it } from 'vitest';
import { canonicalAddress, candidates, parsePrefix } from '../../src/cluster/addresses.js';
import { hostStart } from '../../src/cluster/cluster-cache.js';
import { parseClusterStore } from '../../src/cluster/etcd-cluster.js';
import { parseClusterFlags } from '../../src/daemon/options.js';

describe('cluster flags', () => {
  it('etcd://HOST:PORT[,HOST:PORT] becomes client URLs; anything else is refused naming the flag', () => {
    expect(parseClusterStore('etcd://10.0.0.1:2379')).toEqual(['http://10.0.0.1:2379']);
    expect(parseClusterStore('etcd://a:1,b.example:2,[fd00::1]:3')).toEqual(['http://a:1', 'http://b.example:2', 'http://[fd00::1]:3']);
    expect(() => parseClusterStore('http://10.0.0.1:2379')).toThrow(/--cluster-store http:\/\/10\.0\.0\.1:2379: expected etcd:\/\//);
    expect(() => parseClusterStore('etcd://10.0.0.1')).toThrow(/"10\.0\.0\.1" is not HOST:PORT/);
  });

  it('without --cluster-store the daemon is single-host; the advertise address defaults to the uplink; the TTL is checked', () => {
    expect(parseClusterFlags({}, '192.0.2.1')).toBeUndefined();
    expect(() => parseClusterFlags({ advertiseAddr: '192.0.2.9' }, '192.0.2.1')).toThrow(/--advertise-addr needs --cluster-store/);
    expect(parseClusterFlags({ clusterStore: 'etcd://10.0.0.1:2379' }, '192.0.2.1')).toEqual({ endpoints: ['http://10.0.0.1:2379'], advertiseAddr: '192.0.2.1', leaseTtl: 10 });
    expect(parseClusterFlags({ clusterStore: 'etcd://10.0.0.1:2379', advertiseAddr: '192.0.2.9', clusterLeaseTtl: '4' }, '192.0.2.1')).toMatchObject({ advertiseAddr: '192.0.2.9', leaseTtl: 4 });
    expect(() => parseClusterFlags({ clusterStore: 'etcd://10.0.0.1:2379', advertiseAddr: 'eth0' }, '192.0.2.1')).toThrow(/--advertise-addr must be an IPv4 address/);
    expect(() => parseClusterFlags({ clusterStore: 'etcd://10.0.0.1:2379', clusterLeaseTtl: '1' }, '192.0.2.1')).toThrow(/--cluster-lease-ttl must be whole seconds between 2 and 3600/);
  });
});

describe('cluster address keys', () => {
  it('one canonical spelling per address (a reservation key each), IPv4 and IPv6', () => {
    expect(canonicalAddress('fd00:0:0:0::5')).toBe('fd00::5');
    expect(canonicalAddress('FD00::0:5')).toBe('fd00::5');
    expect(canonicalAddress('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonicalAddress('::ffff:10.0.0.1')).toBe('::ffff:a00:1');
    expect(canonicalAddress('10.0.0.1')).toBe('10.0.0.1');
    expect(() => canonicalAddress('10.0.0.256')).toThrow(/"10\.0\.0\.256" is not an IP address/);
  });

  it('candidates walk a subnet once from a host-specific start, skipping network, broadcast and gateway', () => {
    const p = parsePrefix('10.0.0.0/29')!;
    expect([...candidates(p, new Set(['10.0.0.1']))]).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
    expect([...candidates(p, new Set(['10.0.0.1']), '10.0.0.4')]).toEqual(['10.0.0.5', '10.0.0.6', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
    const p6 = parsePrefix('fd00::/126')!;
    expect([...candidates(p6, new Set())]).toEqual(['fd00::1', 'fd00::2', 'fd00::3']);
    const starts = new Set(['a', 'b', 'c', 'd', 'e'].map((h) => hostStart(parsePrefix('10.200.0.0/22')!, h)));
    expect(starts.size).toBe(5);
  });
});
