/**
 * Which published ports the eBPF datapath translates without connection tracking: IPv4 TCP ports
 * that are the only way to their target, judged on runs as they are published and unpublished.
 */
import { describe, expect, it } from 'vitest';
import { PublishedTcpPorts, StatelessPorts } from '../../src/datapath/ebpf/stateless-ports.js';
import type { PortSpec } from '../../src/datapath/datapath.js';

function port(hostPort: number, containerPort: number, more: Partial<PortSpec> = {}): PortSpec {
  return { protocol: 'tcp', hostIp: '', hostPort, containerPort, containerIp: '10.0.0.2', containerIp6: 'fd00::2', endpointId: 'e', networkId: 'n', ...more };
}

describe('stateless published ports', () => {
  it('a TCP port alone on its target is stateless; UDP and ports of the other family never are', () => {
    const s = new StatelessPorts('v4');
    const ports = [port(8080, 80), port(8053, 53, { protocol: 'udp' }), port(8443, 443, { hostIp: '::' }), port(9000, 90, { containerIp: '' })];
    expect(s.add(ports)).toEqual([]);
    expect(ports.map((p) => s.stateless(p))).toEqual([true, false, false, false]);
  });

  it('two published ports to one target port are both tracked, and the one already published is handed back to rewrite', () => {
    const s = new StatelessPorts('v4');
    const first = port(8080, 80);
    s.add([first]);
    const second = port(8081, 80);
    const lost = s.add([second]);
    expect(lost.map((p) => [p.hostIp, p.hostPort, p.containerPort, p.count])).toEqual([['0.0.0.0', 8080, 80, 1]]);
    expect([s.stateless(first), s.stateless(second)]).toEqual([false, false]);
    // A third on the same target loses nothing more: both were written tracked already.
    expect(s.add([port(8082, 80)])).toEqual([]);
    // Unpublished again, down to one: that one is handed back to be written stateless.
    expect(s.remove([second])).toEqual([]);
    expect(s.remove([port(8082, 80)]).map((p) => [p.hostIp, p.hostPort, p.containerPort])).toEqual([['0.0.0.0', 8080, 80]]);
    expect(s.stateless(first)).toBe(true);
    expect(s.remove([port(9999, 99)])).toEqual([]);
  });

  it('one host port on two host addresses to one target clashes; the same port published again does not', () => {
    const s = new StatelessPorts('v4');
    const a = port(8080, 80, { hostIp: '10.1.0.1' });
    s.add([a]);
    expect(s.add([a])).toEqual([]);
    expect(s.stateless(a)).toBe(true);
    const b = port(8080, 80, { hostIp: '10.1.0.2' });
    expect(s.add([b])).toHaveLength(1);
    expect([s.stateless(a), s.stateless(b)]).toEqual([false, false]);
  });

  it('judges runs by the target ports they share; other targets and protocols never clash', () => {
    const s = new StatelessPorts('v4');
    const range = port(8000, 80, { count: 100 }); // -> 80..179
    const inside = port(9000, 150);
    const outside = port(9001, 200);
    const elsewhere = port(9002, 150, { containerIp: '10.0.0.3' });
    const udp = port(9003, 150, { protocol: 'udp' });
    s.add([range, outside, elsewhere, udp]);
    expect([range, outside, elsewhere].map((p) => s.stateless(p))).toEqual([true, true, true]);
    expect(s.add([inside]).map((p) => p.hostPort)).toEqual([8000]);
    expect([range, inside, outside, elsewhere].map((p) => s.stateless(p))).toEqual([false, false, true, true]);
  });

  it('forgets unpublished ports, a run in part, so that a port published later is judged against what is left', () => {
    const s = new StatelessPorts('v4');
    s.add([port(8000, 80, { count: 100 })]);
    s.remove([port(8050, 130, { count: 10 })]); // 80..129 and 140..179 remain
    expect(s.stateless(port(9000, 135))).toBe(true);
    expect(s.stateless(port(9000, 125))).toBe(false);
    expect(s.stateless(port(9000, 145))).toBe(false);
    s.remove([port(8000, 80, { count: 100 })]);
    expect(s.stateless(port(9000, 125))).toBe(true);
    s.add([port(8000, 80)]);
    s.clear();
    expect(s.stateless(port(9000, 80))).toBe(true);
  });

  it('judges IPv6 by the IPv6 target and host address, apart from IPv4', () => {
    const s = new StatelessPorts('v6');
    const both = port(8080, 80);
    const v4only = port(8081, 80, { hostIp: '0.0.0.0' });
    const v6only = port(8082, 81, { hostIp: '::' });
    s.add([both, v4only, v6only]);
    expect([both, v4only, v6only].map((p) => s.stateless(p))).toEqual([true, false, true]);
    const same = port(8083, 80, { hostIp: 'fd00::1' });
    expect(s.add([same]).map((p) => [p.hostIp, p.hostPort])).toEqual([['::', 8080]]);
    expect([both, same].map((p) => s.stateless(p))).toEqual([false, false]);
    const four = new StatelessPorts('v4');
    four.add([both, v4only]);
    expect(four.stateless(both)).toBe(false);
  });

  it('keeps the bitmap of published TCP port numbers the uplink tests first: set while any port of a number is published', () => {
    const bits = new PublishedTcpPorts();
    const isSet = (n: number) => ((bits.bitmap()[n >> 3] >> (n & 7)) & 1) === 1;
    bits.add([port(8080, 80), port(8080, 80, { hostIp: '10.1.0.1' }), port(5353, 53, { protocol: 'udp' }), port(20000, 30000, { count: 100 }), port(65535, 1)]);
    expect([8080, 5353, 20000, 20099, 20100, 65535, 0].map(isSet)).toEqual([true, false, true, true, false, true, false]);
    // As a little-endian 64-bit word: port 65535 is the top bit of the last word.
    expect(bits.bitmap().readBigUInt64LE(8184) >> 63n).toBe(1n);
    bits.remove([port(8080, 80)]);
    expect(isSet(8080)).toBe(true);
    bits.remove([port(8080, 80, { hostIp: '10.1.0.1' }), port(20050, 30050, { count: 10 })]);
    expect([8080, 20049, 20050, 20059, 20060].map(isSet)).toEqual([false, true, false, false, true]);
    bits.clear();
    expect(bits.bitmap().every((b) => b === 0)).toBe(true);
  });

  it('keeps beside it the numbers published on an address of their own, for which the uplink looks for that port before the one on every address', () => {
    const bits = new PublishedTcpPorts();
    const isSetAt = (n: number) => ((bits.bitmapAt()[n >> 3] >> (n & 7)) & 1) === 1;
    bits.add([port(8080, 80), port(8081, 80, { hostIp: '0.0.0.0' }), port(8082, 80, { hostIp: '::' }), port(8443, 443, { hostIp: '10.1.0.1' }), port(8443, 443, { hostIp: 'fd00::1' }), port(53, 53, { hostIp: '10.1.0.1', protocol: 'udp' })]);
    expect([8080, 8081, 8082, 8443, 53].map(isSetAt)).toEqual([false, false, false, true, false]);
    bits.remove([port(8443, 443, { hostIp: '10.1.0.1' })]);
    expect(isSetAt(8443)).toBe(true);
    bits.remove([port(8443, 443, { hostIp: 'fd00::1' })]);
    expect(isSetAt(8443)).toBe(false);
    expect(bits.bitmap()[8080 >> 3] >> (8080 & 7) & 1).toBe(1);
  });
});
