/**
 * The leak check: compares what a lab daemon's store holds (read from its SQLite file) with
 * what exists in the kernel — namespaces, links in the lab host, entries of the pinned maps
 * under the instance's bpffs directory (endpoints, ports, networks, connection table), the lab
 * host's iptables rules — and with its own IPAM allocations and sandbox processes. Returns
 * every disagreement as a sentence naming the object, so a failing test says what leaked.
 */
import Database from 'better-sqlite3';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Lab } from '../../src/lab/lab.js';
import type { LabDaemon } from '../../src/lab/daemon.js';
import { listNetns, ipJson } from '../../src/system/ip.js';
import { BpfMap } from '../../src/datapath/libbpf/bpf.js';
import { DatapathMaps, DatapathMaps6, ctEntry4, ctKey4, endpointInfo, net6MoreKey, networkInfo, networkInfo6, portKey, portKey6, portTarget, portTarget6 } from '../../src/datapath/abi.js';
import { formatIPv6, ipv4, ipv6, ipv6Bytes, u32 } from '../../src/datapath/libbpf/codec.js';
import type { EndpointRecord, NetworkRecord, PortRecord, SandboxRecord } from '../../src/networks/model.js';
import { MacvlanDriver } from '../../src/drivers/macvlan/macvlan-driver.js';
import { linkPrefixFor } from '../../src/daemon/options.js';
import { mvgMac, mvgOwner } from '../../src/drivers/macvlan/vlan-abi.js';
import { decodePortRuns } from '../../src/store/port-rows.js';

/** What the iptables datapath may pin: the in-kernel resolver's maps (bpf/lib/dns.h). */
const IPTABLES_DATAPATH_PINS = new Set(['dns_names', 'dns_clients', 'dns_stats', 'dns_scratch', 'macvlan']);

export interface StoredState {
  networks: NetworkRecord[];
  sandboxes: SandboxRecord[];
  endpoints: EndpointRecord[];
  ports: PortRecord[];
  /** Addresses as canonical text, both families. */
  ipam: Array<{ pool: string; address: string; owner: string }>;
}

/** Reads the daemon's store file directly (read-only; WAL lets it run beside the daemon). */
export function readStore(d: LabDaemon): StoredState {
  const db = new Database(join(d.root, 'bpfnet.db'), { readonly: true, fileMustExist: true });
  try {
    const docs = <T>(table: string) => (db.prepare(`SELECT doc FROM ${table}`).all() as Array<{ doc: string }>).map((r) => JSON.parse(r.doc) as T);
    const ports = (db.prepare('SELECT sandbox_id, doc FROM sandbox_ports').all() as Array<{ sandbox_id: string; doc: string }>).flatMap((r) => decodePortRuns(r.sandbox_id, r.doc));
    return {
      networks: docs<NetworkRecord>('networks'),
      sandboxes: docs<SandboxRecord>('sandboxes'),
      endpoints: docs<EndpointRecord>('endpoints'),
      ports,
      ipam: db.prepare('SELECT pool, address, owner FROM ipam').all() as StoredState['ipam'],
    };
  } finally {
    db.close();
  }
}

const sorted = <T>(xs: Iterable<T>) => [...xs].map(String).sort();
const isPrivate = (a: string) => /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(a);

const canonical6 = (a: string): string => formatIPv6(ipv6Bytes(a));

function diff(what: string, stored: Iterable<unknown>, kernel: Iterable<unknown>): string[] {
  const s = new Set(sorted(stored));
  const k = new Set(sorted(kernel));
  const out: string[] = [];
  for (const x of k) if (!s.has(x)) out.push(`${what} ${x} exists but is not in the store`);
  for (const x of s) if (!k.has(x)) out.push(`${what} ${x} is in the store but missing`);
  return out;
}

interface LinkDetail {
  ifname: string;
  ifindex: number;
  ifalias?: string;
  linkinfo?: { info_kind?: string };
}

