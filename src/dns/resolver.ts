/**
 * The embedded resolver's answer logic, pure and synchronous: a query's bytes and where it came
 * from in, a decision out — an answer to send, a query to forward upstream, or nothing. The
 * wire format is dns-packet's; this file only decides. Sockets are in server.ts, forwarding in
 * upstream.ts.
 *
 * What it answers (Docker's embedded DNS, see DESIGN.md "Names"): for a sandbox on user-defined
 * networks, the names (sandbox name, short id, network aliases) of the sandboxes that share one
 * of those networks, with their address on the shared network, and PTR for those addresses.
 * A and AAAA answer with the sandboxes' addresses of that family; PTR covers in-addr.arpa and
 * ip6.arpa. A name it owns gets NOERROR with no records for other types (or for a family the
 * sandbox has no address of): NODATA, not NXDOMAIN, because the name exists. Everything else is forwarded to the
 * sandbox's --dns servers or the daemon's upstreams, except from sandboxes only on --internal
 * networks, which get REFUSED: forwarding from the daemon would carry them out of their network.
 */
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, OptAnswer, Question } from 'dns-packet';
import { formatIp } from '../ipam/ip.js';
import { canonical, type LiveNameIndex, type Target } from './name-index.js';

export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

const QR = 0x8000;
const AA = dnsPacket.AUTHORITATIVE_ANSWER;
const TC = dnsPacket.TRUNCATED_RESPONSE;
const RD = dnsPacket.RECURSION_DESIRED;
const RA = dnsPacket.RECURSION_AVAILABLE;
const OPCODE_MASK = 0x7800;
/** EDNS BADVERS (16) is the extended rcode 1 with header rcode 0. */
const BADVERS_EXTENDED = 1;
/** Largest UDP answer we send without the client asking for more with EDNS (RFC 1035). */
export const CLASSIC_UDP_SIZE = 512;
/** What we advertise and honour at most over UDP (DNS flag day 2020). */
export const EDNS_UDP_SIZE = 1232;
const MAX_UDP_SIZE = 4096;
/** Cached answers at most (all dropped when full, and whenever the names change). */
const MAX_CACHED = 4096;

export type Transport = 'udp' | 'tcp';

export interface Upstream {
  readonly address: string;
  readonly port: number;
}

export interface QueryContext {
  /** The client's source address. */
  readonly source: string;
  /** The address the query arrived on (a network's gateway). */
  readonly local: string;
  readonly transport: Transport;
}

/** A query to forward, and what is needed to answer the client afterwards. */
export interface Forward {
  readonly kind: 'forward';
  /** The client's query as it came (the forwarder gives it its own id). */
  readonly query: Buffer;
  readonly id: number;
  readonly question: Question;
  readonly transport: Transport;
  /** The largest answer the client takes (over UDP; larger ones are sent truncated). */
  readonly maxSize: number;
  readonly edns: boolean;
  readonly upstreams: readonly Upstream[];
}

export type Decision = { readonly kind: 'reply'; readonly packet: Buffer; readonly cacheable?: boolean } | Forward | { readonly kind: 'drop' };

export interface ResolverOptions {
  /** TTL of our answers, seconds: short, since names change with every run, rm and rename. */
  readonly ttl?: number;
  /** The daemon's upstreams (--dns, else the host's resolv.conf), for sandboxes without --dns. */
  readonly upstreams: () => readonly Upstream[];
}

export const DEFAULT_TTL = 5;

function optRecord(): OptAnswer {
  return { type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_SIZE, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] };
}

/** A reply with only a header (and the question, when we have one): errors, refusals, truncation. */
function bare(id: number, queryFlags: number, rcode: number, question?: Question, edns = false, extra = 0): Buffer {
  const flags = (queryFlags & (OPCODE_MASK | RD)) | RA | (rcode & 0xf) | extra;
  const additionals: Answer[] = edns ? [optRecord()] : [];
  return dnsPacket.encode({ type: 'response', id, flags, questions: question ? [question] : [], additionals });
}

