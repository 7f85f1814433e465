// An in-process upstream DNS server on loopback for the DNS unit tests (answers A records
// from a table, NXDOMAIN otherwise; can be told to stay silent or to SERVFAIL), and clients
// that query from a chosen loopback source address over UDP and TCP.
import { createSocket, type Socket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import dnsPacket from 'dns-packet';
import type { DecodedPacket } from 'dns-packet';
import { read, type Reply } from './dns-fixtures.js';

const GATEWAY = '127.0.0.1';
const CLIENT = '127.0.0.2';

export type Behaviour = 'answer' | 'silent' | 'servfail';

export class StubUpstream {
  readonly queries: Array<{ transport: 'udp' | 'tcp'; name: string; type: string }> = [];
  behaviour: Behaviour = 'answer';
  delayMs = 0;
  #udp?: Socket;
  #tcp?: Server;
  port = 0;

  constructor(
    readonly address: string,
    readonly records: Record<string, string[]> = {},
  ) {}

  #answer(buf: Buffer, transport: 'udp' | 'tcp'): Buffer | null {
    let q: DecodedPacket;
    try {
      q = dnsPacket.decode(buf);
    } catch {
      return null;
    }
    const question = q.questions?.[0];
    if (!question) return null;
    this.queries.push({ transport, name: question.name, type: question.type });
    if (this.behaviour === 'silent') return null;
    const name = question.name.toLowerCase();
    const ips = this.records[name];
    const rcode = this.behaviour === 'servfail' ? 2 : ips ? 0 : 3;
    const answers = ips && question.type === 'A' && rcode === 0 ? ips.map((data) => ({ type: 'A' as const, name: question.name, ttl: 60, data })) : [];
    return dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE | rcode, questions: [question], answers });
  }

  /** Binds UDP and TCP on the same free port. */
  async start(): Promise<this> {
    for (;;) {
      const port = 20000 + Math.floor(Math.random() * 30000);
      try {
        await this.#listen(port);
        this.port = port;
        return this;
      } catch {
        await this.stop();
      }
    }
  }

  async #listen(port: number): Promise<void> {
    const udp = createSocket('udp4');
    this.#udp = udp;
    udp.on('message', (msg, rinfo) => {
      const out = this.#answer(msg, 'udp');
      if (out) setTimeout(() => udp.send(out, rinfo.port, rinfo.address, () => undefined), this.delayMs);
    });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, this.address, () => resolve());
    });
    const tcp = createServer((conn) => {
      let buffered: Buffer = Buffer.alloc(0);
      conn.on('error', () => conn.destroy());
      conn.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          const out = this.#answer(buffered.subarray(2, 2 + buffered.readUInt16BE(0)), 'tcp');
          buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
          if (!out) continue;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(out.length);
          conn.write(Buffer.concat([len, out]));
        }
      });
    });
    this.#tcp = tcp;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, this.address, () => resolve());
    });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      try {
        if (this.#udp) this.#udp.close(() => resolve());
        else resolve();
      } catch {
        resolve();
      }
    });
    await new Promise<void>((resolve) => (this.#tcp ? this.#tcp.close(() => resolve()) : resolve()));
    this.#udp = undefined;
    this.#tcp = undefined;
  }
}

/** A free port on address for UDP and TCP, found by trying. */
export async function freePort(address: string): Promise<number> {
  const probe = new StubUpstream(address);
  await probe.start();
  const port = probe.port;
  await probe.stop();
  return port;
}

/** One UDP query from `source`; resolves with the reply, or null after timeoutMs. */
export function udpAsk(port: number, packet: Buffer, source = CLIENT, timeoutMs = 4000): Promise<Reply | null> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(null);
    }, timeoutMs);
    s.on('message', (msg) => {
      clearTimeout(timer);
      s.close();
      resolve(read(msg));
    });
    s.bind(0, source, () => s.send(packet, port, GATEWAY));
  });
}

/** Several queries on one TCP connection (pipelined); resolves with the replies by id. */
export function tcpAsk(port: number, packets: Buffer[], source = CLIENT): Promise<Reply[]> {
  return new Promise((resolve, reject) => {
    const c = connect({ port, host: GATEWAY, localAddress: source });
    const replies: Reply[] = [];
    let buffered: Buffer = Buffer.alloc(0);
    c.on('error', reject);
    c.on('connect', () => {
      c.write(Buffer.concat(packets.map((p) => Buffer.concat([Buffer.from([p.length >> 8, p.length & 255]), p]))));
    });
    c.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        replies.push(read(buffered.subarray(2, 2 + buffered.readUInt16BE(0))));
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
      }
      if (replies.length === packets.length) {
        c.destroy();
        resolve(replies);
      }
    });
  });
}

