/**
 * Forwarding to upstream resolvers: each query on its own socket (a fresh source port and a
 * fresh random id, so answers cannot be confused or easily spoofed), over the transport the
 * client used (UDP, or TCP after a truncated UDP answer), with a per-attempt and an overall
 * deadline. Upstreams are tried in order; one that timed out is tried last for a while, so a
 * dead first server does not slow every later query. In-flight forwards are bounded.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { connect } from 'node:net';
import dnsPacket from 'dns-packet';
import { canonical } from './name-index.js';
import type { Question } from 'dns-packet';
import type { Transport, Upstream } from './resolver.js';

export interface ForwarderOptions {
  /** One upstream's chance to answer, ms. */
  readonly attemptTimeoutMs?: number;
  /** All upstreams together, ms: the client hears SERVFAIL by then (glibc waits 5 s). */
  readonly totalTimeoutMs?: number;
  /** Forwards in flight at most; beyond that the client gets REFUSED at once. */
  readonly maxInFlight?: number;
  /** How long an upstream that timed out is tried last, ms. */
  readonly penaltyMs?: number;
}

export type ForwardResult = { readonly kind: 'answer'; readonly response: Buffer } | { readonly kind: 'failed' } | { readonly kind: 'busy' };

const SERVFAIL = 2;
const REFUSED = 5;

const key = (u: Upstream) => `${u.address}:${u.port}`;

/** Does `response` answer `question` under `id`? Anything else on the socket is ignored. */
function answers(response: Buffer, id: number, question: Question): boolean {
  if (response.length < 12 || response.readUInt16BE(0) !== id || !(response.readUInt16BE(2) & 0x8000)) return false;
  try {
    const q = dnsPacket.decode(response).questions?.[0];
    // A truncated answer may carry no question; the id and QR bit then have to do.
    if (!q) return response.readUInt16BE(4) === 0;
    return canonical(q.name) === canonical(question.name) && q.type === question.type && (q.class ?? 'IN') === (question.class ?? 'IN');
  } catch {
    return false;
  }
}

function exchangeUdp(upstream: Upstream, query: Buffer, id: number, question: Question, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    // IPv6 upstreams are reached over IPv6 (the host's resolv.conf may list only those).
    const socket = createSocket(isIP(upstream.address) === 6 ? 'udp6' : 'udp4');
    let done = false;
    const finish = (result: Buffer | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      resolve(result);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    // ECONNREFUSED (an ICMP port unreachable on the connected socket) ends the attempt at once.
    socket.on('error', () => finish(null));
    socket.on('message', (msg) => {
      if (answers(msg, id, question)) finish(msg);
    });
    socket.connect(upstream.port, upstream.address, () => {
      socket.send(query, (err) => {
        if (err) finish(null);
      });
    });
  });
}

function exchangeTcp(upstream: Upstream, query: Buffer, id: number, question: Question, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const socket = connect({ host: upstream.address, port: upstream.port });
    let done = false;
    let buffered: Buffer = Buffer.alloc(0);
    const finish = (result: Buffer | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    socket.on('error', () => finish(null));
    socket.on('close', () => finish(null));
    socket.on('connect', () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(query.length);
      socket.write(Buffer.concat([length, query]));
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const size = buffered.readUInt16BE(0);
        if (buffered.length < 2 + size) return;
        const msg = buffered.subarray(2, 2 + size);
        buffered = buffered.subarray(2 + size);
        if (answers(msg, id, question)) return finish(Buffer.from(msg));
      }
    });
  });
}

export class Forwarder {
  readonly #attemptMs: number;
  readonly #totalMs: number;
  readonly #maxInFlight: number;
  readonly #penaltyMs: number;
  #inFlight = 0;
  /** Upstreams that recently timed out, until when they are tried last. */
  readonly #slowUntil = new Map<string, number>();

  constructor(opts: ForwarderOptions = {}) {
    this.#attemptMs = opts.attemptTimeoutMs ?? 1500;
    this.#totalMs = opts.totalTimeoutMs ?? 2500;
    this.#maxInFlight = opts.maxInFlight ?? 1024;
    this.#penaltyMs = opts.penaltyMs ?? 30_000;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Upstreams in the order to try them: those that have not timed out lately first. */
  order(upstreams: readonly Upstream[], now = Date.now()): Upstream[] {
    const slow = (u: Upstream) => (this.#slowUntil.get(key(u)) ?? 0) > now;
    return [...upstreams.filter((u) => !slow(u)), ...upstreams.filter(slow)];
  }

  /**
   * Sends `query` (a client's, its id replaced by our own) to the upstreams in turn until one
   * answers with anything but SERVFAIL or REFUSED; never rejects.
   */
  async forward(query: Buffer, question: Question, upstreams: readonly Upstream[], transport: Transport): Promise<ForwardResult> {
    if (this.#inFlight >= this.#maxInFlight) return { kind: 'busy' };
    this.#inFlight++;
    try {
      const deadline = Date.now() + this.#totalMs;
      let fallback: Buffer | null = null;
      for (const upstream of this.order(upstreams)) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        const id = randomInt(0, 65536);
        const ours = Buffer.from(query);
        ours.writeUInt16BE(id, 0);
        const started = Date.now();
        const timeout = Math.min(this.#attemptMs, left);
        const response = await (transport === 'tcp' ? exchangeTcp : exchangeUdp)(upstream, ours, id, question, timeout);
        if (!response) {
          if (Date.now() - started >= timeout - 5) this.#slowUntil.set(key(upstream), Date.now() + this.#penaltyMs);
          continue;
        }
        this.#slowUntil.delete(key(upstream));
        const rcode = response.readUInt16BE(2) & 0xf;
        if (rcode === SERVFAIL || rcode === REFUSED) {
          fallback ??= response;
          continue;
        }
        return { kind: 'answer', response };
      }
      return fallback ? { kind: 'answer', response: fallback } : { kind: 'failed' };
    } catch {
      return { kind: 'failed' };
    } finally {
      this.#inFlight--;
    }
  }
}