/** The reverse-zone name of a PTR query (in-addr.arpa, or 32 nibbles of ip6.arpa) -> the address; undefined for anything else. */
export function ptrAddress(name: string): string | undefined {
  const key = canonical(name);
  const six = '.ip6.arpa';
  if (key.endsWith(six)) {
    const nibbles = key.slice(0, -six.length).split('.');
    if (nibbles.length !== 32 || nibbles.some((n) => !/^[0-9a-f]$/.test(n))) return undefined;
    return formatIp({ family: 6, value: BigInt(`0x${nibbles.reverse().join('')}`) });
  }
  const suffix = '.in-addr.arpa';
  if (!key.endsWith(suffix)) return undefined;
  const labels = key.slice(0, -suffix.length).split('.');
  if (labels.length !== 4 || labels.some((l) => !/^\d{1,3}$/.test(l) || Number(l) > 255 || (l.length > 1 && l.startsWith('0')))) return undefined;
  return labels.reverse().join('.');
}

export class Resolver {
  readonly #index: LiveNameIndex;
  readonly #ttl: number;
  readonly #upstreams: () => readonly Upstream[];
  /** Round-robin position per (network, name) with several addresses. */
  #turns = new Map<string, number>();
  /**
   * Our answers to the same query bytes (all but the id) from the same sandbox, until the names
   * change: a repeated query skips decoding and encoding. Names with several addresses rotate
   * and are not kept.
   */
  #answers = new Map<string, Buffer>();

  constructor(index: LiveNameIndex, opts: ResolverOptions) {
    this.#index = index;
    this.#ttl = opts.ttl ?? DEFAULT_TTL;
    this.#upstreams = opts.upstreams;
    index.onRebuild = () => {
      this.#turns = new Map();
      this.#answers = new Map();
    };
  }

  resolve(bytes: Buffer, ctx: QueryContext): Decision {
    if (bytes.length < 12) return { kind: 'drop' };
    const id = bytes.readUInt16BE(0);
    const flags = bytes.readUInt16BE(2);
    // Never answer a response: two resolvers must not be able to bounce packets forever.
    if (flags & QR) return { kind: 'drop' };
    const reply = (packet: Buffer): Decision => ({ kind: 'reply', packet });
    if (flags & OPCODE_MASK) return reply(bare(id, flags, Rcode.NOTIMP));
    // A standard query has one question and no answer or authority records: checking the
    // counts first keeps a hostile header from making the decoder walk thousands of records.
    const [qd, an, ns, ar] = [bytes.readUInt16BE(4), bytes.readUInt16BE(6), bytes.readUInt16BE(8), bytes.readUInt16BE(10)];
    if (qd !== 1 || an !== 0 || ns !== 0 || ar > 2) return reply(bare(id, flags, Rcode.FORMERR));
    const index = this.#index.current;
    const who = index.querier(ctx.source, ctx.local);
    const cacheKey = who ? `${who.sandbox.id}|${ctx.transport}|${bytes.toString('latin1', 2)}` : undefined;
    const cached = cacheKey ? this.#answers.get(cacheKey) : undefined;
    if (cached) {
      const packet = Buffer.from(cached);
      packet.writeUInt16BE(id, 0);
      return reply(packet);
    }
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(bytes);
    } catch {
      return reply(bare(id, flags, Rcode.FORMERR));
    }
    const question = query.questions?.[0];
    if (!question || typeof question.name !== 'string') return reply(bare(id, flags, Rcode.FORMERR));
    const opt = (query.additionals ?? []).find((a): a is OptAnswer => a.type === 'OPT');
    const edns = opt !== undefined;
    const maxSize = ctx.transport === 'tcp' ? 65535 : Math.min(MAX_UDP_SIZE, Math.max(CLASSIC_UDP_SIZE, opt?.udpPayloadSize ?? 0));
    try {
      if (opt && opt.ednsVersion !== 0) return reply(this.#badVersion(id, flags, question));
      const decision = this.#answer(id, flags, question, edns, maxSize, bytes, ctx);
      if (decision.kind === 'reply' && cacheKey && decision.cacheable) {
        if (this.#answers.size >= MAX_CACHED) this.#answers.clear();
        this.#answers.set(cacheKey, decision.packet);
      }
      return decision;
    } catch {
      // A question the encoder cannot write back (odd labels): refuse it rather than throw.
      return reply(bare(id, flags, Rcode.FORMERR));
    }
  }

  #badVersion(id: number, flags: number, question: Question): Buffer {
    const flagsOut = (flags & (OPCODE_MASK | RD)) | RA;
    return dnsPacket.encode({ type: 'response', id, flags: flagsOut, questions: [question], additionals: [{ ...optRecord(), extendedRcode: BADVERS_EXTENDED }] });
  }

