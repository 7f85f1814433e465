/**
 * The ebpf datapath: TC programs on every sandbox's host veth (from_container /
 * to_container), on the uplink (from_uplink) and on lo (from_host), sharing pinned maps
 * under /sys/fs/bpf/<instance>. The daemon only writes map entries and attaches filters; every
 * packet decision is made in the kernel, and keeps being made while the daemon is down.
 * No iptables or nftables rule is involved.
 */
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  DP6_F_CONFIGURED,
  DROP_REASONS,
  DatapathMaps,
  DatapathMaps6,
  DpFlags,
  EpFlags,
  NetFlags,
  PortFlags,
  StatsSlot,
  ctEntry4,
  ctEntry6,
  ctKey4,
  ctKey6,
  dpConfig,
  dpConfig6,
  dropEvent,
  endpointInfo,
  epStats,
  networkInfo,
  networkInfo6,
  net6MoreKey,
  portKey,
  portKey6,
  portBitmap,
  portTarget,
  portTarget6,
} from '../abi.js';
import { BpfObject, RingBuffer, interfaceIndex, isBpfError, sumPerCpu, type BpfMap, type BpfProgram, type PerCpuMap } from '../libbpf/bpf.js';
import { encode, u32, u64n, u8, ipv4, ipv4Word, ipv6, ipv6Bytes, formatIPv6 } from '../libbpf/codec.js';
import {
  portFamilies,
  type Datapath,
  type DatapathContext,
  type DesiredState,
  type DropInfo,
  type EndpointCounters,
  type EndpointSpec,
  type NetworkSpec,
  type Observable,
  type OverlayCapable,
  type PortSpec,
  type RemoteEndpointSpec,
} from '../datapath.js';
import { bpfObject } from '../../paths.js';
import { eachPortOf } from '../../util/port-runs.js';
import { ipJson, link, type Netns } from '../../system/ip.js';
import { dumpAddresses } from '../../system/rtnl.js';
import { ensureSysctl } from '../../system/sysctl.js';
import { applySandboxIPv6 } from '../sandbox-ipv6.js';
import { formatIPv4, maskOf, parseCidr } from '../../ipam/ipv4.js';
import { PerCpuMap as PinnedCounters } from '../libbpf/bpf.js';
import { CT4, CT6, UNTRACKED_MARGIN_NS, clearUntracked, collectExpired, forgetAddress, forgetAddress6, monotonicNs, recountOwners, writeOwners, writeUntracked } from './conntrack.js';
import { isIP } from 'node:net';
import { Hooks } from './hooks.js';
import { EbpfOverlay } from './overlay.js';
import { PublishedTcpPorts, StatelessPorts } from './stateless-ports.js';

type Decoded<C> = C extends { decodeFrom(b: Buffer, o: number): infer T } ? T : never;
type NetworkInfo = Decoded<typeof networkInfo>;
type EndpointInfo = Decoded<typeof endpointInfo>;
type PortKey = Decoded<typeof portKey>;
type PortTarget = Decoded<typeof portTarget>;
type PortKey6 = Decoded<typeof portKey6>;
type PortTarget6 = Decoded<typeof portTarget6>;

/** Default timeouts (seconds), close to Linux conntrack's but shorter for established TCP. */
export const DEFAULT_TIMEOUTS: Record<string, number> = {
  'tcp-syn': 60,
  'tcp-established': 86400,
  'tcp-fin': 30,
  'tcp-closed': 10,
  udp: 30,
  'udp-stream': 120,
  icmp: 30,
};

const PROTO = { tcp: 6, udp: 17 } as const;

/** ct4's size when --ebpf-ct-max is not given (CT_MAX in bpf/lib/maps.h). */
const CT_MAX_DEFAULT = 131072;

/**
 * The most assured flows one sandbox may hold: half of ct4's entries (a flow takes two), so no
 * single sandbox can fill the table and the others always keep at least half of it.
 */
export function ctOwnerQuota(ctEntries: number): number {
  return Math.max(1, Math.floor(ctEntries / 4));
}
const PROTO_NAME: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' };

interface Maps {
  cfg: BpfMap<number, Decoded<typeof dpConfig>>;
  net: BpfMap<number, NetworkInfo>;
  ep: BpfMap<string, EndpointInfo>;
  epIfx: BpfMap<number, EndpointInfo>;
  local: BpfMap<string, number>;
  ports: BpfMap<PortKey, PortTarget>;
  /** A stateless port's target -> its published port (filled by the uplink program). */
  reversePorts: BpfMap<PortKey, PortTarget>;
  /** 0 -> the TCP port numbers published (a bitmap). */
  tcpPorts: BpfMap<number, Buffer>;
  /** 0 -> the TCP port numbers published on an address of their own (a bitmap). */
  tcpPortsAt: BpfMap<number, Buffer>;
  ct: BpfMap<Decoded<typeof ctKey4>, Decoded<typeof ctEntry4>>;
  /** Flows not assured yet (LRU). */
  ctNew: BpfMap<Decoded<typeof ctKey4>, Decoded<typeof ctEntry4>>;
  /** 0 -> until when new flows are refused (ns, CLOCK_MONOTONIC). */
  ctFull: BpfMap<number, bigint>;
  /** sandbox address -> assured flows charged to it (the quota). */
  ctOwners: BpfMap<string, number>;
  /** TCP port -> from when no tracked flow sends from it, by the GC's scan (0: not known). */
  ctPortClean: BpfMap<number, bigint>;
  stats: PerCpuMap<number, Decoded<typeof epStats>>;
  /** The IPv6 tables, beside the IPv4 ones. */
  cfg6: BpfMap<number, Decoded<typeof dpConfig6>>;
  net6: BpfMap<number, Decoded<typeof networkInfo6>>;
  /** (bridge ifindex, further IPv6 subnet) -> its gateway (LPM). */
  net6More: BpfMap<Decoded<typeof net6MoreKey>, string>;
  ep6: BpfMap<string, EndpointInfo>;
  local6: BpfMap<string, number>;
  ports6: BpfMap<PortKey6, PortTarget6>;
  reversePorts6: BpfMap<PortKey6, PortTarget6>;
  ct6: BpfMap<Decoded<typeof ctKey6>, Decoded<typeof ctEntry6>>;
  ct6New: BpfMap<Decoded<typeof ctKey6>, Decoded<typeof ctEntry6>>;
  ctFull6: BpfMap<number, bigint>;
  ctOwners6: BpfMap<string, number>;
}

