// One DNS query, for tests that need to see the wire answer (rcode, TC, record order):
//   node dns-query.mjs SERVER NAME [TYPE=A] [udp|tcp] [TIMEOUT_MS=3000] [COUNT=1]
// Prints one JSON line per query: {"rcode":"NOERROR","tc":false,"answers":["10.0.0.2"],"ms":1.2}
// or {"error":"timeout","ms":3000}.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import dnsPacket from 'dns-packet';

const [server, name, type = 'A', transport = 'udp', timeoutText = '3000', countText = '1'] = process.argv.slice(2);
const timeoutMs = Number(timeoutText);

function summary(buf, started) {
  const r = dnsPacket.decode(buf);
  return { rcode: r.rcode, tc: r.flag_tc, aa: r.flag_aa, answers: (r.answers ?? []).map((a) => (typeof a.data === 'string' ? a.data : String(a.type))), ms: Number((performance.now() - started).toFixed(2)) };
}

function queryUdp(packet) {
  return new Promise((resolve) => {
    const started = performance.now();
    const s = createSocket(server.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve({ error: 'timeout', ms: timeoutMs });
    }, timeoutMs);
    s.on('error', (err) => {
      clearTimeout(timer);
      s.close();
      resolve({ error: err.code ?? err.message, ms: performance.now() - started });
    });
    s.on('message', (msg) => {
      clearTimeout(timer);
      s.close();
      resolve(summary(msg, started));
    });
    s.send(packet, 53, server);
  });
}

function queryTcp(packet) {
  return new Promise((resolve) => {
    const started = performance.now();
    const c = connect(53, server);
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => {
      c.destroy();
      resolve({ error: 'timeout', ms: timeoutMs });
    }, timeoutMs);
    c.on('error', (err) => {
      clearTimeout(timer);
      resolve({ error: err.code ?? err.message, ms: performance.now() - started });
    });
    c.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(packet.length);
      c.write(Buffer.concat([len, packet]));
    });
    c.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        clearTimeout(timer);
        c.destroy();
        resolve(summary(buffered.subarray(2, 2 + buffered.readUInt16BE(0)), started));
      }
    });
  });
}

for (let i = 0; i < Number(countText); i++) {
  const packet = dnsPacket.encode({ type: 'query', id: (Math.random() * 65536) | 0, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] });
  const result = await (transport === 'tcp' ? queryTcp(packet) : queryUdp(packet));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
