// A small authoritative DNS server for tests, standing in for the host's upstream resolver:
//   node dns-server.mjs ADDRESS PORT RECORDS_JSON
// RECORDS_JSON maps names to IPv4 lists ({"example.test": ["203.0.113.7"]}). Unknown names get
// NXDOMAIN, known names NOERROR with their A records (none for other types: NODATA). A UDP
// answer larger than the client takes (512 bytes, or its EDNS size) is sent truncated (TC, no
// records), so the client must come back over TCP. Serves UDP and TCP; prints "ready", then one
// line per query: "<udp|tcp> <TYPE> <name>".
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import dnsPacket from 'dns-packet';

const [address, portText, recordsJson] = process.argv.slice(2);
const port = Number(portText);
const records = new Map(Object.entries(JSON.parse(recordsJson ?? '{}')).map(([k, v]) => [k.toLowerCase(), v]));

function answer(query, transport) {
  const q = query.questions[0];
  const name = q.name.toLowerCase().replace(/\.$/, '');
  process.stdout.write(`${transport} ${q.type} ${name}\n`);
  const ips = records.get(name);
  const rcode = ips ? 0 : 3;
  const answers = ips && q.type === 'A' ? ips.map((ip) => ({ type: 'A', name: q.name, ttl: 60, data: ip })) : [];
  const opt = (query.additionals ?? []).find((a) => a.type === 'OPT');
  const additionals = opt ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [] }] : [];
  const flags = dnsPacket.AUTHORITATIVE_ANSWER | (query.flags & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | rcode;
  const full = { type: 'response', id: query.id, flags, questions: [q], answers, additionals };
  const limit = transport === 'tcp' ? 65535 : Math.max(512, opt?.udpPayloadSize ?? 0);
  if (dnsPacket.encodingLength(full) > limit) return dnsPacket.encode({ ...full, flags: flags | dnsPacket.TRUNCATED_RESPONSE, answers: [] });
  return dnsPacket.encode(full);
}

function safely(buf, transport) {
  try {
    return answer(dnsPacket.decode(buf), transport);
  } catch {
    return null;
  }
}

const udp = createSocket('udp4');
udp.on('message', (msg, rinfo) => {
  const out = safely(msg, 'udp');
  if (out) udp.send(out, rinfo.port, rinfo.address);
});

const tcp = createServer((conn) => {
  let buffered = Buffer.alloc(0);
  conn.on('error', () => conn.destroy());
  conn.on('data', (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
      const size = buffered.readUInt16BE(0);
      const out = safely(buffered.subarray(2, 2 + size), 'tcp');
      buffered = buffered.subarray(2 + size);
      if (!out) continue;
      const len = Buffer.alloc(2);
      len.writeUInt16BE(out.length);
      conn.write(Buffer.concat([len, out]));
    }
  });
});

let ready = 0;
const up = () => {
  if (++ready === 2) process.stdout.write('ready\n');
};
udp.bind(port, address, up);
tcp.listen(port, address, up);
process.on('SIGTERM', () => process.exit(0));
