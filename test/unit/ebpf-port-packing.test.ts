/**
 * The published-port tables' batch encoding (ports4/ports6) writes what the ABI codecs write,
 * entry for entry, whatever mix of ranges, addresses, families and protocols a publish holds.
 */
import { describe, expect, it } from 'vitest';
import { encodePorts, encodePorts6 } from '../../src/datapath/ebpf/ebpf-datapath.js';
import { encodeAll } from '../../src/datapath/libbpf/codec.js';
import { PortFlags, portKey, portKey6, portTarget, portTarget6 } from '../../src/datapath/abi.js';
import { eachPortOf } from '../../src/util/port-runs.js';
import type { PortSpec } from '../../src/datapath/datapath.js';

const PROTO = { tcp: 6, udp: 17 } as const;

function spec(hostIp: string, hostPort: number, containerPort: number, protocol: 'tcp' | 'udp' = 'tcp', containerIp = '10.0.0.2', containerIp6 = 'fd00::2'): PortSpec {
  return { protocol, hostIp, hostPort, containerPort, containerIp, containerIp6, endpointId: 'e', networkId: 'n' };
}

describe('published-port packing', () => {
  const ranged = Array.from({ length: 300 }, (_, i) => spec('', 20000 + i, 30000 + i));
  const mixed: PortSpec[] = [
    ...ranged.slice(0, 100),
    spec('', 8080, 80, 'udp'),
    spec('127.0.0.1', 8081, 81),
    spec('127.0.0.1', 8082, 82),
    spec('::1', 8083, 83),
    spec('0.0.0.0', 8084, 84),
    spec('::', 8085, 85),
    spec('', 8086, 86, 'tcp', '10.0.0.3', 'fd00::3'),
    spec('', 8087, 87, 'tcp', '10.0.0.3', ''),
    spec('', 8088, 88, 'tcp', '', 'fd00::4'),
    ...ranged.slice(100),
  ];

  it('matches the codecs entry for entry, IPv4', () => {
    for (const ports of [ranged, mixed, [spec('', 1, 65535)], []]) {
      const v4 = ports.filter((p) => (p.hostIp === '' || p.hostIp.includes('.')) && p.containerIp);
      const got = encodePorts(ports);
      expect(got.count).toBe(v4.length);
      expect(got.keys.equals(encodeAll(portKey, v4.map((p) => ({ addr: p.hostIp || '0.0.0.0', port: p.hostPort, proto: PROTO[p.protocol] }))))).toBe(true);
      expect(got.values.equals(encodeAll(portTarget, v4.map((p) => ({ addr: p.containerIp, port: p.containerPort, flags: 0 }))))).toBe(true);
    }
  });

  it('writes the flags of each spec (a run\'s for all its ports), specs that continue a run split where the flags change', () => {
    const stateless = (p: PortSpec) => (p.protocol === 'tcp' && p.hostPort % 3 !== 0 ? PortFlags.STATELESS : 0);
    const runs = [{ ...spec('', 20000, 30000), count: 100 }, { ...spec('', 20100, 30100), count: 50 }, { ...spec('', 20150, 30150), count: 7 }];
    for (const ports of [mixed, runs]) {
      const v4 = ports.flatMap((r) => eachPortOf([r]).map((p) => ({ ...p, flags: stateless(r) }))).filter((p) => (p.hostIp === '' || p.hostIp.includes('.')) && p.containerIp);
      const got = encodePorts(ports, stateless);
      expect(got.count).toBe(v4.length);
      expect(got.values.equals(encodeAll(portTarget, v4.map((p) => ({ addr: p.containerIp, port: p.containerPort, flags: p.flags }))))).toBe(true);
      const v6 = ports.flatMap((r) => eachPortOf([r]).map((p) => ({ ...p, flags: stateless(r) }))).filter((p) => (p.hostIp === '' || p.hostIp.includes(':')) && p.containerIp6);
      const got6 = encodePorts6(ports, stateless);
      expect(got6.count).toBe(v6.length);
      expect(got6.values.equals(encodeAll(portTarget6, v6.map((p) => ({ addr: p.containerIp6!, port: p.containerPort, flags: p.flags }))))).toBe(true);
    }
  });

  it('packs a run (one spec with a count) exactly as the specs of its ports, beside single ports and other runs', () => {
    const asRuns: PortSpec[] = [
      { ...spec('', 20000, 30000), count: 100 },
      ...mixed.slice(100, 109),
      { ...spec('', 20100, 30100), count: 150 },
      { ...spec('', 20250, 30250), count: 50 },
    ];
    expect(encodePorts(asRuns)).toEqual(encodePorts(mixed));
    expect(encodePorts6(asRuns)).toEqual(encodePorts6(mixed));
  });

  it('matches the codecs entry for entry, IPv6', () => {
    for (const ports of [ranged, mixed]) {
      const v6 = ports.filter((p) => (p.hostIp === '' || p.hostIp.includes(':')) && p.containerIp6);
      const got = encodePorts6(ports);
      expect(got.count).toBe(v6.length);
      expect(got.keys.equals(encodeAll(portKey6, v6.map((p) => ({ addr: p.hostIp || '::', port: p.hostPort, proto: PROTO[p.protocol] }))))).toBe(true);
      expect(got.values.equals(encodeAll(portTarget6, v6.map((p) => ({ addr: p.containerIp6!, port: p.containerPort, flags: 0 }))))).toBe(true);
    }
  });
});