/** Processes whose network namespace is the one mounted at path. */
function processesIn(path: string): number[] {
  let inode: string;
  try {
    inode = `net:[${statSync(path).ino}]`;
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of readdirProc()) {
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) === inode) pids.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

/**
 * Processes a daemon started in its sandboxes (their command line names the sandbox's
 * directory under the daemon's root) whose network namespace is mounted nowhere: what a
 * sandbox's process becomes when its namespace is removed without ending it.
 */
function orphanedProcesses(root: string): number[] {
  const mounted = new Set<string>([readlinkSync('/proc/self/ns/net')]);
  for (const name of existsSync('/run/netns') ? readdirSync('/run/netns') : []) {
    try {
      mounted.add(`net:[${statSync(join('/run/netns', name)).ino}]`);
    } catch {
      /* removed meanwhile */
    }
  }
  const out: number[] = [];
  for (const entry of readdirProc()) {
    try {
      if (!readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(`${root}/`)) continue;
      if (/\) Z /.test(readFileSync(`/proc/${entry}/stat`, 'utf8'))) continue;
      if (!mounted.has(readlinkSync(`/proc/${entry}/ns/net`))) out.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

function readdirProc(): string[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e));
}

/**
 * Every disagreement between store and kernel. `seenPids` are sandbox process ids the test saw
 * (sandbox name -> pid): those of sandboxes no longer stored must be gone.
 */
