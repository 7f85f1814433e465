// Fuzzing the embedded DNS: 120,000 random and mutated packets through the answer logic (and the
// relay of mutated upstream answers), then 20,000 more and a few hundred garbage TCP streams at
// the real sockets; nothing may throw, every answer must be a response to the query it answers,
// and afterwards it must still answer correctly. Seeded, so a failure can be replayed.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedDns } from '../../src/dns/embedded-dns.js';
import { LiveNameIndex } from '../../src/dns/name-index.js';
import { failure, relay, Resolver, type QueryContext } from '../../src/dns/resolver.js';
import { FakeDnsStore, query } from './dns-fixtures.js';
import { freePort, StubUpstream, udpAsk } from './dns-upstream.js';
import { seededRandom } from '../../src/util/seeded-random.js';

const SEED = Number(process.env.DNS_FUZZ_SEED ?? 0x5eed);


function corpus(): Buffer[] {
  const names = ['peer', 'friend', 'client', 'peer.lo', 'example.test', 'nothing.invalid', '3.0.0.127.in-addr.arpa', '9.9.9.9.in-addr.arpa', 'a.b.c.d.e.f', 'PEER.'];
  const types = ['A', 'AAAA', 'PTR', 'MX', 'TXT', 'SRV', 'ANY', 'CNAME', 'SOA'] as const;
  const out: Buffer[] = [];
  for (const name of names)
    for (const type of types) {
      out.push(query(name, type as Parameters<typeof query>[1]));
      out.push(query(name, type as Parameters<typeof query>[1], { edns: 4096 }));
    }
  out.push(dnsPacket.encode({ type: 'response', id: 1, questions: [{ type: 'A', name: 'peer' }], answers: [{ type: 'A', name: 'peer', data: '1.2.3.4' }] }));
  return out;
}

function mutate(rand: () => number, seeds: Buffer[]): Buffer {
  const byte = () => Math.floor(rand() * 256);
  if (rand() < 0.35) return Buffer.from(Array.from({ length: Math.floor(rand() * 700) }, byte));
  let b = Buffer.from(seeds[Math.floor(rand() * seeds.length)]);
  const ops = 1 + Math.floor(rand() * 8);
  for (let i = 0; i < ops; i++) {
    const at = Math.floor(rand() * Math.max(1, b.length));
    switch (Math.floor(rand() * 8)) {
      case 0: // flip a bit
        if (b.length) b[at] ^= 1 << Math.floor(rand() * 8);
        break;
      case 1: // a random byte
        if (b.length) b[at] = byte();
        break;
      case 2: // cut short
        b = b.subarray(0, at);
        break;
      case 3: // trailing junk
        b = Buffer.concat([b, Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 64) }, byte))]);
        break;
      case 4: // a compression pointer, possibly to itself or forward
        if (b.length > 13) {
          const p = 12 + Math.floor(rand() * (b.length - 13));
          b[p] = 0xc0 | (byte() & 0x3f);
          b[p + 1] = byte();
        }
        break;
      case 5: // header counts
        if (b.length >= 12) b.writeUInt16BE(Math.floor(rand() * 4) === 0 ? 0xffff : Math.floor(rand() * 4), 4 + 2 * Math.floor(rand() * 4));
        break;
      case 6: // flags: QR, opcode, rcode, TC
        if (b.length >= 4) b.writeUInt16BE(Math.floor(rand() * 65536), 2);
        break;
      default: // a label length byte gone wrong
        if (b.length > 12) b[12 + Math.floor(rand() * (b.length - 12))] = Math.floor(rand() * 2) ? 63 : 64 + Math.floor(rand() * 192);
    }
  }
  return b;
}

