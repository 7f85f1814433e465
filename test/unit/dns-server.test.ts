// The resolver's sockets and forwarding on loopback (no root): UDP and TCP with pipelining,
// forwarding that keeps NXDOMAIN and NODATA apart, timeouts that end in SERVFAIL in bounded
// time, a dead upstream that neither stalls local answers nor later queries, and the bound on
// forwards in flight.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedDns } from '../../src/dns/embedded-dns.js';
import { Forwarder } from '../../src/dns/upstream.js';
import { FakeDnsStore, query, read } from './dns-fixtures.js';
import { freePort, StubUpstream, tcpAsk, udpAsk } from './dns-upstream.js';

const GATEWAY = '127.0.0.1';
const CLIENT = '127.0.0.2';

describe('embedded DNS on real sockets', () => {
  const store = new FakeDnsStore();
  const upstream = new StubUpstream('127.0.0.1', { 'example.test.': ['203.0.113.7'], 'example.test': ['203.0.113.7'] });
  let dns: EmbeddedDns;
  let port: number;

  beforeAll(async () => {
    await upstream.start();
    const net = store.network('lo', '127.0.0.0/24');
    store.attach(store.sandbox('client'), net, CLIENT);
    store.attach(store.sandbox('peer'), net, '127.0.0.3', ['friend']);
    port = await freePort(GATEWAY);
    dns = new EmbeddedDns({ store, servers: ['127.0.0.1'], hostResolvConf: '', port, upstreamPort: upstream.port, forwarder: { attemptTimeoutMs: 300, totalTimeoutMs: 700 } });
    await dns.sync();
    expect(dns.listening).toEqual([GATEWAY]);
  });

  afterAll(async () => {
    await dns?.stop();
    await upstream.stop();
  });

  it('answers local names over UDP', async () => {
    expect(await udpAsk(port, query('peer'))).toMatchObject({ rcode: 'NOERROR', answers: ['127.0.0.3'] });
  });

  it('answers over TCP, several queries on one connection', async () => {
    const replies = await tcpAsk(port, [query('peer', 'A', { id: 1 }), query('friend', 'A', { id: 2 }), query('example.test', 'A', { id: 3 })]);
    const byId = new Map(replies.map((r) => [r.id, r]));
    expect(byId.get(1)?.answers).toEqual(['127.0.0.3']);
    expect(byId.get(2)?.answers).toEqual(['127.0.0.3']);
    expect(byId.get(3)?.answers).toEqual(['203.0.113.7']);
    expect(upstream.queries.some((q) => q.transport === 'tcp' && q.name === 'example.test')).toBe(true);
  });

  it('forwards the rest, keeping NXDOMAIN and NODATA apart', async () => {
    expect(await udpAsk(port, query('example.test'))).toMatchObject({ rcode: 'NOERROR', answers: ['203.0.113.7'] });
    expect(await udpAsk(port, query('example.test', 'AAAA'))).toMatchObject({ rcode: 'NOERROR', answers: [] });
    expect(await udpAsk(port, query('missing.test'))).toMatchObject({ rcode: 'NXDOMAIN', answers: [] });
  });

  it('refuses clients that are not sandboxes of the network', async () => {
    expect(await udpAsk(port, query('peer'), '127.0.0.9')).toMatchObject({ rcode: 'REFUSED', answers: [] });
  });

  it('answers SERVFAIL in bounded time when the upstream is silent, and keeps answering local names meanwhile', async () => {
    upstream.behaviour = 'silent';
    try {
      const t0 = Date.now();
      const pending = udpAsk(port, query('slow.test'));
      const local = await udpAsk(port, query('peer'));
      expect(local?.answers).toEqual(['127.0.0.3']);
      expect(Date.now() - t0).toBeLessThan(200);
      const failed = await pending;
      expect(failed?.rcode).toBe('SERVFAIL');
      expect(Date.now() - t0).toBeLessThan(1500);
    } finally {
      upstream.behaviour = 'answer';
    }
  });
});

describe('forwarder', () => {
  const good = new StubUpstream('127.0.0.1', { 'a.test': ['192.0.2.1'] });
  const silent = new StubUpstream('127.0.0.1');
  const failing = new StubUpstream('127.0.0.1');
  const question = { type: 'A' as const, name: 'a.test' };

  beforeAll(async () => {
    await Promise.all([good.start(), silent.start(), failing.start()]);
    silent.behaviour = 'silent';
    failing.behaviour = 'servfail';
  });

  afterAll(async () => {
    await Promise.all([good.stop(), silent.stop(), failing.stop()]);
  });

  const at = (s: StubUpstream) => ({ address: s.address, port: s.port });

  it('moves on from an upstream that answers SERVFAIL', async () => {
    const r = await new Forwarder().forward(query('a.test'), question, [at(failing), at(good)], 'udp');
    expect(r.kind).toBe('answer');
    expect(read((r as { response: Buffer }).response).answers).toEqual(['192.0.2.1']);
  });

  it('moves on from a port nobody listens on at once (ICMP port unreachable)', async () => {
    const closed = await freePort('127.0.0.1');
    const t0 = Date.now();
    const r = await new Forwarder({ attemptTimeoutMs: 2000 }).forward(query('a.test'), question, [{ address: '127.0.0.1', port: closed }, at(good)], 'udp');
    expect(r.kind).toBe('answer');
    expect(Date.now() - t0).toBeLessThan(500);
  });

  it('tries an upstream that timed out last for a while, so it stalls one query, not every one', async () => {
    const f = new Forwarder({ attemptTimeoutMs: 200, totalTimeoutMs: 1000 });
    let t0 = Date.now();
    expect((await f.forward(query('a.test'), question, [at(silent), at(good)], 'udp')).kind).toBe('answer');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    t0 = Date.now();
    expect((await f.forward(query('a.test'), question, [at(silent), at(good)], 'udp')).kind).toBe('answer');
    expect(Date.now() - t0).toBeLessThan(150);
  });

  it('fails within its overall deadline when no upstream answers', async () => {
    const t0 = Date.now();
    const r = await new Forwarder({ attemptTimeoutMs: 300, totalTimeoutMs: 500 }).forward(query('a.test'), question, [at(silent), at(silent), at(silent)], 'tcp');
    expect(r.kind).toBe('failed');
    expect(Date.now() - t0).toBeLessThan(800);
  });

  it('refuses beyond its bound of forwards in flight', async () => {
    const f = new Forwarder({ attemptTimeoutMs: 200, totalTimeoutMs: 200, maxInFlight: 2 });
    const all = await Promise.all([0, 1, 2].map(() => f.forward(query('a.test'), question, [at(silent)], 'udp')));
    expect(all.map((r) => r.kind).sort()).toEqual(['busy', 'failed', 'failed']);
    expect(f.inFlight).toBe(0);
  });

  it('ignores answers that do not match the question', async () => {
    const liar = new StubUpstream('127.0.0.1', { 'b.test': ['192.0.2.66'] });
    await liar.start();
    try {
      const r = await new Forwarder({ attemptTimeoutMs: 200, totalTimeoutMs: 300 }).forward(query('b.test'), question, [at(liar)], 'udp');
      expect(r.kind).toBe('failed');
    } finally {
      await liar.stop();
    }
  });
});
