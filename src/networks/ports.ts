/**
 * Docker's -p syntax, parsed and expanded: [IP:][HOST[-HOST]:]CONT[-CONT][/tcp|udp], where IP is an
 * IPv4 address or an IPv6 one in brackets ([::] every IPv6 address, [::1] loopback). No IP: every
 * host address of both families, as Docker 27+ publishes (the datapath skips a family the
 * sandbox has no address of).
 * Pure: host ports that must be chosen (ephemeral, or one out of a host range) are chosen by
 * a callback that knows what is taken.
 */
import { invalid } from '../errors.js';
import { isIPv4 } from '../ipam/ipv4.js';
import { canonicalIp, parseIp } from '../ipam/ip.js';
import type { PortRun, Protocol } from './model.js';

export interface PortRequest {
  protocol: Protocol;
  hostIp: string;
  /** Undefined: an ephemeral host port. */
  hostStart?: number;
  hostEnd?: number;
  containerStart: number;
  containerEnd: number;
}

export interface PortBinding {
  protocol: Protocol;
  hostIp: string;
  hostPort: number;
  containerPort: number;
}

/** Docker's default ephemeral range (net.ipv4.ip_local_port_range). */
export const EPHEMERAL = { first: 32768, last: 60999 } as const;

function parseRange(spec: string, text: string, what: string): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) throw invalid(`invalid port spec "${spec}": invalid ${what} "${text}"`);
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (a < 1 || a > 65535 || b < 1 || b > 65535) throw invalid(`invalid port spec "${spec}": ${what} ${text} is outside 1-65535`);
  if (b < a) throw invalid(`invalid port spec "${spec}": ${what} range ${text} ends before it starts`);
  return [a, b];
}

export function parsePortSpec(spec: string): PortRequest {
  let rest = spec.trim();
  let protocol: Protocol = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const proto = rest.slice(slash + 1).toLowerCase();
    if (proto !== 'tcp' && proto !== 'udp') throw invalid(`invalid port spec "${spec}": protocol must be tcp or udp, not "${proto}"`);
    protocol = proto;
    rest = rest.slice(0, slash);
  }
  let ip6 = '';
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    const inner = close > 0 ? rest.slice(1, close) : '';
    if (close < 0 || rest[close + 1] !== ':' || parseIp(inner)?.family !== 6)
      throw invalid(`invalid port spec "${spec}": "${rest.slice(0, close + 1)}" is not an IPv6 address in brackets`);
    ip6 = canonicalIp(inner)!;
    rest = `v6${rest.slice(close + 1)}`;
  }
  const parts = rest.split(':');
  if (parts.length > 3 || parts.some((p, i) => p === '' && !(parts.length === 3 && i === 1)))
    throw invalid(`invalid port spec "${spec}": expected [IP:][HOST:]CONTAINER[/PROTO]`);
  const [ipPart, hostPart, contPart] = parts.length === 3 ? parts : parts.length === 2 ? ['', parts[0], parts[1]] : ['', '', parts[0]];
  if (ipPart && !ip6 && !isIPv4(ipPart)) throw invalid(`invalid port spec "${spec}": "${ipPart}" is not an IPv4 address (IPv6: in brackets, [::1])`);
  const [containerStart, containerEnd] = parseRange(spec, contPart, 'container port');
  const hostIp = ip6 || (ipPart === '0.0.0.0' ? '' : ipPart);
  const req: PortRequest = { protocol, hostIp, containerStart, containerEnd };
  if (hostPart) {
    const [hostStart, hostEnd] = parseRange(spec, hostPart, 'host port');
    const hostCount = hostEnd - hostStart + 1;
    const contCount = containerEnd - containerStart + 1;
    if (contCount > 1 && hostCount !== contCount)
      throw invalid(`invalid port spec "${spec}": host range ${hostPart} and container range ${contPart} differ in length`);
    req.hostStart = hostStart;
    req.hostEnd = hostEnd;
  }
  return req;
}

/**
 * Where the search for a free host port resumes, per (protocol, address, range): ports before it
 * were found taken or handed out during this planning, so n choices in one range cost O(n + range),
 * not O(n x range). Share one across the specs of a request.
 */
export class PortCursor {
  readonly #next = new Map<string, number>();