  #answer(id: number, flags: number, question: Question, edns: boolean, maxSize: number, bytes: Buffer, ctx: QueryContext): Decision {
    const index = this.#index.current;
    const who = index.querier(ctx.source, ctx.local);
    if (!who) return { kind: 'reply', packet: bare(id, flags, Rcode.REFUSED, question, edns) };
    const cls = question.class ?? 'IN';
    if (cls === 'IN' || cls === 'ANY') {
      const ptr = question.type === 'PTR' ? ptrAddress(question.name) : undefined;
      if (ptr !== undefined) {
        const name = index.reverse(who.sandbox.id, ptr);
        if (name === 'unknown') return { kind: 'reply', packet: bare(id, flags, Rcode.NXDOMAIN, question, edns, AA) };
        if (name !== undefined) {
          const answers: Answer[] = [{ type: 'PTR', name: question.name, class: 'IN', ttl: this.#ttl, data: `${name}.` }];
          return { kind: 'reply', packet: this.#local(id, flags, question, answers, edns, maxSize), cacheable: true };
        }
      } else {
        const found = index.lookup(who.sandbox.id, question.name);
        if (found) {
          const any = (question.type as string) === 'ANY';
          const records = (type: 'A' | 'AAAA', field: keyof Pick<Target, 'ipv4' | 'ipv6'>): Answer[] => {
            const ips = found.targets.map((t) => t[field]).filter((ip) => ip !== '');
            return this.#rotate(`${found.network.net.id}|${found.key}|${type}`, ips).map((ip) => ({ type, name: question.name, class: 'IN', ttl: this.#ttl, data: ip }));
          };
          const answers: Answer[] = [...(question.type === 'A' || any ? records('A', 'ipv4') : []), ...(question.type === 'AAAA' || any ? records('AAAA', 'ipv6') : [])];
          return { kind: 'reply', packet: this.#local(id, flags, question, answers, edns, maxSize), cacheable: found.targets.length === 1 };
        }
      }
    }
    if (index.networksOf(who.sandbox.id).every((n) => n.net.internal)) return { kind: 'reply', packet: bare(id, flags, Rcode.REFUSED, question, edns) };
    const upstreams = who.sandbox.dns.length > 0 ? who.sandbox.dns.map((address) => ({ address, port: 53 })) : this.#upstreams();
    if (upstreams.length === 0) return { kind: 'reply', packet: bare(id, flags, Rcode.SERVFAIL, question, edns) };
    return { kind: 'forward', query: bytes, id, question, transport: ctx.transport, maxSize, edns, upstreams };
  }

  #rotate(key: string, ips: string[]): string[] {
    if (ips.length < 2) return ips;
    const turn = this.#turns.get(key) ?? 0;
    this.#turns.set(key, (turn + 1) % ips.length);
    return [...ips.slice(turn), ...ips.slice(0, turn)];
  }

  /** An answer of ours, cut to what the client takes (TC set, so it retries over TCP). */
  #local(id: number, flags: number, question: Question, answers: Answer[], edns: boolean, maxSize: number): Buffer {
    const additionals: Answer[] = edns ? [optRecord()] : [];
    const header = (flags & (OPCODE_MASK | RD)) | RA | AA;
    let packet = { type: 'response' as const, id, flags: header, questions: [question], answers, additionals };
    if (dnsPacket.encodingLength(packet) > maxSize) {
      let keep = answers.length;
      while (keep > 0 && dnsPacket.encodingLength({ ...packet, answers: answers.slice(0, keep) }) > maxSize) keep--;
      packet = { ...packet, flags: header | TC, answers: answers.slice(0, keep) };
    }
    return dnsPacket.encode(packet);
  }
}

/** The upstream's answer for the client: its id back, and truncated if it is larger than the client takes over UDP. */
export function relay(fwd: Forward, response: Buffer): Buffer {
  if (fwd.transport === 'udp' && response.length > fwd.maxSize) {
    const upstreamFlags = response.readUInt16BE(2);
    return bare(fwd.id, upstreamFlags, upstreamFlags & 0xf, fwd.question, fwd.edns, TC | (upstreamFlags & AA));
  }
  const out = Buffer.from(response);
  out.writeUInt16BE(fwd.id, 0);
  return out;
}

/** The client's answer when forwarding failed (SERVFAIL) or was not possible (REFUSED). */
export function failure(fwd: Forward, rcode: number): Buffer {
  const flags = fwd.query.readUInt16BE(2);
  return bare(fwd.id, flags, rcode, fwd.question, fwd.edns);
}