describe('fuzzing the embedded DNS', () => {
  const store = new FakeDnsStore();
  const net = store.network('lo', '127.0.0.0/24');
  const internal = store.network('walled', '10.77.0.0/24', { internal: true });
  store.attach(store.sandbox('client'), net, '127.0.0.2');
  store.attach(store.sandbox('peer'), net, '127.0.0.3', ['friend']);
  store.attach(store.sandbox('inmate'), internal, '10.77.0.2');
  const seeds = corpus();

  it('survives 120,000 random and mutated packets in the answer logic, each answer a response to its query', () => {
    const resolver = new Resolver(new LiveNameIndex(store), { upstreams: () => [{ address: '127.0.0.1', port: 53 }] });
    const rand = seededRandom(SEED);
    const contexts: QueryContext[] = [
      { source: '127.0.0.2', local: '127.0.0.1', transport: 'udp' },
      { source: '127.0.0.2', local: '127.0.0.1', transport: 'tcp' },
      { source: '10.77.0.2', local: '10.77.0.1', transport: 'udp' },
      { source: '192.0.2.1', local: '127.0.0.1', transport: 'udp' },
    ];
    const kinds = { reply: 0, forward: 0, drop: 0 };
    for (let i = 0; i < 120_000; i++) {
      const packet = mutate(rand, seeds);
      const ctx = contexts[i % contexts.length];
      let d;
      try {
        d = resolver.resolve(packet, ctx);
      } catch (err) {
        throw new Error(`seed ${SEED}, packet ${i} (${packet.toString('hex')}) threw: ${(err as Error).stack}`);
      }
      kinds[d.kind]++;
      if (d.kind === 'drop') continue;
      let out: Buffer;
      if (d.kind === 'reply') out = d.packet;
      else if (rand() < 0.3) out = failure(d, 2);
      else {
        // What the forwarder hands to relay: any datagram with the QR bit (it checked id and question).
        let upstream = Buffer.from(mutate(rand, [d.query]));
        if (upstream.length < 12) upstream = Buffer.from(d.query);
        upstream[2] |= 0x80;
        out = relay(d, upstream);
      }
      // Every answer: at least a header, the QR bit, the query's id; over UDP within what the client takes.
      const wrong =
        out.length < 12 ? 'shorter than a header' :
        out.readUInt16BE(0) !== packet.readUInt16BE(0) ? 'another id' :
        !(out.readUInt16BE(2) & 0x8000) ? 'no QR bit' :
        ctx.transport === 'udp' && d.kind === 'reply' && out.length > 4096 ? 'too large for UDP' : '';
      if (wrong) throw new Error(`seed ${SEED}, packet ${i} (${packet.toString('hex')}): answer ${wrong}`);
    }
    // The fuzz reached every path, not only the error answers.
    expect(kinds.reply).toBeGreaterThan(10_000);
    expect(kinds.forward).toBeGreaterThan(1_000);
    expect(kinds.drop).toBeGreaterThan(1_000);
  }, 60_000);

  describe('on real sockets', () => {
    const upstream = new StubUpstream('127.0.0.1', { 'example.test': ['203.0.113.7'] });
    const problems: string[] = [];
    let dns: EmbeddedDns;
    let port: number;

    beforeAll(async () => {
      await upstream.start();
      port = await freePort('127.0.0.1');
      dns = new EmbeddedDns({
        store,
        servers: ['127.0.0.1'],
        hostResolvConf: '',
        port,
        upstreamPort: upstream.port,
        forwarder: { attemptTimeoutMs: 300, totalTimeoutMs: 500, maxInFlight: 256 },
        log: { warn: (m) => problems.push(m), debug: (m) => problems.push(m) },
      });
      await dns.sync();
    });

    afterAll(async () => {
      await dns?.stop();
      await upstream.stop();
    });

    it('takes 20,000 mutated datagrams and 300 garbage TCP streams, then still answers correctly', async () => {
      const rand = seededRandom(SEED + 1);
      const socket = createSocket('udp4');
      socket.on('message', () => undefined);
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.2', () => resolve()));
      for (let i = 0; i < 20_000; i++) {
        socket.send(mutate(rand, seeds), port, '127.0.0.1');
        // Bursts of 200, then let the event loop breathe (the kernel drops what overflows).
        if (i % 200 === 199) await new Promise((r) => setTimeout(r, 2));
      }
      await Promise.all(
        Array.from({ length: 300 }, (_, i) => {
          const junk = i % 3 === 0 ? Buffer.from([0xff, 0xff, ...Array.from({ length: 100 }, () => Math.floor(rand() * 256))]) : Buffer.concat(Array.from({ length: 5 }, () => { const m = mutate(rand, seeds); return Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]); }));
          return new Promise<void>((resolve) => {
            const c = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
            c.on('error', () => resolve());
            c.on('data', () => undefined);
            c.on('connect', () => c.end(junk));
            c.on('close', () => resolve());
            setTimeout(() => {
              c.destroy();
              resolve();
            }, 2000);
          });
        }),
      );
      socket.close();
      await new Promise((r) => setTimeout(r, 600)); // forwards in flight run out
      expect(await udpAsk(port, query('peer'))).toMatchObject({ rcode: 'NOERROR', answers: ['127.0.0.3'] });
      expect(await udpAsk(port, query('example.test'))).toMatchObject({ rcode: 'NOERROR', answers: ['203.0.113.7'] });
      expect(await udpAsk(port, query('nothing.test'))).toMatchObject({ rcode: 'NXDOMAIN' });
      expect(problems.filter((p) => p.includes('failed'))).toEqual([]);
    }, 60_000);
  });
});