interface Programs {
  fromContainer: BpfProgram;
  toContainer: BpfProgram;
  fromUplink: BpfProgram;
  fromHost: BpfProgram;
  /** tc egress of every network's bridge: the host's traffic into the network (bpf/bridge.bpf.c). */
  fromGateway: BpfProgram;
}

function netFlags(n: NetworkSpec): number {
  return (n.icc ? NetFlags.ICC : 0) | (n.internal ? NetFlags.INTERNAL : 0) | (n.masquerade ? NetFlags.MASQUERADE : 0);
}

function portKeyOf(p: PortSpec): PortKey {
  return { addr: p.hostIp || '0.0.0.0', port: p.hostPort, proto: PROTO[p.protocol] };
}

function portKey6Of(p: PortSpec): PortKey6 {
  return { addr: p.hostIp === '' ? '::' : p.hostIp, port: p.hostPort, proto: PROTO[p.protocol] };
}

function keyString6(k: PortKey6): string {
  return `${k.proto}/[${k.addr}]/${k.port}`;
}

function netFlags6(n: NetworkSpec): number {
  return (n.icc ? NetFlags.ICC : 0) | (n.internal ? NetFlags.INTERNAL : 0) | (n.masquerade6 !== false ? NetFlags.MASQUERADE : 0);
}

/** The mask of an IPv6 prefix length, as text. */
function mask6(bits: number): string {
  const buf = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) buf[i] = bits >= (i + 1) * 8 ? 0xff : bits > i * 8 ? (0xff << (8 - (bits - i * 8))) & 0xff : 0;
  return formatIPv6(buf);
}

/** An IPv6 CIDR -> its network address and mask; throws naming the network when it is not one. */
function parseCidr6(cidr: string, network: string): { subnet: string; mask: string } {
  const [addr, len] = cidr.split('/');
  const bits = Number(len);
  if (isIP(addr ?? '') !== 6 || !Number.isInteger(bits) || bits < 0 || bits > 128) throw new Error(`network ${network}: "${cidr}" is not an IPv6 subnet`);
  const a = ipv6Bytes(addr);
  const m = ipv6Bytes(mask6(bits));
  for (let i = 0; i < 16; i++) a[i] &= m[i];
  return { subnet: formatIPv6(a), mask: formatIPv6(m) };
}

function keyString(k: PortKey): string {
  return `${k.proto}/${k.addr}/${k.port}`;
}

/** f, remembered: the ports of one sandbox share a handful of addresses. */
function remembered<T>(f: (text: string) => T): (text: string) => T {
  const cache = new Map<string, T>();
  return (text) => {
    let v = cache.get(text);
    if (v === undefined) cache.set(text, (v = f(text)));
    return v;
  };
}

/** How one family's address goes into a packed key or value. */
type AddressWriter = (buf: Buffer, text: string, offset: number) => void;

/**
 * Keys and values for the published ports of one family among `all`, packed back to back in one
 * pass: a range of 10,000 ports is one batch syscall. Specs that share their addresses and
 * protocol (a range, given as one spec with a count or as one spec per port) are judged once
 * (does it answer on this family?), written as their first entry repeated by one fill, then two
 * port bytes per entry on each side, so the loop stays cheap even before the JIT has warmed up
 * (the first 10,000-port publish after a start spent 23 ms here writing every field of every
 * entry, and then still 20 ms filtering and packing both families port by port). Offsets come
 * from the ABI mirror, so the layout has one source.
 */
function packPorts(
  all: readonly PortSpec[],
  family: 'v4' | 'v6',
  key: { size: number; offsets: { addr: number; port: number; proto: number } },
  target: { size: number; offsets: { addr: number; port: number; flags?: number } },
  hostAddress: (p: PortSpec) => string,
  containerAddress: (p: PortSpec) => string,
  write: AddressWriter,
  flagsOf: (p: PortSpec) => number = () => 0,
): { keys: Buffer; values: Buffer; count: number } {
  let total = 0;
  for (let i = 0; i < all.length; i++) total += all[i].count ?? 1;
  const keys = Buffer.alloc(key.size * total);
  const values = Buffer.alloc(target.size * total);
  const k = key.offsets;
  const v = target.offsets;
  let n = 0;
  for (let first = 0; first < all.length; ) {
    const p = all[first];
    let end = first + 1;
    let count = p.count ?? 1;
    const flags = flagsOf(p);
    while (end < all.length && sameRun(all[end], p) && flagsOf(all[end]) === flags) count += all[end++].count ?? 1;
    if (portFamilies(p)[family]) {
      const ko = n * key.size;
      const vo = n * target.size;
      write(keys, hostAddress(p), ko + k.addr);
      keys[ko + k.proto] = PROTO[p.protocol];
      write(values, containerAddress(p), vo + v.addr);
      if (flags && v.flags !== undefined) values.writeUInt16LE(flags, vo + v.flags);
      if (count > 1) {
        keys.fill(keys.subarray(ko, ko + key.size), ko + key.size, (n + count) * key.size);
        values.fill(values.subarray(vo, vo + target.size), vo + target.size, (n + count) * target.size);
      }
      for (let i = first; i < end; i++) {
        const { hostPort, containerPort, count: ports = 1 } = all[i];
        for (let j = 0; j < ports; j++, n++) {
          const kp = n * key.size + k.port;
          const vp = n * target.size + v.port;
          keys[kp] = (hostPort + j) >> 8;
          keys[kp + 1] = (hostPort + j) & 0xff;
          values[vp] = (containerPort + j) >> 8;
          values[vp + 1] = (containerPort + j) & 0xff;
        }
      }
    }
    first = end;
  }
  return { keys: keys.subarray(0, n * key.size), values: values.subarray(0, n * target.size), count: n };
}