  /** The first port in first..last that isFree accepts, at or after where the last search stopped. */
  take(protocol: Protocol, hostIp: string, first: number, last: number, isFree: (port: number) => boolean): number | undefined {
    const key = `${protocol}/${hostIp}/${first}-${last}`;
    for (let p = Math.max(first, this.#next.get(key) ?? first); p <= last; p++) {
      if (isFree(p)) {
        this.#next.set(key, p + 1);
        return p;
      }
    }
    this.#next.set(key, last + 1);
    return undefined;
  }
}

/**
 * Turns a request into concrete bindings. `isFree(protocol, hostIp, port)` says whether a host
 * port can still be taken (including by bindings planned earlier in the same request: the
 * caller adds each returned binding to what isFree consults before the next spec); ports
 * needing a choice get the first free one. Given a sandbox, the bindings are its port records
 * as runs: a range with its host ports given is one run, not 10,000 objects (before the JIT
 * warms up, making them was most of what planning a publish cost), and is the caller's to
 * check port by port.
 */
export function expandPortRequest(req: PortRequest, isFree: (p: Protocol, ip: string, port: number) => boolean, spec: string, cursor?: PortCursor): PortBinding[];
export function expandPortRequest(
  req: PortRequest,
  isFree: (p: Protocol, ip: string, port: number) => boolean,
  spec: string,
  cursor: PortCursor,
  sandboxId: string,
): PortRun[];
export function expandPortRequest(
  req: PortRequest,
  isFree: (p: Protocol, ip: string, port: number) => boolean,
  spec: string,
  cursor: PortCursor = new PortCursor(),
  sandboxId?: string,
): PortBinding[] {
  const contCount = req.containerEnd - req.containerStart + 1;
  // One container port, a host range: one host port of it is chosen.
  const oneOfRange = req.hostStart !== undefined && contCount === 1 && req.hostEnd! > req.hostStart;
  if (sandboxId !== undefined && req.hostStart !== undefined && !oneOfRange) {
    const run: PortRun = { sandboxId, protocol: req.protocol, hostIp: req.hostIp, hostPort: req.hostStart, containerPort: req.containerStart };
    if (contCount > 1) run.count = contCount;
    return [run];
  }
  const out: PortBinding[] = [];
  // Ports this call hands out, so two container ports never get the same host port.
  const mine = new Set<number>();
  const choose = (first: number, last: number): number => {
    const p = cursor.take(req.protocol, req.hostIp, first, last, (port) => !mine.has(port) && isFree(req.protocol, req.hostIp, port));
    if (p === undefined) throw invalid(`invalid port spec "${spec}": no free host port in ${first}-${last}`);
    mine.add(p);
    return p;
  };
  for (let i = 0; i < contCount; i++) {
    const containerPort = req.containerStart + i;
    let hostPort: number;
    if (req.hostStart === undefined) hostPort = choose(EPHEMERAL.first, EPHEMERAL.last);
    else if (oneOfRange) hostPort = choose(req.hostStart, req.hostEnd!);
    else hostPort = req.hostStart + i;
    if (sandboxId === undefined) out.push({ protocol: req.protocol, hostIp: req.hostIp, hostPort, containerPort });
    else out.push({ sandboxId, protocol: req.protocol, hostIp: req.hostIp, hostPort, containerPort } as PortRun);
  }
  return out;
}

/** Whether binding address a takes in b ('' every address of both families, '0.0.0.0' every IPv4 one, '::' every IPv6 one). */
function covers(a: string, b: string): boolean {
  return a === '' || a === b || (a === '::' && b.includes(':')) || (a === '0.0.0.0' && !b.includes(':'));
}

/** Whether two bindings compete for the same host socket (an any-address binding overlaps every address of its family). */
export function bindingsClash(a: { protocol: Protocol; hostIp: string; hostPort: number }, b: { protocol: Protocol; hostIp: string; hostPort: number }): boolean {
  return a.protocol === b.protocol && a.hostPort === b.hostPort && (covers(a.hostIp, b.hostIp) || covers(b.hostIp, a.hostIp));
}

/** Published bindings indexed by (protocol, port): clash checks in O(1), not a scan of every port. */
export class BindingIndex<B extends { protocol: Protocol; hostIp: string; hostPort: number }> {
  // A number per (protocol, port), not a string: 10,000 ports are indexed without 10,000 strings.
  readonly #byPort = new Map<number, B | B[]>();

  constructor(bindings: Iterable<B> = []) {
    for (const b of bindings) this.add(b);
  }

  static #key(protocol: Protocol, hostPort: number): number {
    return hostPort * 2 + (protocol === 'udp' ? 1 : 0);
  }

  add(b: B): void {
    const key = BindingIndex.#key(b.protocol, b.hostPort);
    const held = this.#byPort.get(key);
    // One binding per port is the rule: an array only where addresses share a port.
    if (held === undefined) this.#byPort.set(key, b);
    else if (Array.isArray(held)) held.push(b);
    else this.#byPort.set(key, [held, b]);
  }

  /** How many (protocol, port) pairs are held. */
  get size(): number {
    return this.#byPort.size;
  }

  /** The binding already holding what b asks for, if any. */
  clash(b: { protocol: Protocol; hostIp: string; hostPort: number }): B | undefined {
    return this.clashAt(b.protocol, b.hostIp, b.hostPort);
  }

  /** The first port of a run (count ports from hostPort, absent: 1) that a binding already holds, and its holder; no object per port. */
  clashInRun(run: { protocol: Protocol; hostIp: string; hostPort: number; count?: number }): { port: number; holder: B } | undefined {
    const { protocol, hostIp, hostPort, count = 1 } = run;
    for (let port = hostPort; port < hostPort + count; port++) {
      const holder = this.clashAt(protocol, hostIp, port);
      if (holder) return { port, holder };
    }
    return undefined;
  }

  /** clash, given the fields. */
  clashAt(protocol: Protocol, hostIp: string, hostPort: number): B | undefined {
    const held = this.#byPort.get(BindingIndex.#key(protocol, hostPort));
    if (held === undefined) return undefined;
    const b = { protocol, hostIp, hostPort };
    if (Array.isArray(held)) return held.find((x) => bindingsClash(x, b));
    return bindingsClash(held, b) ? held : undefined;
  }
}
