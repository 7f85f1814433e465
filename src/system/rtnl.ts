/**
 * `ip` commands as rtnetlink requests sent by the addon, without a process per batch. Building a
 * sandbox took five `ip`/`nsenter`/`sysctl` processes, ~10-30 ms each on these machines (a fork
 * of the daemon's whole address space, then exec): most of a create's time and most of its
 * jitter. The commands bpfnet's drivers use are translated here, field by field as iproute2
 * encodes them; a batch holding anything else runs through `ip` as before, so the result never
 * depends on which path ran. Errors read as iproute2's ("RTNETLINK answers: File exists",
 * `Cannot find device "X"`): callers match on them.
 */
import { closeSync, openSync } from 'node:fs';
import { formatIPv6 } from '../datapath/libbpf/codec.js';
import { native, type NativeRtnlOutcome } from '../datapath/libbpf/native.js';
import { isIP } from 'node:net';
import { CommandError } from './exec.js';

const RTM = { NEWLINK: 16, DELLINK: 17, NEWADDR: 20, DELADDR: 21, GETADDR: 22, NEWROUTE: 24 } as const;
const NLM_F = { REQUEST: 1, ACK: 4, REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400, DUMP: 0x300 } as const;
const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, MASTER: 10, LINKINFO: 18, AF_SPEC: 26, NET_NS_FD: 28 } as const;
const IFLA_INFO = { KIND: 1, DATA: 2 } as const;
const VETH_INFO_PEER = 1;
const IFLA_INET6_ADDR_GEN_MODE = 8;
const ADDR_GEN_MODE: Record<string, number> = { eui64: 0, none: 1, stable_secret: 2, random: 3 };
const IFA = { ADDRESS: 1, LOCAL: 2, LABEL: 3, FLAGS: 8 } as const;
const IFA_F_NODAD = 0x02;
const RTA = { DST: 1, OIF: 4, GATEWAY: 5 } as const;
const AF_INET = 2;
const AF_INET6 = 10;
const IFF_UP = 1;
const HDR = 16; // struct nlmsghdr
const IFINFO = 16; // struct ifinfomsg
const IFADDR = 8; // struct ifaddrmsg
const RTMSG = 12; // struct rtmsg

/** A netlink attribute: its payload, or nested attributes. */
type Attr = { type: number; data: Buffer } | { type: number; nested: Attr[] };

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

function str(s: string): Buffer {
  return Buffer.from(`${s}\0`);
}

function encodeAttrs(attrs: readonly Attr[]): Buffer {
  const parts: Buffer[] = [];
  for (const a of attrs) {
    const payload = 'nested' in a ? encodeAttrs(a.nested) : a.data;
    const head = Buffer.alloc(4);
    head.writeUInt16LE(4 + payload.length, 0);
    head.writeUInt16LE(a.type, 2);
    parts.push(head, payload, Buffer.alloc((4 - (payload.length % 4)) % 4));
  }
  return Buffer.concat(parts);
}

let seq = Math.floor(Math.random() * 0x7fffffff);

/** One request: header, fixed part, attributes. */
function message(type: number, flags: number, fixed: Buffer, attrs: readonly Attr[]): Buffer {
  const body = Buffer.concat([fixed, encodeAttrs(attrs)]);
  const head = Buffer.alloc(HDR);
  head.writeUInt32LE(HDR + body.length, 0);
  head.writeUInt16LE(type, 4);
  head.writeUInt16LE(flags | NLM_F.REQUEST, 6);
  head.writeUInt32LE((seq = (seq + 1) >>> 0), 8);
  return Buffer.concat([head, body]);
}