/** Whether two ports share everything but their port numbers (and so their families and addresses). */
function sameRun(a: PortSpec, b: PortSpec): boolean {
  return a.protocol === b.protocol && a.hostIp === b.hostIp && a.containerIp === b.containerIp && a.containerIp6 === b.containerIp6;
}

/** ports4 keys and values; flagsOf gives each port's PortFlags. */
export function encodePorts(all: readonly PortSpec[], flagsOf?: (p: PortSpec) => number): { keys: Buffer; values: Buffer; count: number } {
  const word = remembered(ipv4Word);
  const write: AddressWriter = (buf, text, off) => void buf.writeUInt32BE(word(text), off);
  return packPorts(all, 'v4', portKey, portTarget, (p) => p.hostIp || '0.0.0.0', (p) => p.containerIp, write, flagsOf);
}

/** ports6 keys and values; flagsOf as for encodePorts. */
export function encodePorts6(all: readonly PortSpec[], flagsOf?: (p: PortSpec) => number): { keys: Buffer; values: Buffer; count: number } {
  const bytes = remembered(ipv6Bytes);
  const write: AddressWriter = (buf, text, off) => void bytes(text).copy(buf, off);
  return packPorts(all, 'v6', portKey6, portTarget6, (p) => (p.hostIp === '' ? '::' : p.hostIp), (p) => p.containerIp6!, write, flagsOf);
}

/** The host's ephemeral port range: masquerade must not pick from it (host sockets use it). */
function ephemeralRange(): [number, number] {
  try {
    const [a, b] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (a > 0 && b >= a) return [a, b];
  } catch {
    /* fall through */
  }
  return [32768, 60999];
}

/**
 * stats4's value grows with the table of drop reasons: counters pinned by an older daemon (another
 * layout) would make every object fail to load, so they are unpinned and start again from zero.
 * The programs still attached keep their map until the new ones replace them.
 */
/**
 * Maps an earlier version pinned with other flags (ct6 and ports6 were BPF_F_NO_PREALLOC): a
 * daemon upgraded over live pins moves their entries into the new maps, flows and published
 * ports included, instead of refusing to load.
 */
const RESHAPED_MAPS = [DatapathMaps6.conntrack, DatapathMaps6.ports] as const;

function dropStaleStats(pinRoot: string): void {
  const path = join(pinRoot, DatapathMaps.stats);
  if (!existsSync(path)) return;
  try {
    PinnedCounters.openPinned(path, u32, epStats).close();
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    rmSync(path, { force: true });
  }
}

export interface EbpfDatapathOptions {
  /** Act on this namespace instead of the daemon's own (tests aim it at a lab's host). */
  netns?: Netns;
}

export class EbpfDatapath implements Datapath, Observable, OverlayCapable {
  readonly kind = 'ebpf' as const;
  /** ARP, neighbour discovery and the host's traffic are the programs' (bpf/lib/neigh.h, bpf/bridge.bpf.c): no bridge port per sandbox. */
  readonly portless = true;
  readonly #ctx: DatapathContext;
  readonly #pinRoot: string;
  readonly #events = new EventEmitter();
  #maps?: Maps;
  #progs?: Programs;
  #objects: BpfObject[] = [];
  readonly #hooks = new Hooks();
  #gc?: NodeJS.Timeout;
  /** When every hook came to run this build's programs (they mark tracked flows' ports): clean times start after it. */
  #marksFrom?: bigint;
  #addrTimer?: NodeJS.Timeout;
  #drops?: RingBuffer<Decoded<typeof dropEvent>>;
  /** network id -> bridge ifindex; host veth ifindex -> name (for drop reports). */
  readonly #bridges = new Map<string, number>();
  readonly #ifnames = new Map<number, string>();
  /** Which published ports may skip connection tracking (their flag in ports4 and ports6). */
  readonly #stateless4 = new StatelessPorts('v4');
  readonly #stateless6 = new StatelessPorts('v6');
  readonly #tcpPorts = new PublishedTcpPorts();
  /** Overlay networks (VXLAN across hosts): loaded when the first one is ensured. */
  readonly #overlay: EbpfOverlay;
  #overlayUsed = false;

  /** The host namespace the datapath acts on (null: the process's own). */
  readonly #ns: Netns | null;