export async function leakReport(lab: Lab, d: LabDaemon, seenPids: ReadonlyMap<string, number> = new Map()): Promise<string[]> {
  const st = readStore(d);
  const problems: string[] = [];
  // A sandbox's ports are published only while it has a bridge endpoint (its primary) to send them to.
  const published = st.ports.filter((p) => st.endpoints.some((e) => e.sandboxId === p.sandboxId && (e.ipv4 || e.ipv6) && e.state === 'active'));
  const active = st.endpoints;
  const netById = new Map(st.networks.map((n) => [n.id, n]));

  // Namespaces: one per stored sandbox that has its own.
  const ours = (await listNetns()).filter((n) => n.startsWith(`${d.instance}-`));
  problems.push(...diff('namespace', st.sandboxes.map((s) => s.netns).filter((n): n is string => n !== null), ours));

  // Processes: nothing left of a removed sandbox; nothing but the sandbox's own in its namespace.
  const storedNames = new Set(st.sandboxes.map((s) => s.name));
  for (const [name, pid] of seenPids) {
    if (storedNames.has(name)) continue;
    if (existsSync(`/proc/${pid}`) && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) problems.push(`process ${pid} of removed sandbox ${name} is still running`);
  }
  for (const pid of orphanedProcesses(d.root)) problems.push(`process ${pid} of this daemon's sandboxes lives in a namespace that is no longer mounted`);
  for (const sb of st.sandboxes) {
    if (sb.netns === null) continue;
    const pids = processesIn(`/run/netns/${sb.netns}`);
    if (sb.command.length === 0 && pids.length > 0) problems.push(`sandbox ${sb.name} runs no command but processes ${pids.join(',')} live in its namespace`);
  }

  // Links in the lab host: one host veth per endpoint, one bridge per bridge network.
  const hostLinks = await ipJson<LinkDetail[]>(lab.host, ['-d', 'link', 'show']);
  // macvlan's devices (children, resolver interfaces, VLAN stand-ins, segments): only those its stored networks and endpoints account for.
  const macvlan = new MacvlanDriver({ instance: d.instance, linkPrefix: linkPrefixFor(d.instance) });
  const mvNets = st.networks.filter((n) => n.driver === 'macvlan');
  const mvEps = st.endpoints.filter((e) => mvNets.some((n) => n.id === e.networkId));
  const mvKnown = macvlan.knownDevices(mvNets, mvEps);
  for (const l of hostLinks) if (macvlan.isOurs(l) && !mvKnown.has(l.ifname)) problems.push(`macvlan device ${l.ifname} exists but no stored network or endpoint has it`);
  for (const n of mvNets) if ((n.dnsAddress || n.dnsAddress6) && !hostLinks.some((l) => l.ifname === macvlan.shimName(n.id))) problems.push(`resolver interface of macvlan network ${n.name} is missing`);
  const mvOwners = join('/sys/fs/bpf', d.instance, 'macvlan', 'mvg_owners');
  if (existsSync(mvOwners)) {
    const m = BpfMap.openPinned(mvOwners, mvgMac, mvgOwner);
    try {
      const macs = new Set(mvEps.map((e) => e.mac));
      for (const k of m.keys()) if (!macs.has(k.addr)) problems.push(`macvlan guard entry for ${k.addr}, which no endpoint holds`);
    } finally {
      m.close();
    }
  }
  const veths = hostLinks.filter((l) => l.linkinfo?.info_kind === 'veth' && l.ifname !== 'up0' && !macvlan.isOurs(l));
  problems.push(...diff('host veth', active.map((e) => e.hostIfname).filter(Boolean), veths.map((l) => l.ifname)));
  const bridges = hostLinks.filter((l) => l.linkinfo?.info_kind === 'bridge');
  const bridgeNetworks = st.networks.filter((n) => n.driver === 'bridge');
  if (bridges.length !== bridgeNetworks.length)
    problems.push(`${bridges.length} bridges (${sorted(bridges.map((b) => b.ifname)).join(', ')}) for ${bridgeNetworks.length} bridge networks`);

  // Addresses: no duplicate in a network; every one held in IPAM by its sandbox.
  const sbById = new Map(st.sandboxes.map((s) => [s.id, s]));
  const seen = new Map<string, string>();
  const addressesOf = (e: EndpointRecord) => [e.ipv4, e.ipv6].filter((a): a is string => !!a);
  for (const e of active) {
    for (const a of addressesOf(e)) {
      const key = `${e.networkId}/${a}`;
      if (seen.has(key)) problems.push(`address ${a} on network ${netById.get(e.networkId)?.name} held by endpoints ${seen.get(key)} and ${e.id}`);
      seen.set(key, e.id);
    }
  }
  const expectedIpam = new Set<string>();
  for (const e of active) for (const a of addressesOf(e)) expectedIpam.add(`${e.networkId} ${a} sandbox ${sbById.get(e.sandboxId)?.name}`);
  const storedIpam = st.ipam
    .filter((r) => r.owner !== 'the gateway' && r.owner !== 'the embedded DNS' && !r.owner.startsWith('auxiliary address '))
    .map((r) => `${r.pool} ${r.address} ${r.owner}`);
  problems.push(...diff('IPAM allocation', expectedIpam, storedIpam).map((p) => p.replace('exists but is not in the store', 'is allocated but no endpoint holds it').replace('is in the store but missing', 'is held by an endpoint but not allocated')));
  for (const r of st.ipam) if (!netById.has(r.pool)) problems.push(`IPAM allocation ${r.address} (${r.owner}) in pool ${r.pool} of no network`);

  // Pinned maps (eBPF datapath; the DNS maps on both).
  const pins = `/sys/fs/bpf/${d.instance}`;
  if (d.opts.datapath === 'ebpf') {
    if (!existsSync(pins)) problems.push(`pin directory ${pins} is missing`);
    else problems.push(...mapReport(pins, st, published));
  } else if (existsSync(pins)) {
    // The in-kernel resolver (bpf/dns.bpf.c) serves both datapaths: its maps are the only pins allowed here.
    const strays = readdirSync(pins).filter((name) => !IPTABLES_DATAPATH_PINS.has(name));
    if (strays.length > 0) problems.push(`pin directory ${pins} holds ${strays.join(', ')} on the iptables datapath`);
  }

  // iptables rules in the lab host.
  const rules = (await lab.exec(lab.host, 'iptables-save', [])).split('\n').filter((l) => l.startsWith('-A '));
  if (d.opts.datapath === 'ebpf') {
    for (const r of rules) problems.push(`iptables rule on the eBPF datapath: ${r}`);
  } else {
    const dnat = rules.filter((r) => r.includes(' -j DNAT '));
    const endpointAddrs = new Set(active.map((e) => e.ipv4).filter(Boolean));
    const published4 = published.filter((p) => familiesOf(p, st).v4).length;
    if (dnat.length !== published4) problems.push(`${dnat.length} DNAT rules for ${published4} ports published on IPv4`);
    for (const r of dnat) {
      const to = / --to-destination ([\d.]+):/.exec(r)?.[1];
      if (to === undefined || !endpointAddrs.has(to)) problems.push(`DNAT rule to an address no endpoint holds: ${r}`);
    }
    const devices = new Set(hostLinks.map((l) => l.ifname));
    for (const r of rules) for (const m of r.matchAll(/(?:^| )!? ?-[io] (\S+)/g)) if (!devices.has(m[1])) problems.push(`iptables rule for missing device ${m[1]}: ${r}`);
  }
  return problems;
}

