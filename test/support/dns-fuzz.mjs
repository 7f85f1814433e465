// Throws random and mutated DNS packets at a resolver, for robustness tests:
//   node dns-fuzz.mjs SERVER COUNT [SEED]
// COUNT datagrams over UDP in paced bursts, then 100 TCP connections carrying garbage or
// mutated length-prefixed queries. Exits 0 when everything was sent (answers are ignored).
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import dnsPacket from 'dns-packet';

const [server, countText, seedText = '1'] = process.argv.slice(2);
let a = Number(seedText) >>> 0;
const rand = () => {
  a = (a + 0x6d2b79f5) >>> 0;
  let t = a;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const byte = () => Math.floor(rand() * 256);

const seeds = [];
for (const name of ['alpine1', 'alpine4', 'web', 'example.test', 'nosuch.test', '2.0.18.172.in-addr.arpa', 'a.b.c'])
  for (const type of ['A', 'AAAA', 'PTR', 'MX', 'TXT', 'ANY']) {
    seeds.push(dnsPacket.encode({ type: 'query', id: byte() << 8 | byte(), flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] }));
    seeds.push(dnsPacket.encode({ type: 'query', id: 7, questions: [{ type, name }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: 0, options: [] }] }));
  }

function mutate() {
  if (rand() < 0.35) return Buffer.from(Array.from({ length: Math.floor(rand() * 700) }, byte));
  let b = Buffer.from(seeds[Math.floor(rand() * seeds.length)]);
  for (let i = 1 + Math.floor(rand() * 8); i > 0; i--) {
    const at = Math.floor(rand() * Math.max(1, b.length));
    switch (Math.floor(rand() * 7)) {
      case 0: if (b.length) b[at] ^= 1 << Math.floor(rand() * 8); break;
      case 1: if (b.length) b[at] = byte(); break;
      case 2: b = b.subarray(0, at); break;
      case 3: b = Buffer.concat([b, Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 64) }, byte))]); break;
      case 4: if (b.length > 13) { const p = 12 + Math.floor(rand() * (b.length - 13)); b[p] = 0xc0 | (byte() & 0x3f); b[p + 1] = byte(); } break;
      case 5: if (b.length >= 12) b.writeUInt16BE(rand() < 0.25 ? 0xffff : Math.floor(rand() * 4), 4 + 2 * Math.floor(rand() * 4)); break;
      default: if (b.length >= 4) b.writeUInt16BE(Math.floor(rand() * 65536), 2);
    }
  }
  return b;
}

const socket = createSocket('udp4');
socket.on('message', () => {});
socket.on('error', () => {});
const count = Number(countText);
for (let i = 0; i < count; i++) {
  socket.send(mutate(), 53, server);
  if (i % 100 === 99) await new Promise((r) => setTimeout(r, 1));
}
await Promise.all(
  Array.from({ length: 100 }, (_, i) =>
    new Promise((resolve) => {
      const c = connect(53, server);
      const junk = i % 2 ? Buffer.from(Array.from({ length: 300 }, byte)) : Buffer.concat(Array.from({ length: 4 }, () => { const m = mutate(); return Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]); }));
      c.on('error', () => resolve());
      c.on('data', () => {});
      c.on('connect', () => c.end(junk));
      c.on('close', () => resolve());
      setTimeout(() => { c.destroy(); resolve(); }, 3000);
    }),
  ),
);
socket.close();
process.stdout.write(`sent ${count} datagrams and 100 TCP streams\n`);