  constructor(ctx: DatapathContext, opts: EbpfDatapathOptions = {}) {
    this.#ctx = ctx;
    this.#ns = opts.netns ?? null;
    this.#pinRoot = join('/sys/fs/bpf', ctx.instance);
    this.#overlay = new EbpfOverlay({
      linkPrefix: ctx.linkPrefix,
      pinRoot: this.#pinRoot,
      uplink: ctx.uplink.ifname,
      hooks: this.#hooks,
      ensureStats: (slot) => this.#ensureStats(this.#load(), slot),
    });
  }

  /** Loads the programs (reusing pinned maps) once; safe to call again. */
  #load(): Maps {
    if (this.#maps) return this.#maps;
    mkdirSync(this.#pinRoot, { recursive: true });
    dropStaleStats(this.#pinRoot);
    // The table of flows not yet assured is as large as the assured one (at least 512), so a
    // small --ebpf-ct-max shrinks both.
    const ctMax = this.#ctx.ebpf?.ctMax;
    const maxEntries = ctMax ? { ct4: ctMax, ct4_new: Math.max(512, ctMax), ct6: ctMax, ct6_new: Math.max(512, ctMax) } : undefined;
    const consts = { ct_owner_quota: encode(u32, ctOwnerQuota(ctMax ?? CT_MAX_DEFAULT)) };
    const open = (name: string) => {
      try {
        return BpfObject.load(bpfObject(name), { pinRoot: this.#pinRoot, maxEntries, consts, carryOver: RESHAPED_MAPS });
      } catch (err) {
        if (isBpfError(err, 'EINVAL') && /ct4|incompatible|mismatch/.test((err as Error).message))
          throw new Error(`${(err as Error).message}\n(the pinned maps under ${this.#pinRoot} were made with other sizes: remove them to change --ebpf-ct-max)`);
        throw err;
      }
    };
    const lxc = open('lxc');
    const uplink = open('uplink');
    const host = open('host');
    const bridge = open('bridge');
    this.#objects = [lxc, uplink, host, bridge];
    this.#progs = {
      fromContainer: lxc.program('from_container'),
      toContainer: lxc.program('to_container'),
      fromUplink: uplink.program('from_uplink'),
      fromHost: host.program('from_host'),
      fromGateway: bridge.program('from_gateway'),
    };
    const M = DatapathMaps;
    this.#maps = {
      cfg: lxc.map(M.config, u32, dpConfig),
      net: lxc.map(M.networks, u32, networkInfo),
      ep: lxc.map(M.endpoints, ipv4, endpointInfo),
      epIfx: lxc.map(M.endpointsByIfindex, u32, endpointInfo),
      local: lxc.map(M.local, ipv4, u8),
      ports: lxc.map(M.ports, portKey, portTarget),
      reversePorts: lxc.map(M.reversePorts, portKey, portTarget),
      tcpPorts: lxc.map(M.tcpPorts, u32, portBitmap),
      tcpPortsAt: lxc.map(M.tcpPortsAt, u32, portBitmap),
      ct: lxc.map(M.conntrack, ctKey4, ctEntry4),
      ctNew: lxc.map(M.conntrackNew, ctKey4, ctEntry4),
      ctFull: lxc.map(M.conntrackFull, u32, u64n),
      ctOwners: lxc.map(M.conntrackOwners, ipv4, u32),
      ctPortClean: lxc.map(M.conntrackPortClean, u32, u64n),
      stats: lxc.perCpuMap(M.stats, u32, epStats),
      cfg6: lxc.map(DatapathMaps6.config, u32, dpConfig6),
      net6: lxc.map(DatapathMaps6.networks, u32, networkInfo6),
      net6More: lxc.map(DatapathMaps6.moreSubnets, net6MoreKey, ipv6),
      ep6: lxc.map(DatapathMaps6.endpoints, ipv6, endpointInfo),
      local6: lxc.map(DatapathMaps6.local, ipv6, u8),
      ports6: lxc.map(DatapathMaps6.ports, portKey6, portTarget6),
      reversePorts6: lxc.map(DatapathMaps6.reversePorts, portKey6, portTarget6),
      ct6: lxc.map(DatapathMaps6.conntrack, ctKey6, ctEntry6),
      ct6New: lxc.map(DatapathMaps6.conntrackNew, ctKey6, ctEntry6),
      ctFull6: lxc.map(DatapathMaps6.conntrackFull, u32, u64n),
      ctOwners6: lxc.map(DatapathMaps6.conntrackOwners, ipv6, u32),
    };
    return this.#maps;
  }

  /** Pins the programs in use under progs/ (replacing a previous daemon's), for bpftool and for the record. */
  #pinPrograms(progs: Programs): void {
    const dir = join(this.#pinRoot, 'progs');
    mkdirSync(dir, { recursive: true });
    for (const prog of Object.values(progs)) {
      const path = join(dir, prog.name);
      rmSync(path, { force: true });
      prog.pin(path);
    }
  }

  async #configure(maps: Maps): Promise<void> {
    const t = { ...DEFAULT_TIMEOUTS, ...(this.#ctx.ebpf?.timeouts ?? {}) };
    const uplinkKind = (await ipJson<Array<{ linkinfo?: { info_kind?: string } }>>(this.#ns, ['-d', 'link', 'show', 'dev', this.#ctx.uplink.ifname]))[0]?.linkinfo?.info_kind;
    const [ephLo, ephHi] = ephemeralRange();
    maps.cfg.set(0, {
      uplink_addr: this.#ctx.uplink.ipv4,
      uplink_ifindex: interfaceIndex(this.#ns?.path ?? null, this.#ctx.uplink.ifname),
      lo_ifindex: interfaceIndex(this.#ns?.path ?? null, 'lo'),
      nat_lo_min: 1024,
      nat_lo_max: Math.max(1023, ephLo - 1),
      nat_hi_min: Math.min(65535, ephHi + 1),
      nat_hi_max: ephHi >= 65535 ? 0 : 65535,
      tcp_syn_timeout: t['tcp-syn'],
      tcp_established_timeout: t['tcp-established'],
      tcp_fin_timeout: t['tcp-fin'],
      tcp_closed_timeout: t['tcp-closed'],
      udp_timeout: t.udp,
      udp_stream_timeout: t['udp-stream'],
      icmp_timeout: t.icmp,
      flags: DpFlags.CONFIGURED | DpFlags.DROP_EVENTS | (uplinkKind === 'veth' && this.#ctx.ebpf?.uplinkShortcut !== false ? DpFlags.UPLINK_VETH : 0),
    });
    maps.cfg6.set(0, { uplink_addr: this.#ctx.uplink.ipv6 || '::', flags: DP6_F_CONFIGURED });
    for (const slot of [StatsSlot.UPLINK, StatsSlot.HOST]) this.#ensureStats(maps, slot);
  }

  #ensureStats(maps: Maps, slot: number): void {
    try {
      maps.stats.set(slot, { tx_packets: 0, tx_bytes: 0, rx_packets: 0, rx_bytes: 0, drops: DROP_REASONS.map(() => 0) }, 'only-new');
    } catch (err) {
      if (!isBpfError(err, 'EEXIST')) throw err;
    }
  }

  /**
   * local4/local6: every address of the host namespace, where published ports apply (IPv6:
   * global and host scope; link-local destinations are the host's anyway). Returns the uplink's
   * own, per family. One rtnetlink dump and no process: with thousands of host veths
   * `ip -j addr show` printed megabytes every poll, CPU taken from the traffic it serves.
   */
  async #refreshLocal(maps: Maps): Promise<{ uplink4: string[]; uplink6: string[] }> {
    const addrs = dumpAddresses(this.#ns?.path ?? null);
    const want = new Set<string>(['127.0.0.1']);
    const want6 = new Set<string>(['::1']);
    const uplink = { uplink4: [] as string[], uplink6: [] as string[] };
    let uplinkIndex: number | undefined;
    try {
      uplinkIndex = interfaceIndex(this.#ns?.path ?? null, this.#ctx.uplink.ifname);
    } catch {
      /* gone for now: local addresses still follow, the uplink's keep their last value */
    }
    for (const a of addrs) {
      if (a.family === 4) {
        want.add(a.local);
        if (a.ifindex === uplinkIndex) uplink.uplink4.push(a.local);
      } else if (a.scope !== 253 /* RT_SCOPE_LINK */) {
        want6.add(a.local);
        if (a.ifindex === uplinkIndex) uplink.uplink6.push(a.local);
      }
    }
    for (const k of maps.local.keys()) if (!want.has(k)) maps.local.delete(k);
    const have = new Set(maps.local.keys());
    for (const k of want) if (!have.has(k)) maps.local.set(k, 1);
    for (const k of maps.local6.keys()) if (!want6.has(k)) maps.local6.delete(k);
    const have6 = new Set(maps.local6.keys());
    for (const k of want6) if (!have6.has(k)) maps.local6.set(k, 1);
    return uplink;
  }

  async start(desired: DesiredState): Promise<void> {
    // Replies to host processes re-enter through lo with their original (local) addresses,
    // 127.0.0.1 included; lo must accept them without a route cached on the packet.
    for (const key of ['net.ipv4.ip_forward', 'net.ipv4.conf.lo.route_localnet', 'net.ipv4.conf.lo.accept_local']) await ensureSysctl(this.#ns ? { netnsPath: this.#ns.path } : {}, key, '1');
    const maps = this.#load();
    const progs = this.#progs!;
    this.#pinPrograms(progs);
    await this.#configure(maps);
    this.#hooks.ensure(this.#ns?.path ?? null, this.#ctx.uplink.ifname, 'ingress', progs.fromUplink);
    this.#hooks.ensure(this.#ns?.path ?? null, 'lo', 'egress', progs.fromHost);

    for (const n of desired.networks) await this.ensureNetwork(n);
    const wantNets = new Set(desired.networks.filter((n) => n.subnet).map((n) => this.#bridges.get(n.id)));
    for (const k of maps.net.keys()) if (!wantNets.has(k)) maps.net.delete(k);
    const wantNets6 = new Set(desired.networks.filter((n) => n.subnet6).map((n) => this.#bridges.get(n.id)));
    for (const k of maps.net6.keys()) if (!wantNets6.has(k)) maps.net6.delete(k);
    for (const k of maps.net6More.keys()) if (!wantNets6.has(k.net_ifindex)) maps.net6More.delete(k);
    if (this.#overlayUsed) for (const k of this.#overlay.networkKeys()) if (!wantNets.has(k)) this.#overlay.removeNetwork(k);

    // Until every hook runs this build's programs (which mark tracked flows' ports), no port is clean.
    clearUntracked(maps.ctPortClean);
    for (const e of desired.endpoints) {
      const net = desired.networks.find((n) => n.id === e.networkId);
      if (net) await this.ensureEndpoint(net, e);
    }
    const wantIps = new Set(desired.endpoints.map((e) => e.ipv4));
    const wantIfx = new Set(desired.endpoints.map((e) => this.#ifindexOf(e.hostIfname)).filter((x): x is number => x !== undefined));
    for (const k of maps.ep.keys()) if (!wantIps.has(k)) maps.ep.delete(k);
    const wantIps6 = new Set(desired.endpoints.filter((e) => e.ipv6).map((e) => formatIPv6(ipv6Bytes(e.ipv6!))));
    for (const k of maps.ep6.keys()) if (!wantIps6.has(k)) maps.ep6.delete(k);
    for (const k of maps.epIfx.keys()) if (!wantIfx.has(k)) maps.epIfx.delete(k);
    for (const ifindex of this.#bridges.values()) wantIfx.add(ifindex);
    for (const k of maps.stats.keys()) if (k > StatsSlot.HOST && !wantIfx.has(k)) maps.stats.delete(k);
    // Filters of endpoints that are gone went with their devices (reconcile deletes stray veths).

    const eachPort = eachPortOf(desired.ports);
    const wantPorts = new Set(eachPort.filter((p) => portFamilies(p).v4).map((p) => keyString(portKeyOf(p))));
    for (const k of maps.ports.keys()) if (!wantPorts.has(keyString(k))) maps.ports.delete(k);
    const wantPorts6 = new Set(eachPort.filter((p) => portFamilies(p).v6).map((p) => keyString6(portKey6Of(p))));
    for (const k of maps.ports6.keys()) if (!wantPorts6.has(keyString6(k))) maps.ports6.delete(k);
    for (const k of maps.reversePorts.keys()) if (!wantIps.has(k.addr)) maps.reversePorts.delete(k);
    for (const k of maps.reversePorts6.keys()) if (!wantIps6.has(k.addr)) maps.reversePorts6.delete(k);
    this.#stateless4.clear();
    this.#stateless6.clear();
    this.#tcpPorts.clear();
    maps.tcpPorts.set(0, this.#tcpPorts.bitmap());
    maps.tcpPortsAt.set(0, this.#tcpPorts.bitmapAt());
    await this.publish(desired.ports);
    await this.#refreshLocal(maps);
    // The quota's counts may be stale after a crash (an endpoint removed halfway): start exact.
    recountOwners(maps.ct, maps.ctOwners);
    recountOwners(maps.ct6, maps.ctOwners6, CT6);
    this.#marksFrom = monotonicNs();

    this.#startGc(maps);
    this.#startAddressRefresh(maps);
    this.#startDrops();
  }

  #startGc(maps: Maps): void {
    if (this.#gc) return;
    const every = this.#ctx.ebpf?.gcIntervalMs ?? 10_000;
    this.#gc = setInterval(() => {
      try {
        this.collectGarbage();
      } catch {
        /* the next round tries again */
      }
    }, every);
    this.#gc.unref();
  }

  /** Collects expired connection-table entries (assured and new) now; returns how many went. */
  collectGarbage(): number {
    if (!this.#maps) return 0;
    const m = this.#maps;
    const from = monotonicNs() - UNTRACKED_MARGIN_NS;
    // One pass over each table: expired flows go, the others are counted for the quota, and the
    // ports sandboxes send tracked flows from are gathered.
    const sending = new Set<number>();
    const owners = new Map<string, number>();
    const assured = collectExpired(m.ct, undefined, CT4, { owners, sending }).removed;
    // Room again: new flows need not wait out the refusal the programs set when ct4 was full.
    if (assured > 0) m.ctFull.set(0, 0n);
    writeOwners(m.ctOwners, owners);
    const owners6 = new Map<string, number>();
    const assured6 = collectExpired(m.ct6, undefined, CT6, { owners: owners6, sending }).removed;
    if (assured6 > 0) m.ctFull6.set(0, 0n);
    writeOwners(m.ctOwners6, owners6);
    const young = collectExpired(m.ctNew, undefined, CT4, { sending }).removed + collectExpired(m.ct6New, undefined, CT6, { sending }).removed;
    // The stateless targets' ports no tracked flow sends from: their replies skip the tables.
    if (this.#marksFrom !== undefined && from > this.#marksFrom) {
      const targets = [...m.reversePorts.keys()].map((k) => k.port).concat([...m.reversePorts6.keys()].map((k) => k.port));
      writeUntracked(m.ctPortClean, targets, sending, from);
    }
    return assured + assured6 + young;
  }

  /**
   * Follows the host's addresses while running: one added later must answer on published
   * ports, one removed must stop (local4), and the masquerade source follows the uplink's
   * address. A poll of `ip -4 addr` (a few ms) every addressRefreshMs, serialized.
   */
  #startAddressRefresh(maps: Maps): void {
    if (this.#addrTimer) return;
    const every = this.#ctx.ebpf?.addressRefreshMs ?? 2_000;
    let running = false;
    this.#addrTimer = setInterval(() => {
      if (running) return;
      running = true;
      this.#refreshAddresses(maps)
        .catch(() => undefined /* the next round tries again */)
        .finally(() => (running = false));
    }, every);
    this.#addrTimer.unref();
  }

  async #refreshAddresses(maps: Maps): Promise<void> {
    const { uplink4, uplink6 } = await this.#refreshLocal(maps);
    const cfg = maps.cfg.get(0);
    // The configured address stays while it is still on the uplink; otherwise its first one.
    if (cfg && uplink4.length > 0 && !uplink4.includes(cfg.uplink_addr)) maps.cfg.set(0, { ...cfg, uplink_addr: uplink4[0] });
    const cfg6 = maps.cfg6.get(0);
    if (cfg6 && uplink6.length > 0 && !uplink6.includes(cfg6.uplink_addr)) maps.cfg6.set(0, { ...cfg6, uplink_addr: uplink6[0] });
  }

  #startDrops(): void {
    if (this.#drops || !this.#objects[0]) return;
    this.#drops = new RingBuffer(
      this.#objects[0].rawMap(DatapathMaps.dropEvents),
      dropEvent,
      (e) => {
        if (this.#events.listenerCount('drop') === 0) return;
        const port = (p: number) => (e.proto === 6 || e.proto === 17 ? `:${p}` : '');
        const iface = e.ifindex === StatsSlot.UPLINK ? 'uplink' : e.ifindex === StatsSlot.HOST ? 'host' : (this.#ifnames.get(e.ifindex) ?? `if${e.ifindex}`);
        const drop: DropInfo = {
          time: new Date(),
          reason: DROP_REASONS[e.reason] ?? `reason-${e.reason}`,
          protocol: PROTO_NAME[e.proto] ?? (e.proto ? `proto-${e.proto}` : 'l2'),
          source: e.family === 6 ? `[${e.saddr6}]${port(e.sport)}` : `${e.saddr}${port(e.sport)}`,
          destination: e.family === 6 ? `[${e.daddr6}]${port(e.dport)}` : `${e.daddr}${port(e.dport)}`,
          interface: iface,
        };
        this.#events.emit('drop', drop);
      },
      () => undefined,
    );
    this.#drops.ref(false);
  }

  onDrop(listener: (drop: DropInfo) => void): () => void {
    this.#events.on('drop', listener);
    return () => this.#events.off('drop', listener);
  }

  counters(hostIfname: string): EndpointCounters | undefined {
    const ifindex = this.#ifindexOf(hostIfname);
    if (ifindex === undefined || !this.#maps) return undefined;
    const per = this.#maps.stats.get(ifindex);
    if (!per) return undefined;
    const total = sumPerCpu(per.map((s) => ({ tx_packets: s.tx_packets, tx_bytes: s.tx_bytes, rx_packets: s.rx_packets, rx_bytes: s.rx_bytes })));
    const drops: Record<string, number> = {};
    DROP_REASONS.forEach((name, i) => {
      const n = per.reduce((sum, s) => sum + s.drops[i], 0);
      if (n > 0) drops[name] = n;
    });
    return { rxPackets: total.rx_packets, rxBytes: total.rx_bytes, txPackets: total.tx_packets, txBytes: total.tx_bytes, drops };
  }

  #ifindexOf(ifname: string): number | undefined {
    for (const [ifindex, name] of this.#ifnames) if (name === ifname) return ifindex;
    try {
      const ifindex = interfaceIndex(this.#ns?.path ?? null, ifname);
      this.#ifnames.set(ifindex, ifname);
      return ifindex;
    } catch {
      return undefined;
    }
  }

  async ensureNetwork(net: NetworkSpec): Promise<void> {
    const maps = this.#load();
    const dev = await link(this.#ns, net.device);
    if (!dev) throw new Error(`network ${net.name}: bridge "${net.device}" does not exist`);
    if (net.subnet) {
      const cidr = parseCidr(net.subnet);
      if (!cidr) throw new Error(`network ${net.name}: "${net.subnet}" is not an IPv4 subnet`);
      maps.net.set(dev.ifindex, {
        subnet: formatIPv4(cidr.addr),
        mask: formatIPv4(maskOf(cidr.bits)),
        gateway: net.gateway,
        bridge_mac: dev.address!,
        flags: netFlags(net),
      });
    } else maps.net.delete(dev.ifindex);
    if (net.subnet6) {
      // bpf_fib_lookup refuses IPv6 unless forwarding is on (in the daemon's namespace, as Docker does for --ipv6).
      await ensureSysctl(this.#ns ? { netnsPath: this.#ns.path } : {}, 'net.ipv6.conf.all.forwarding', '1');
      const { subnet, mask } = parseCidr6(net.subnet6, net.name);
      // Further subnets first, so that the flag never points at entries not there yet.
      this.#ensureMoreSubnets6(maps, dev.ifindex, net);
      const more = (net.moreSubnets6?.length ?? 0) > 0 ? NetFlags.MORE_SUBNETS6 : 0;
      maps.net6.set(dev.ifindex, { subnet, mask, gateway: net.gateway6 || '::', bridge_mac: dev.address!, flags: netFlags6(net) | more });
    } else {
      maps.net6.delete(dev.ifindex);
      this.#ensureMoreSubnets6(maps, dev.ifindex, { ...net, moreSubnets6: [] });
    }
    this.#bridges.set(net.id, dev.ifindex);
    // The host's traffic into the network: the bridge has no sandbox ports to flood it to.
    this.#ensureStats(maps, dev.ifindex);
    this.#ifnames.set(dev.ifindex, net.device);
    this.#hooks.ensure(this.#ns?.path ?? null, net.device, 'egress', this.#progs!.fromGateway);
    if (net.vni !== undefined) {
      this.#overlayUsed = true;
      await this.#overlay.ensureNetwork(dev.ifindex, net.vni);
    } else if (this.#overlayUsed) this.#overlay.removeNetwork(dev.ifindex);
    await this.#refreshLocal(maps);
  }

  /** net6_more holds exactly the network's further IPv6 subnets (the first is in net6). */
  #ensureMoreSubnets6(maps: Maps, ifindex: number, net: NetworkSpec): void {
    const wanted = new Map<string, { key: Decoded<typeof net6MoreKey>; gateway: string }>();
    for (const s of net.moreSubnets6 ?? []) {
      const { subnet } = parseCidr6(s.subnet, net.name);
      const key = { prefixlen: 32 + Number(s.subnet.split('/')[1]), net_ifindex: ifindex, addr: subnet };
      wanted.set(`${key.prefixlen} ${subnet}`, { key, gateway: s.gateway });
    }
    for (const k of maps.net6More.keys()) if (k.net_ifindex === ifindex && !wanted.has(`${k.prefixlen} ${k.addr}`)) maps.net6More.delete(k);
    for (const { key, gateway } of wanted.values()) maps.net6More.set(key, gateway);
  }

  async removeNetwork(net: NetworkSpec): Promise<void> {
    const maps = this.#load();
    const ifindex = this.#bridges.get(net.id) ?? (await link(this.#ns, net.device))?.ifindex;
    this.#hooks.remove(this.#ns?.path ?? null, net.device, 'egress');
    if (ifindex !== undefined) {
      maps.net.delete(ifindex);
      maps.net6.delete(ifindex);
      this.#ensureMoreSubnets6(maps, ifindex, { ...net, moreSubnets6: [] });
      maps.stats.delete(ifindex);
      this.#ifnames.delete(ifindex);
      if (net.vni !== undefined) this.#overlay.removeNetwork(ifindex);
    }
    this.#bridges.delete(net.id);
    await this.#refreshLocal(maps);
  }

  async ensureEndpoint(net: NetworkSpec, ep: EndpointSpec): Promise<void> {
    const maps = this.#load();
    if (!this.#bridges.has(net.id)) await this.ensureNetwork(net);
    const ifindex = interfaceIndex(this.#ns?.path ?? null, ep.hostIfname);
    this.#ifnames.set(ifindex, ep.hostIfname);
    const info: EndpointInfo = {
      addr: ep.ipv4 || '0.0.0.0',
      ifindex,
      net_ifindex: this.#bridges.get(net.id)!,
      mac: ep.mac,
      flags: ep.ipv6 ? EpFlags.IPV6 : 0,
      addr6: ep.ipv6 || '::',
    };
    // The programs must know the endpoint (by its veth) before its first packet, and nothing may
    // be delivered to it (by address) before from_container answers its ARP: a sandbox that
    // answers an early packet and asks ARP into a bare veth hears nothing and retries 1 s later.
    this.#ensureStats(maps, ifindex);
    maps.epIfx.set(ifindex, info);
    this.#hooks.ensure(this.#ns?.path ?? null, ep.hostIfname, 'ingress', this.#progs!.fromContainer);
    this.#hooks.ensure(this.#ns?.path ?? null, ep.hostIfname, 'egress', this.#progs!.toContainer);
    if (ep.ipv4) maps.ep.set(ep.ipv4, info);
    if (ep.ipv6) maps.ep6.set(ep.ipv6, info);
    await applySandboxIPv6(ep);
  }

  async removeEndpoint(_net: NetworkSpec, ep: EndpointSpec): Promise<void> {
    const maps = this.#load();
    this.#hooks.remove(this.#ns?.path ?? null, ep.hostIfname, 'ingress');
    this.#hooks.remove(this.#ns?.path ?? null, ep.hostIfname, 'egress');
    const ifindex = (ep.ipv4 ? maps.ep.get(ep.ipv4)?.ifindex : undefined) ?? (ep.ipv6 ? maps.ep6.get(ep.ipv6)?.ifindex : undefined) ?? this.#ifindexOf(ep.hostIfname);
    if (ifindex !== undefined) {
      maps.epIfx.delete(ifindex);
      maps.stats.delete(ifindex);
      this.#ifnames.delete(ifindex);
    }
    // Flows of a gone endpoint must not reach whoever gets its address next.
    if (ep.ipv4) {
      maps.ep.delete(ep.ipv4);
      forgetAddress(maps.ct, ep.ipv4);
      forgetAddress(maps.ctNew, ep.ipv4);
      for (const k of maps.reversePorts.keys()) if (k.addr === ep.ipv4) maps.reversePorts.delete(k);
      maps.ctOwners.delete(ep.ipv4);
    }
    if (ep.ipv6) {
      maps.ep6.delete(ep.ipv6);
      forgetAddress6(maps.ct6, ep.ipv6);
      forgetAddress6(maps.ct6New, ep.ipv6);
      const addr6 = formatIPv6(ipv6Bytes(ep.ipv6));
      for (const k of maps.reversePorts6.keys()) if (k.addr === addr6) maps.reversePorts6.delete(k);
      maps.ctOwners6.delete(ep.ipv6);
    }
  }

  async ensureRemoteEndpoint(remote: RemoteEndpointSpec): Promise<void> {
    this.#load();
    this.#overlay.ensureRemote(remote);
  }

  async removeRemoteEndpoint(remote: RemoteEndpointSpec): Promise<void> {
    this.#load();
    this.#overlay.removeRemote(remote);
  }

  async replaceRemoteEndpoints(remotes: readonly RemoteEndpointSpec[]): Promise<void> {
    this.#load();
    this.#overlay.replaceRemotes(remotes);
  }

  async publish(ports: readonly PortSpec[]): Promise<void> {
    if (ports.length === 0) return;
    const maps = this.#load();
    // First the numbers on addresses of their own: until its bit is set, the uplink would take
    // a segment to such a port for the one on every address with its number.
    this.#tcpPorts.add(ports);
    maps.tcpPortsAt.set(0, this.#tcpPorts.bitmapAt());
    // Ports whose target the new ones now share are written again without the flag: tracked
    // from their next connection on.
    const tracked4 = this.#stateless4.add(ports);
    const tracked6 = this.#stateless6.add(ports);
    this.#setPorts(maps, 'v4', ports, (p) => this.#stateless4.stateless(p));
    this.#setPorts(maps, 'v4', tracked4, () => false);
    this.#setPorts(maps, 'v6', ports, (p) => this.#stateless6.stateless(p));
    this.#setPorts(maps, 'v6', tracked6, () => false);
    // Last: the uplink looks for a stateless port first only once the port is there.
    maps.tcpPorts.set(0, this.#tcpPorts.bitmap());
  }

  async unpublish(ports: readonly PortSpec[]): Promise<void> {
    if (ports.length === 0) return;
    const maps = this.#load();
    const freed4 = this.#stateless4.remove(ports);
    const freed6 = this.#stateless6.remove(ports);
    this.#tcpPorts.remove(ports);
    maps.tcpPorts.set(0, this.#tcpPorts.bitmap());
    const v4 = encodePorts(ports);
    try {
      if (v4.count > 0) maps.ports.deletePacked(v4.keys);
    } catch (err) {
      // Some were never there (or are gone): remove the rest one by one.
      if (!isBpfError(err, 'ENOENT')) throw err;
      for (const p of eachPortOf(ports)) if (portFamilies(p).v4) maps.ports.delete(portKeyOf(p));
    }
    const v6 = encodePorts6(ports);
    try {
      if (v6.count > 0) maps.ports6.deletePacked(v6.keys);
    } catch (err) {
      if (!isBpfError(err, 'ENOENT')) throw err;
      for (const p of eachPortOf(ports)) if (portFamilies(p).v6) maps.ports6.delete(portKey6Of(p));
    }
    // Once the ports on addresses of their own are gone (until then the uplink must look for them).
    maps.tcpPortsAt.set(0, this.#tcpPorts.bitmapAt());
    // Ports now alone on their target: stateless from their next connection on.
    this.#setPorts(maps, 'v4', freed4, () => true);
    this.#setPorts(maps, 'v6', freed6, () => true);
  }

  /** Writes one family's entries of `ports` into ports4 or ports6, flagged where `stateless` says. */
  #setPorts(maps: Maps, family: 'v4' | 'v6', ports: readonly PortSpec[], stateless: (p: PortSpec) => boolean): void {
    const flagsOf = (p: PortSpec) => (stateless(p) ? PortFlags.STATELESS : 0);
    const packed = family === 'v4' ? encodePorts(ports, flagsOf) : encodePorts6(ports, flagsOf);
    if (packed.count > 0) (family === 'v4' ? maps.ports : maps.ports6).setPacked(packed.keys, packed.values);
  }

  async stop(): Promise<void> {
    if (this.#gc) clearInterval(this.#gc);
    this.#gc = undefined;
    if (this.#addrTimer) clearInterval(this.#addrTimer);
    this.#addrTimer = undefined;
    this.#drops?.close();
    this.#drops = undefined;
    for (const o of this.#objects) o.close();
    this.#objects = [];
    this.#overlay.close();
    this.#maps = undefined;
    this.#progs = undefined;
  }

  /** Everything this datapath set up, removed: its hooks on the uplink and lo, its pins. */
  async teardown(): Promise<void> {
    this.#hooks.remove(this.#ns?.path ?? null, this.#ctx.uplink.ifname, 'ingress');
    this.#hooks.remove(this.#ns?.path ?? null, 'lo', 'egress');
    await this.#overlay.teardown();
    await this.stop();
    rmSync(this.#pinRoot, { recursive: true, force: true });
  }
}