function ifinfo(family = 0, flags = 0, change = 0): Buffer {
  const b = Buffer.alloc(IFINFO);
  b.writeUInt8(family, 0);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

function macBytes(text: string): Buffer | undefined {
  const parts = text.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) return undefined;
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

function addressBytes(text: string): { family: number; bytes: Buffer } | undefined {
  const v = isIP(text);
  if (v === 4) return { family: AF_INET, bytes: Buffer.from(text.split('.').map(Number)) };
  if (v !== 6) return undefined;
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const words = (s: string | undefined) => (s ? s.split(':') : []);
  const h = words(head);
  const t = words(tail);
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  if (all.length !== 8 || all.some((w) => !/^[0-9a-fA-F]{1,4}$/.test(w))) return undefined; // embedded IPv4 forms: left to ip
  const b = Buffer.alloc(16);
  all.forEach((w, i) => b.writeUInt16BE(parseInt(w, 16), i * 2));
  return { family: AF_INET6, bytes: b };
}

/** Where a namespace named on the command line lives (`netns NAME` or a path). */
function netnsFile(ref: string): string {
  return ref.startsWith('/') ? ref : `/run/netns/${ref}`;
}

/** A step of a batch: requests sent in order, their device names resolved at send time. */
interface Requests {
  kind: 'requests';
  buffers: Buffer[];
  /** [request index within buffers, byte offset, interface name] */
  patches: Array<[number, number, string]>;
  /** Namespace files whose descriptors the requests carry (closed after sending). */
  fds: number[];
}
/** `addr flush dev X`: a dump, then a delete per address of X. */
interface Flush {
  kind: 'flush';
  ifname: string;
}
type Step = Requests | Flush;

/** The index of a device named in a request goes at this offset: ifinfomsg's or ifaddrmsg's index. */
const IFINFO_INDEX = HDR + 4;
const IFADDR_INDEX = HDR + 4;

class Untranslatable extends Error {}

/** Reads `ip` arguments as a cursor. */
class Args {
  #i = 0;
  constructor(readonly argv: readonly string[]) {}
  next(): string | undefined {
    return this.argv[this.#i++];
  }
  need(): string {
    const v = this.next();
    if (v === undefined) throw new Untranslatable();
    return v;
  }
  get done(): boolean {
    return this.#i >= this.argv.length;
  }
}

function linkSet(a: Args, out: Requests): void {
  let dev = a.need();
  if (dev === 'dev') dev = a.need();
  let flags = 0;
  let change = 0;
  const attrs: Attr[] = [];
  let master: string | undefined;
  while (!a.done) {
    const w = a.need();
    if (w === 'up' || w === 'down') {
      change |= IFF_UP;
      flags = w === 'up' ? flags | IFF_UP : flags & ~IFF_UP;
    } else if (w === 'master') master = a.need();
    else if (w === 'nomaster') attrs.push({ type: IFLA.MASTER, data: u32(0) });
    else if (w === 'mtu') {
      const mtu = Number(a.need());
      if (!Number.isInteger(mtu) || mtu <= 0) throw new Untranslatable();
      attrs.push({ type: IFLA.MTU, data: u32(mtu) });
    } else if (w === 'address') {
      const mac = macBytes(a.need());
      if (!mac) throw new Untranslatable();
      attrs.push({ type: IFLA.ADDRESS, data: mac });
    } else if (w === 'addrgenmode') {
      const mode = ADDR_GEN_MODE[a.need()];
      if (mode === undefined) throw new Untranslatable();
      attrs.push({ type: IFLA.AF_SPEC, nested: [{ type: AF_INET6, nested: [{ type: IFLA_INET6_ADDR_GEN_MODE, data: Buffer.from([mode]) }] }] });
    } else if (w === 'netns') {
      const fd = openSync(netnsFile(a.need()), 'r');
      out.fds.push(fd);
      attrs.push({ type: IFLA.NET_NS_FD, data: u32(fd) });
    } else if (w === 'name') attrs.push({ type: IFLA.IFNAME, data: str(a.need()) });
    else throw new Untranslatable();
  }
  // The master's index is patched in at send time too: a placeholder attribute first.
  const masterAt = master !== undefined ? attrs.push({ type: IFLA.MASTER, data: u32(0) }) - 1 : -1;
  const msg = message(RTM.NEWLINK, NLM_F.ACK, ifinfo(0, flags, change), attrs);
  const index = out.buffers.push(msg) - 1;
  out.patches.push([index, IFINFO_INDEX, dev]);
  if (masterAt >= 0) out.patches.push([index, attrOffset(msg, HDR + IFINFO, masterAt) + 4, master!]);
}

/** The byte offset of the n-th top-level attribute after `from`. */
function attrOffset(msg: Buffer, from: number, n: number): number {
  let off = from;
  for (let i = 0; i < n; i++) off += (msg.readUInt16LE(off) + 3) & ~3;
  return off;
}

function linkAdd(a: Args, out: Requests): void {
  if (a.need() !== 'name') throw new Untranslatable();
  const name = a.need();
  if (a.need() !== 'type' || a.need() !== 'veth' || a.need() !== 'peer' || a.need() !== 'name') throw new Untranslatable();
  const peer = a.need();
  const peerAttrs: Attr[] = [{ type: IFLA.IFNAME, data: str(peer) }];
  while (!a.done) {
    const w = a.need();
    if (w !== 'netns') throw new Untranslatable();
    const fd = openSync(netnsFile(a.need()), 'r');
    out.fds.push(fd);
    peerAttrs.push({ type: IFLA.NET_NS_FD, data: u32(fd) });
  }
  // VETH_INFO_PEER carries a whole ifinfomsg before the peer's attributes.
  const peerInfo = Buffer.concat([ifinfo(), encodeAttrs(peerAttrs)]);
  out.buffers.push(
    message(RTM.NEWLINK, NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL, ifinfo(), [
      { type: IFLA.IFNAME, data: str(name) },
      { type: IFLA.LINKINFO, nested: [{ type: IFLA_INFO.KIND, data: str('veth') }, { type: IFLA_INFO.DATA, nested: [{ type: VETH_INFO_PEER, data: peerInfo }] }] },
    ]),
  );
}

function linkDelete(a: Args, out: Requests): void {
  let dev = a.need();
  if (dev === 'dev') dev = a.need();
  if (!a.done) throw new Untranslatable();
  out.buffers.push(message(RTM.DELLINK, NLM_F.ACK, ifinfo(), []));
  out.patches.push([out.buffers.length - 1, IFINFO_INDEX, dev]);
}

function addrAdd(replace: boolean, a: Args, out: Requests): void {
  const [addr, len] = a.need().split('/');
  const parsed = addressBytes(addr ?? '');
  const bits = Number(len ?? (parsed?.family === AF_INET ? 32 : 128));
  if (!parsed || !Number.isInteger(bits) || bits < 0 || bits > (parsed.family === AF_INET ? 32 : 128)) throw new Untranslatable();
  if (a.need() !== 'dev') throw new Untranslatable();
  const dev = a.need();
  let flags = 0;
  while (!a.done) {
    if (a.need() !== 'nodad') throw new Untranslatable();
    flags |= IFA_F_NODAD;
  }
  const fixed = Buffer.alloc(IFADDR);
  fixed.writeUInt8(parsed.family, 0);
  fixed.writeUInt8(bits, 1);
  fixed.writeUInt8(flags, 2);
  // Loopback IPv4 addresses get host scope, as ip gives them.
  if (parsed.family === AF_INET && parsed.bytes[0] === 127) fixed.writeUInt8(254, 3);
  // Both, equal, as ip sends them: no peer address.
  const attrs: Attr[] = [
    { type: IFA.LOCAL, data: parsed.bytes },
    { type: IFA.ADDRESS, data: parsed.bytes },
    ...(flags ? [{ type: IFA.FLAGS, data: u32(flags) }] : []),
  ];
  const msg = message(RTM.NEWADDR, NLM_F.ACK | NLM_F.CREATE | (replace ? NLM_F.REPLACE : NLM_F.EXCL), fixed, attrs);
  out.buffers.push(msg);
  out.patches.push([out.buffers.length - 1, IFADDR_INDEX, dev]);
}

function routeAdd(replace: boolean, a: Args, out: Requests): void {
  const dst = a.need();
  let via: { family: number; bytes: Buffer } | undefined;
  let dev: string | undefined;
  while (!a.done) {
    const w = a.need();
    if (w === 'via') {
      via = addressBytes(a.need());
      if (!via) throw new Untranslatable();
    } else if (w === 'dev') dev = a.need();
    else throw new Untranslatable();
  }
  if (!dev) throw new Untranslatable();
  let family = via?.family;
  let prefix: { family: number; bytes: Buffer; bits: number } | undefined;
  if (dst !== 'default') {
    const [addr, len] = dst.split('/');
    const p = addressBytes(addr ?? '');
    if (!p) throw new Untranslatable();
    const bits = Number(len ?? (p.family === AF_INET ? 32 : 128));
    if (!Number.isInteger(bits)) throw new Untranslatable();
    prefix = { ...p, bits };
    if (family !== undefined && family !== p.family) throw new Untranslatable();
    family = p.family;
  }
  if (family === undefined) throw new Untranslatable(); // `default dev X` alone: the family is ip's default
  const fixed = Buffer.alloc(RTMSG);
  fixed.writeUInt8(family, 0);
  fixed.writeUInt8(prefix?.bits ?? 0, 1);
  fixed.writeUInt8(254, 4); // RT_TABLE_MAIN
  fixed.writeUInt8(3, 5); // RTPROT_BOOT, as ip
  fixed.writeUInt8(via || family === AF_INET6 ? 0 : 253, 6); // universe, or link for an IPv4 route without a gateway (as ip)
  fixed.writeUInt8(1, 7); // RTN_UNICAST
  const attrs: Attr[] = [...(prefix ? [{ type: RTA.DST, data: prefix.bytes }] : []), ...(via ? [{ type: RTA.GATEWAY, data: via.bytes }] : []), { type: RTA.OIF, data: u32(0) }];
  const msg = message(RTM.NEWROUTE, NLM_F.ACK | NLM_F.CREATE | (replace ? NLM_F.REPLACE : NLM_F.EXCL), fixed, attrs);
  out.buffers.push(msg);
  out.patches.push([out.buffers.length - 1, attrOffset(msg, HDR + RTMSG, attrs.length - 1) + 4, dev]);
}

/** A batch as steps, or undefined when a command is not one translated here. */
function translate(commands: ReadonlyArray<readonly string[]>): Step[] | undefined {
  const steps: Step[] = [];
  let current: Requests | undefined;
  const requests = () => (current ??= (steps.push({ kind: 'requests', buffers: [], patches: [], fds: [] }), steps[steps.length - 1] as Requests));
  try {
    for (const argv of commands) {
      const a = new Args(argv);
      const [obj, verb] = [a.need(), a.need()];
      if (obj === 'link' && verb === 'set') linkSet(a, requests());
      else if (obj === 'link' && verb === 'add') linkAdd(a, requests());
      else if (obj === 'link' && (verb === 'delete' || verb === 'del')) linkDelete(a, requests());
      else if ((obj === 'addr' || obj === 'address') && (verb === 'add' || verb === 'replace')) addrAdd(verb === 'replace', a, requests());
      else if (obj === 'route' && (verb === 'add' || verb === 'replace')) routeAdd(verb === 'replace', a, requests());
      else if ((obj === 'addr' || obj === 'address') && verb === 'flush' && a.need() === 'dev') {
        const ifname = a.need();
        if (!a.done) throw new Untranslatable();
        steps.push({ kind: 'flush', ifname });
        current = undefined;
      } else throw new Untranslatable();
    }
  } catch (err) {
    for (const s of steps) if (s.kind === 'requests') for (const fd of s.fds) closeSync(fd);
    if (err instanceof Untranslatable) return undefined;
    throw err;
  }
  return steps;
}

function send(netnsPath: string | null, buffers: readonly Buffer[], patches: Array<[number, number, string]> = []): NativeRtnlOutcome {
  return native().rtnetlink(netnsPath, Buffer.concat(buffers), patches);
}

function fail(command: string, o: NativeRtnlOutcome): never {
  const why = o.error === 19 && o.message.startsWith('Cannot find device') ? o.message : `RTNETLINK answers: ${o.text}${o.message ? ` (${o.message})` : ''}`;
  throw new CommandError(command, 2, '', why);
}

/** The RTM_NEWADDR messages of one address dump in the namespace, each as its ifaddrmsg and attributes. */
function addressDump(netnsPath: string | null, command: string): Buffer[] {
  const dump = send(netnsPath, [message(RTM.GETADDR, NLM_F.DUMP, Buffer.alloc(IFADDR), [])]);
  if (dump.error) fail(command, dump);
  const r = dump.replies;
  const out: Buffer[] = [];
  for (let off = 0; off + HDR + IFADDR <= r.length; ) {
    const len = r.readUInt32LE(off);
    if (len < HDR + IFADDR || off + len > r.length) break;
    if (r.readUInt16LE(off + 4) === RTM.NEWADDR) out.push(r.subarray(off + HDR, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}

/** The addresses of one device, as delete requests (from an address dump). */
function flushRequests(netnsPath: string | null, ifname: string, command: string): Buffer[] {
  let ifindex: number;
  try {
    ifindex = native().ifindex(netnsPath, ifname);
  } catch {
    throw new CommandError(command, 1, '', `Cannot find device "${ifname}"`);
  }
  // The address as the dump described it (ifaddrmsg and IFA_LOCAL/IFA_ADDRESS) identifies it.
  return addressDump(netnsPath, command)
    .filter((m) => m.readUInt32LE(4) === ifindex)
    .map((m) => message(RTM.DELADDR, NLM_F.ACK, Buffer.from(m), []));
}

/** One address of a namespace, as `ip -j addr show` lists it. */
export interface AddressEntry {
  readonly ifindex: number;
  readonly family: 4 | 6;
  /** RT_SCOPE_*: 0 global, 253 link, 254 host. */
  readonly scope: number;
  /** IFA_LOCAL, else IFA_ADDRESS (ip's "local"), as text. */
  readonly local: string;
  /** IFA_LABEL (IPv4: the device's name unless relabelled). */
  readonly label?: string;
}

/**
 * Every address in the namespace at netnsPath (null: the daemon's own): one RTM_GETADDR dump
 * and nothing per link, where `ip -j addr show` prints every link with or without an address
 * (thousands of host veths: megabytes of JSON every poll).
 */
export function dumpAddresses(netnsPath: string | null): AddressEntry[] {
  const out: AddressEntry[] = [];
  for (const m of addressDump(netnsPath, 'ip addr show')) {
    const family = m.readUInt8(0);
    if (family !== AF_INET && family !== AF_INET6) continue;
    const width = family === AF_INET ? 4 : 16;
    let local: Buffer | undefined;
    let address: Buffer | undefined;
    let label: string | undefined;
    for (let a = IFADDR; a + 4 <= m.length; ) {
      const alen = m.readUInt16LE(a);
      if (alen < 4) break;
      const type = m.readUInt16LE(a + 2) & 0x3fff;
      const data = m.subarray(a + 4, a + alen);
      if (type === IFA.LOCAL && data.length === width) local = data;
      else if (type === IFA.ADDRESS && data.length === width) address = data;
      else if (type === IFA.LABEL) label = data.toString('latin1').replace(/\0.*$/s, '');
      a += (alen + 3) & ~3;
    }
    const bytes = local ?? address;
    if (!bytes) continue;
    const text = family === AF_INET ? [...bytes].join('.') : formatIPv6(bytes);
    out.push({ ifindex: m.readUInt32LE(4), family: family === AF_INET ? 4 : 6, scope: m.readUInt8(3), local: text, ...(label ? { label } : {}) });
  }
  return out;
}

/**
 * Runs a batch of `ip` commands in the namespace at netnsPath (null: the daemon's own) over
 * rtnetlink, in order, stopping at the first failure. Returns false, having done nothing, when
 * a command is not one this module translates (the caller runs `ip` instead).
 */
export function rtnlBatch(netnsPath: string | null, commands: ReadonlyArray<readonly string[]>, describe: string): boolean {
  const steps = translate(commands);
  if (!steps) return false;
  try {
    for (const step of steps) {
      if (step.kind === 'flush') {
        const dels = flushRequests(netnsPath, step.ifname, describe);
        if (dels.length > 0) {
          const o = send(netnsPath, dels);
          if (o.error && o.error !== 99 /* EADDRNOTAVAIL: gone meanwhile */) fail(describe, o);
        }
        continue;
      }
      const o = send(netnsPath, step.buffers, step.patches);
      if (o.error) fail(describe, o);
    }
  } finally {
    for (const s of steps) if (s.kind === 'requests') for (const fd of s.fds) closeSync(fd);
  }
  return true;
}

/**
 * rtnlBatch as the callers of `ip` want it: a promise of ip's (empty) output or of its error, or
 * undefined when the batch is not one this module translates (run ip then).
 */
export function viaRtnl(netnsPath: string | null, commands: ReadonlyArray<readonly string[]>, describe: string): Promise<string> | undefined {
  try {
    return rtnlBatch(netnsPath, commands, describe) ? Promise.resolve('') : undefined;
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Whether /run/netns is already the shared mount `ip netns add` makes of it the first time. */
let netnsDirShared = false;
export function netnsDirReady(readMountinfo: () => string): boolean {
  if (!netnsDirShared) netnsDirShared = readMountinfo().split('\n').some((l) => l.split(' ')[4] === '/run/netns' && / shared:\d+/.test(l));
  return netnsDirShared;
}

/** A named namespace made natively (`ip netns add` without the process). */
export function addNetnsFile(path: string): void {
  native().addNamedNetns(path);
}

/** `ip netns delete` without the process. */
export function deleteNetnsFile(path: string): void {
  native().deleteNamedNetns(path);
}

/** sysctls written from a thread inside the namespace at netnsPath (null: the daemon's own). */
export function writeProcSys(netnsPath: string | null, values: Record<string, string>): void {
  const keys = Object.keys(values);
  const paths = keys.map((k) => (k.includes('/') ? k : k.replaceAll('.', '/')));
  native().writeProcSys(netnsPath, paths, keys.map((k) => values[k]));
}