/** The families a published port answers on: '' both, '::'/an IPv6 address IPv6, else IPv4 — each only where the sandbox has an address of it. */
function familiesOf(p: PortRecord, st: StoredState): { v4: boolean; v6: boolean } {
  const eps = st.endpoints.filter((e) => e.sandboxId === p.sandboxId && e.state === 'active');
  const has4 = eps.some((e) => !!e.ipv4);
  const has6 = eps.some((e) => !!e.ipv6);
  if (p.hostIp === '') return { v4: has4, v6: has6 };
  const six = p.hostIp.includes(':');
  return { v4: !six && has4, v6: six && has6 };
}

function mapReport(pins: string, st: StoredState, published: readonly PortRecord[]): string[] {
  const problems: string[] = [];
  const withAddr = st.endpoints.filter((e) => !!e.ipv4 && e.hostIfname !== undefined);
  const withAddr6 = st.endpoints.filter((e) => !!e.ipv6 && e.hostIfname !== undefined);
  const withAny = st.endpoints.filter((e) => (!!e.ipv4 || !!e.ipv6) && e.hostIfname !== undefined);
  const open = <K, V>(name: string, k: Parameters<typeof BpfMap.openPinned<K, V>>[1], v: Parameters<typeof BpfMap.openPinned<K, V>>[2]) =>
    BpfMap.openPinned<K, V>(join(pins, name), k, v);
  const ep = open(DatapathMaps.endpoints, ipv4, endpointInfo);
  const epx = open(DatapathMaps.endpointsByIfindex, u32, endpointInfo);
  const ports = open(DatapathMaps.ports, portKey, portTarget);
  const back = open(DatapathMaps.reversePorts, portKey, portTarget);
  const nets = open(DatapathMaps.networks, u32, networkInfo);
  const ct = open(DatapathMaps.conntrack, ctKey4, ctEntry4);
  const owners = open(DatapathMaps.conntrackOwners, ipv4, u32);
  const ep6 = open(DatapathMaps6.endpoints, ipv6, endpointInfo);
  const ports6 = open(DatapathMaps6.ports, portKey6, portTarget6);
  const nets6 = open(DatapathMaps6.networks, u32, networkInfo6);
  const owners6 = open(DatapathMaps6.conntrackOwners, ipv6, u32);
  const more6 = open(DatapathMaps6.moreSubnets, net6MoreKey, ipv6);
  try {
    problems.push(...diff('ep6 entry', new Set(withAddr6.map((e) => e.ipv6)), ep6.keys()));
    problems.push(
      ...diff(
        'ports6 entry',
        published.filter((p) => familiesOf(p, st).v6).map((p) => `${p.protocol === 'udp' ? 17 : 6} [${p.hostIp.includes(':') ? p.hostIp : '::'}]:${p.hostPort}`),
        ports6.keys().map((k) => `${k.proto} [${k.addr}]:${k.port}`),
      ),
    );
    const net6Count = nets6.keys().length;
    const bridgeNets6 = st.networks.filter((n) => n.driver === 'bridge' && n.subnet6).length;
    if (net6Count !== bridgeNets6) problems.push(`net6 has ${net6Count} entries for ${bridgeNets6} bridge networks with IPv6`);
    // A network's further IPv6 subnets (after its first), each with its gateway.
    problems.push(
      ...diff(
        'net6_more entry',
        st.networks.filter((n) => n.driver === 'bridge').flatMap((n) => (n.moreSubnets6 ?? []).map((m) => `${canonical6(m.subnet.split('/')[0])}/${m.subnet.split('/')[1]} via ${canonical6(m.gateway)}`)),
        more6.entries().map(([k, gateway]) => `${k.addr}/${k.prefixlen - 32} via ${gateway}`),
      ),
    );
    problems.push(...diff('ep4 entry', new Set(withAddr.map((e) => e.ipv4)), ep.keys()));
    const epxCount = epx.keys().length;
    if (epxCount !== withAny.length) problems.push(`ep_ifx has ${epxCount} entries for ${withAny.length} endpoints`);
    problems.push(
      ...diff(
        'ports4 entry',
        published.filter((p) => familiesOf(p, st).v4).map((p) => `${p.protocol === 'udp' ? 17 : 6} ${p.hostIp || '0.0.0.0'}:${p.hostPort}`),
        ports.keys().map((k) => `${k.proto} ${k.addr}:${k.port}`),
      ),
    );
    const netCount = nets.keys().length;
    const bridgeNets = st.networks.filter((n) => n.driver === 'bridge' && n.subnet).length;
    if (netCount !== bridgeNets) problems.push(`net4 has ${netCount} entries for ${bridgeNets} bridge networks with IPv4`);
    // Connection-table entries of sandbox addresses nobody holds any more (their removal forgets them).
    const held = new Set<string>([...withAddr.map((e) => e.ipv4!), ...st.networks.map((n) => n.gateway).filter((g): g is string => typeof g === 'string')]);
    const stray = new Set<string>();
    for (const [k, v] of ct.entries()) for (const a of [k.saddr, k.daddr, v.saddr, v.daddr]) if (isPrivate(a) && !held.has(a)) stray.add(a);
    for (const a of stray) problems.push(`ct4 entries for ${a}, which no endpoint holds`);
    // The per-sandbox quota's counts: only for addresses an endpoint holds.
    for (const a of owners.keys()) if (!held.has(a)) problems.push(`ct_owner4 entry for ${a}, which no endpoint holds`);
    // The ways back of stateless published ports: only to addresses an endpoint holds.
    for (const k of back.keys()) if (!held.has(k.addr)) problems.push(`rports4 entry for ${k.addr}:${k.port}, which no endpoint holds`);
    const held6 = new Set<string>([...withAddr6.map((e) => e.ipv6!), ...st.networks.map((n) => n.gateway6).filter((g): g is string => typeof g === 'string')]);
    for (const a of owners6.keys()) if (!held6.has(a)) problems.push(`ct_owner6 entry for ${a}, which no endpoint holds`);
  } finally {
    for (const m of [ep, epx, ports, back, nets, ct, owners, ep6, ports6, nets6, owners6, more6]) m.close();
  }
  return problems;
}

/** Fails with the list of leaks, if any. */
export async function expectNoLeaks(lab: Lab, d: LabDaemon, seenPids?: ReadonlyMap<string, number>): Promise<void> {
  expect(await leakReport(lab, d, seenPids)).toEqual([]);
}
