import { describe, expect, it } from 'vitest';
import type { Protocol } from '../../src/networks/model.js';
import { BindingIndex, EPHEMERAL, expandPortRequest, parsePortSpec, PortCursor, type PortBinding } from '../../src/networks/ports.js';

type B = { protocol: Protocol; hostIp: string; hostPort: number };

/** The daemon's planning loop (sandboxes/service.ts #planPorts) without its store. */
function plan(specs: string[], existing: B[] = []): PortBinding[] {
  const taken = new BindingIndex<B>(existing);
  const cursor = new PortCursor();
  const out: PortBinding[] = [];
  for (const spec of specs) {
    for (const b of expandPortRequest(parsePortSpec(spec), (protocol, hostIp, hostPort) => !taken.clash({ protocol, hostIp, hostPort }), spec, cursor)) {
      taken.add(b);
      out.push(b);
    }
  }
  return out;
}

describe('published port allocation', () => {
  it('gives 10,000 container ports ephemeral host ports in well under a second (the old choice was quadratic)', () => {
    // The old loop scanned from the range start with out.some(): ~10,000 x 10,000 / 2 x 10,000 steps, minutes.
    const t0 = performance.now();
    const out = plan(['20000-29999']);
    const ms = performance.now() - t0;
    expect(out).toHaveLength(10_000);
    expect(new Set(out.map((b) => b.hostPort)).size).toBe(10_000);
    expect(out[0].hostPort).toBe(EPHEMERAL.first);
    expect(out[9999].hostPort).toBe(EPHEMERAL.first + 9999);
    expect(ms).toBeLessThan(1000);
  });

  it('skips ports already published and shares the cursor across specs', () => {
    const existing: B[] = [0, 1, 3].map((i) => ({ protocol: 'tcp', hostIp: '', hostPort: EPHEMERAL.first + i }));
    const out = plan(['80', '81-83', '127.0.0.1::84', '85/udp'], existing);
    expect(out.map((b) => `${b.hostIp}:${b.hostPort}/${b.protocol}->${b.containerPort}`)).toEqual([
      `:${EPHEMERAL.first + 2}/tcp->80`,
      `:${EPHEMERAL.first + 4}/tcp->81`,
      `:${EPHEMERAL.first + 5}/tcp->82`,
      `:${EPHEMERAL.first + 6}/tcp->83`,
      // 127.0.0.1 clashes with the any-address bindings below first+7 only through the index.
      `127.0.0.1:${EPHEMERAL.first + 7}/tcp->84`,
      `:${EPHEMERAL.first}/udp->85`,
    ]);
  });

  it("given a sandbox, a range with its host ports is one run; ports it must choose are one record each", () => {
    const never = () => false;
    const run = (spec: string) => expandPortRequest(parsePortSpec(spec), never, spec, new PortCursor(), 's1');
    expect(run('10000-19999:20000-29999/udp')).toEqual([{ sandboxId: 's1', protocol: 'udp', hostIp: '', hostPort: 10000, containerPort: 20000, count: 10000 }]);
    expect(run('127.0.0.1:8080:80')).toEqual([{ sandboxId: 's1', protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80 }]);
    const free = (_p: Protocol, _ip: string, port: number) => port !== 8000;
    const choose = (spec: string) => expandPortRequest(parsePortSpec(spec), free, spec, new PortCursor(), 's1');
    expect(choose('8000-8001:80')).toEqual([{ sandboxId: 's1', protocol: 'tcp', hostIp: '', hostPort: 8001, containerPort: 80 }]);
    expect(choose('80-81').map((r) => [r.hostPort, r.containerPort, r.count])).toEqual([
      [EPHEMERAL.first, 80, undefined],
      [EPHEMERAL.first + 1, 81, undefined],
    ]);
  });

  it('picks one free port of a host range, and says when none is left', () => {
    const existing: B[] = [{ protocol: 'tcp', hostIp: '', hostPort: 8000 }];
    expect(plan(['8000-8001:80'], existing)[0].hostPort).toBe(8001);
    expect(() => plan(['8000-8001:80', '8000-8001:81'], existing)).toThrow(/no free host port in 8000-8001/);
  });

  it('scales linearly in the number of ports: 20,000 take about twice as long as 10,000', () => {
    const time = (n: number) => {
      const t0 = performance.now();
      expect(plan([`1-${n}`])).toHaveLength(n);
      return performance.now() - t0;
    };
    time(5000);
    const a = Math.min(time(10_000), time(10_000));
    const b = Math.min(time(20_000), time(20_000));
    expect(b / a).toBeLessThan(4);
  });
});

describe('IPv6 host addresses in -p', () => {
  it('parses [::]:H:C and [::1]:H:C, canonical, and refuses unbracketed or malformed IPv6', () => {
    expect(parsePortSpec('[::]:8080:80')).toMatchObject({ hostIp: '::', hostStart: 8080, containerStart: 80, protocol: 'tcp' });
    expect(parsePortSpec('[0:0::1]:8081:80/udp')).toMatchObject({ hostIp: '::1', hostStart: 8081, protocol: 'udp' });
    expect(parsePortSpec('8080:80').hostIp).toBe('');
    for (const bad of ['[::1:8080:80', '[::1]8080:80', '[1.2.3.4]:1:2', '[fe80::zz]:1:2', '::1:8080:80'])
      expect(() => parsePortSpec(bad), bad).toThrow(/invalid port spec/);
  });

  it('an any-IPv6 binding clashes with every IPv6 address and the all-families one, never with IPv4', () => {
    const idx = new BindingIndex([{ protocol: 'tcp' as const, hostIp: '::', hostPort: 8080 }]);
    expect(idx.clash({ protocol: 'tcp', hostIp: '::1', hostPort: 8080 })).toBeDefined();
    expect(idx.clash({ protocol: 'tcp', hostIp: '', hostPort: 8080 })).toBeDefined();
    expect(idx.clash({ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8080 })).toBeUndefined();
    expect(idx.clash({ protocol: 'udp', hostIp: '::1', hostPort: 8080 })).toBeUndefined();
  });

  it('an any-IPv4 binding (0.0.0.0, as dockerd passes -p 0.0.0.0:H:C) clashes with every IPv4 address, never with IPv6', () => {
    const idx = new BindingIndex([{ protocol: 'tcp' as const, hostIp: '0.0.0.0', hostPort: 8080 }]);
    expect(idx.clash({ protocol: 'tcp', hostIp: '198.18.0.1', hostPort: 8080 })).toBeDefined();
    expect(idx.clash({ protocol: 'tcp', hostIp: '', hostPort: 8080 })).toBeDefined();
    expect(idx.clash({ protocol: 'tcp', hostIp: '::', hostPort: 8080 })).toBeUndefined();
    expect(new BindingIndex([{ protocol: 'tcp' as const, hostIp: '198.18.0.1', hostPort: 8080 }]).clash({ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8080 })).toBeDefined();
  });
});
