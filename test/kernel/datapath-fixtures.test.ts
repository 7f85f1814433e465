// The datapath programs on packet fixtures (test/fixtures/datapath-cases.ts) through
// BPF_PROG_TEST_RUN, inside a lab host whose devices and routes the programs look up:
// verdicts, rewritten addresses and ports, routed MACs and TTLs, valid checksums, drop reasons.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { DP6_F_CONFIGURED, DP_F_FLOW_EVENTS, DROP_REASONS, DatapathMaps, DatapathMaps6, DpFlags, EpFlags, NetFlags, PortFlags, StatsSlot, dpConfig, dpConfig6, networkInfo6, portBitmap, portKey6, portTarget6, ctKey6, ctEntry6, endpointInfo, epStats, networkInfo, portKey, portTarget, ctKey4, ctEntry4 } from '../../src/datapath/abi.js';
import { BpfObject, interfaceIndex, sumPerCpu, type BpfProgram } from '../../src/datapath/libbpf/bpf.js';
import { ipv4, ipv6, u32, u64n, u8 } from '../../src/datapath/libbpf/codec.js';
import { addUplink6, Lab, UPLINK, UPLINK6 } from '../../src/lab/lab.js';
import { ip, link } from '../../src/system/ip.js';
import { bpfObject } from '../../src/paths.js';
import { BRIDGE_MAC, FIXTURES, REMOTE_MAC, TOPO, UPLINK_MAC, TC_ACT_SHOT, type EndpointName, type Fixture, type Hook } from '../fixtures/datapath-cases.js';
import { buildPacket, buildPacket6, formatIp6, parsePacket, parsePacket6, type PacketSpec } from '../fixtures/packets.js';

const NETS = { bridge: 'brF', internal: 'brI', noicc: 'brN' } as const;
const FLAGS = { bridge: NetFlags.ICC | NetFlags.MASQUERADE, internal: NetFlags.ICC | NetFlags.INTERNAL, noicc: NetFlags.MASQUERADE } as const;

let lab: Lab;
let objects: BpfObject[] = [];
let programs: Record<string, BpfProgram>;
let ifindex: Record<string, number>;
let macs: Record<string, string>;
let stats: ReturnType<BpfObject['perCpuMap']>;

/** ctx (struct __sk_buff, 192 bytes) with only ifindex (offset 40) set: the device the packet arrives on. */
function skbCtx(index: number): Buffer {
  const ctx = Buffer.alloc(192);
  ctx.writeUInt32LE(index, 40);
  return ctx;
}

function resolveMacs<T extends object>(x: T): T {
  const swap = (v: unknown) => (v === BRIDGE_MAC ? macs.bridge : v === UPLINK_MAC ? macs.uplink : v === REMOTE_MAC ? macs.remote : v);
  return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, swap(v)])) as T;
}

function hookIfindex(h: Hook): number {
  if (h.program === 'from_uplink') return ifindex.up0;
  if (h.program === 'from_host') return ifindex.lo;
  if (h.program === 'from_gateway') return ifindex[NETS[h.network]];
  if (!('endpoint' in h)) throw new Error(`hook ${h.program} names no endpoint`);
  return ifindex[`v${h.endpoint}`];
}

function drops(slot: number): Record<string, number> {
  const per = stats.get(slot) as Array<{ drops: number[] }> | undefined;
  const out: Record<string, number> = {};
  DROP_REASONS.forEach((name, i) => {
    const n = (per ?? []).reduce((s, v) => s + v.drops[i], 0);
    if (n) out[name] = n;
  });
  return out;
}

function run(h: Hook, spec: PacketSpec) {
  const packet = buildPacket(resolveMacs(spec));
  return programs[h.program].testRun(packet, { ctx: skbCtx(hookIfindex(h)), netns: lab.host.path });
}

beforeAll(async () => {
  lab = await Lab.create();
  const host = lab.host;
  const gateways = { bridge: TOPO.bridge.gateway, internal: TOPO.internal.gateway, noicc: TOPO.noicc.gateway };
  for (const [net, dev] of Object.entries(NETS)) {
    await ip(host, ['link', 'add', 'name', dev, 'type', 'bridge']);
    await ip(host, ['addr', 'add', `${gateways[net as keyof typeof gateways]}/16`, 'dev', dev]);
    await ip(host, ['link', 'set', dev, 'up']);
  }
  for (const name of Object.keys(TOPO.endpoints)) await ip(host, ['link', 'add', 'name', `v${name}`, 'type', 'veth', 'peer', 'name', `p${name}`]);
  // The uplink's neighbour must be known for a FIB lookup to return its MAC.
  await lab.exec(host, 'ping', ['-c', '1', '-W', '1', UPLINK.externalAddress]);
  ifindex = { up0: interfaceIndex(host.path, 'up0'), lo: interfaceIndex(host.path, 'lo') };
  for (const dev of [...Object.values(NETS), ...Object.keys(TOPO.endpoints).map((n) => `v${n}`)]) ifindex[dev] = interfaceIndex(host.path, dev);
  macs = {
    bridge: (await link(host, NETS.bridge))!.address!,
    uplink: (await link(host, 'up0'))!.address!,
    remote: (await link(lab.external, 'eth0'))!.address!,
  };

  const pinRoot = join(lab.pinDir(), 'fx');
  mkdirSync(pinRoot, { recursive: true });
  objects = ['lxc', 'uplink', 'host', 'bridge'].map((n) => BpfObject.load(bpfObject(n), { pinRoot }));
  const [lxc, up, hostObj, bridgeObj] = objects;
  programs = {
    from_container: lxc.program('from_container'),
    to_container: lxc.program('to_container'),
    from_uplink: up.program('from_uplink'),
    from_host: hostObj.program('from_host'),
    from_gateway: bridgeObj.program('from_gateway'),
  };
  lxc.map(DatapathMaps.config, u32, dpConfig).set(0, {
    uplink_addr: TOPO.uplink,
    uplink_ifindex: ifindex.up0,
    lo_ifindex: ifindex.lo,
    nat_lo_min: 1024,
    nat_lo_max: 32767,
    nat_hi_min: 61000,
    nat_hi_max: 65535,
    tcp_syn_timeout: 60,
    tcp_established_timeout: 3600,
    tcp_fin_timeout: 30,
    tcp_closed_timeout: 10,
    udp_timeout: 30,
    udp_stream_timeout: 120,
    icmp_timeout: 30,
    flags: DpFlags.CONFIGURED,
  });
  const net4 = lxc.map(DatapathMaps.networks, u32, networkInfo);
  for (const [net, dev] of Object.entries(NETS)) {
    const t = TOPO[net as keyof typeof NETS];
    net4.set(ifindex[dev], { subnet: t.subnet, mask: t.mask, gateway: t.gateway, bridge_mac: (await link(host, dev))!.address!, flags: FLAGS[net as keyof typeof NETS] });
  }
  const ep4 = lxc.map(DatapathMaps.endpoints, ipv4, endpointInfo);
  const epIfx = lxc.map(DatapathMaps.endpointsByIfindex, u32, endpointInfo);
  stats = lxc.perCpuMap(DatapathMaps.stats, u32, epStats);
  const zero = { tx_packets: 0, tx_bytes: 0, rx_packets: 0, rx_bytes: 0, drops: DROP_REASONS.map(() => 0) };
  for (const slot of [StatsSlot.UPLINK, StatsSlot.HOST, ...Object.values(NETS).map((dev) => ifindex[dev])]) stats.set(slot, zero);
  for (const [name, ep] of Object.entries(TOPO.endpoints)) {
    const info = { addr: ep.ip, ifindex: ifindex[`v${name}`], net_ifindex: ifindex[NETS[ep.net]], mac: ep.mac, flags: 0, addr6: '::' };
    ep4.set(ep.ip, info);
    epIfx.set(info.ifindex, info);
    stats.set(info.ifindex, zero);
  }
  const local = lxc.map(DatapathMaps.local, ipv4, u8);
  for (const a of [TOPO.uplink, TOPO.bridge.gateway, TOPO.internal.gateway, TOPO.noicc.gateway, '127.0.0.1']) local.set(a, 1);
  const ports = lxc.map(DatapathMaps.ports, portKey, portTarget);
  for (const p of TOPO.ports) ports.set({ addr: '0.0.0.0', port: p.port, proto: p.proto }, { addr: p.to, port: p.toPort, flags: 0 });
});

afterAll(async () => {
  for (const o of objects) o.close();
  await lab?.destroy();
});

describe('datapath fixtures (BPF_PROG_TEST_RUN)', () => {
  it('runs a fixture table that cannot be empty, with unique names', () => {
    expect(FIXTURES.length).toBeGreaterThanOrEqual(17);
    expect(new Set(FIXTURES.map((f) => f.name)).size).toBe(FIXTURES.length);
  });

  it.each(FIXTURES.map((f) => [f.name, f] as [string, Fixture]))('%s', (_name, f) => {
    const slot = hookIfindex(f.hook) === ifindex.up0 ? StatsSlot.UPLINK : hookIfindex(f.hook);
    const before = drops(slot);
    const result = run(f.hook, f.input);
    expect(result.retval).toBe(f.verdict);
    if (f.verdict === TC_ACT_SHOT) {
      expect(drops(slot)[f.drop!] ?? 0).toBe((before[f.drop!] ?? 0) + 1);
      return;
    }
    const out = parsePacket(result.data);
    expect(out.ipChecksumOk).toBe(true);
    expect(out.l4ChecksumOk).toBe(true);
    if (f.output) expect(out).toMatchObject(resolveMacs(f.output));
  });

  it('ICMP echo through masquerade: the id is mapped out and back, checksums hold', () => {
    const A = TOPO.endpoints.A;
    const out = parsePacket(run({ program: 'from_container', endpoint: 'A' }, { srcMac: A.mac, dstMac: '02:42:0a:01:00:01', src: A.ip, dst: TOPO.remote, proto: 'icmp', icmpId: 77 }).data);
    expect(out).toMatchObject({ src: TOPO.uplink, icmpType: 8, l4ChecksumOk: true, ipChecksumOk: true });
    // 77 is below the masquerade ranges: a new id is chosen, and the reply is mapped back.
    expect(out.icmpId! >= 1024).toBe(true);
    const back = run({ program: 'from_uplink' }, { srcMac: REMOTE_MAC, dstMac: UPLINK_MAC, src: TOPO.remote, dst: TOPO.uplink, proto: 'icmp', icmpType: 0, icmpId: out.icmpId });
    expect(back.retval).toBe(7);
    expect(parsePacket(back.data)).toMatchObject({ dst: A.ip, icmpType: 0, icmpId: 77, l4ChecksumOk: true, ipChecksumOk: true });
  });

  it('remembers a routed next hop only briefly: a changed neighbour is followed within 50 ms (the next-hop cache)', async () => {
    const A = TOPO.endpoints.A;
    const send = (sport: number) =>
      parsePacket(run({ program: 'from_container', endpoint: 'A' }, { srcMac: A.mac, dstMac: '02:42:0a:01:00:01', src: A.ip, dst: TOPO.remote, proto: 'udp', sport, dport: 53, payload: Buffer.from('q') }).data);
    // Many packets on one path: each CPU's cache slot for it is filled and used.
    for (let i = 0; i < 20; i++) expect(send(4100 + i)).toMatchObject({ dstMac: macs.remote, srcMac: macs.uplink, ttl: 63, ipChecksumOk: true, l4ChecksumOk: true });
    const moved = '02:00:5e:00:53:77';
    await lab.exec(lab.host, 'ip', ['neigh', 'replace', UPLINK.externalAddress, 'lladdr', moved, 'dev', 'up0', 'nud', 'reachable']);
    try {
      await new Promise((r) => setTimeout(r, 80));
      for (let i = 0; i < 20; i++) expect(send(4200 + i).dstMac).toBe(moved);
    } finally {
      await lab.exec(lab.host, 'ip', ['neigh', 'replace', UPLINK.externalAddress, 'lladdr', macs.remote, 'dev', 'up0', 'nud', 'reachable']);
    }
    await new Promise((r) => setTimeout(r, 80));
    expect(send(4300).dstMac).toBe(macs.remote);
  });

  it('picks another source port when two sandboxes collide on one', () => {
    const [A, B] = [TOPO.endpoints.A, TOPO.endpoints.B];
    const a = parsePacket(run({ program: 'from_container', endpoint: 'A' }, { srcMac: A.mac, dstMac: '02:42:0a:01:00:01', src: A.ip, dst: TOPO.remote, proto: 'tcp', sport: 3333, dport: 9999, flags: ['syn'] }).data);
    const b = parsePacket(run({ program: 'from_container', endpoint: 'B' }, { srcMac: B.mac, dstMac: '02:42:0a:01:00:01', src: B.ip, dst: TOPO.remote, proto: 'tcp', sport: 3333, dport: 9999, flags: ['syn'] }).data);
    expect(a.sport).toBe(3333);
    expect(b.sport).not.toBe(3333);
    expect(b.l4ChecksumOk).toBe(true);
  });

  it('drops truncated packets as malformed', () => {
    const A = TOPO.endpoints.A;
    const full = buildPacket({ srcMac: A.mac, dstMac: TOPO.endpoints.B.mac, src: A.ip, dst: TOPO.endpoints.B.ip, proto: 'tcp', sport: 1, dport: 2 });
    const before = drops(ifindex.vA)['malformed'] ?? 0;
    // A full IPv4 header announcing TCP, with the TCP header cut after 4 bytes.
    const r = programs.from_container.testRun(full.subarray(0, 38), { ctx: skbCtx(ifindex.vA), netns: lab.host.path });
    expect(r.retval).toBe(TC_ACT_SHOT);
    expect(drops(ifindex.vA)['malformed']).toBe(before + 1);
  });

  it('keeps two entries per flow in the connection tables, each the twin of the other', () => {
    const entries = [DatapathMaps.conntrack, DatapathMaps.conntrackNew].flatMap((name) => {
      const ct = objects[0].map(name, ctKey4, ctEntry4);
      const all = ct.entries();
      ct.close();
      return all;
    });
    const key = (e: { saddr: string; daddr: string; sport: number; dport: number }) => `${e.saddr}:${e.sport}>${e.daddr}:${e.dport}`;
    const keys = new Set(entries.map(([k]) => key(k)));
    // The fixtures above created flows: an empty table would prove nothing.
    expect(entries.length).toBeGreaterThanOrEqual(16);
    for (const [, e] of entries) expect(keys.has(key({ saddr: e.daddr, daddr: e.saddr, sport: e.dport, dport: e.sport }))).toBe(true);
    expect(entries.length % 2).toBe(0);
  });

  it('removes a flow closed by FIN both ways at the packet that acknowledges the second FIN, whichever side closed first or both at once; a reset one waits in the LRU', () => {
    const tables = [DatapathMaps.conntrack, DatapathMaps.conntrackNew].map((name) => objects[0].map(name, ctKey4, ctEntry4));
    const A = TOPO.endpoints.A;
    type Flag = 'syn' | 'ack' | 'fin' | 'rst';
    type Seq = { seq?: number; ackNum?: number };
    const fromA = (sport: number, flags: Flag[], n: Seq = {}) =>
      run({ program: 'from_container', endpoint: 'A' }, { srcMac: A.mac, dstMac: '02:42:0a:01:00:01', src: A.ip, dst: TOPO.remote, proto: 'tcp', sport, dport: 80, flags, ...n });
    const toA = (port: number, flags: Flag[], n: Seq = {}) =>
      run({ program: 'from_uplink' }, { srcMac: REMOTE_MAC, dstMac: UPLINK_MAC, src: TOPO.remote, dst: TOPO.uplink, proto: 'tcp', sport: 80, dport: port, flags, ...n });
    /** The entries (in ct4, in ct4_new) of the flow whose masquerade port is `port`. */
    const held = (port: number) =>
      tables.map((t) => t.entries().filter(([k, e]) => (k.daddr === TOPO.remote && k.saddr === A.ip ? e.sport === port : k.saddr === TOPO.remote && k.dport === port)).length);
    const open = (sport: number) => {
      const syn = fromA(sport, ['syn']);
      expect(syn.retval).toBe(7);
      const port = parsePacket(syn.data).sport!;
      expect(toA(port, ['syn', 'ack']).retval).toBe(7);
      expect(fromA(sport, ['ack']).retval).toBe(7);
      expect(held(port)).toEqual([2, 0]); // assured: both entries in ct4
      return port;
    };
    try {
      // The sandbox closes first: its FIN, the remote's FIN, then the sandbox's ACK of it ends the flow.
      const p1 = open(5101);
      expect(fromA(5101, ['fin', 'ack']).retval).toBe(7);
      expect(fromA(5101, ['ack']).retval).toBe(7); // not the end: the remote has not closed yet
      expect(toA(p1, ['fin', 'ack']).retval).toBe(7);
      expect(held(p1)).toEqual([2, 0]);
      expect(toA(p1, ['ack']).retval).toBe(7); // an ACK from the side that closed last ends nothing…
      expect(held(p1)).toEqual([2, 0]);
      expect(fromA(5101, ['ack']).retval).toBe(7); // …the ACK of the last FIN, translated, does
      expect(held(p1)).toEqual([0, 0]);
      // The remote closes first: the last packet is the remote's ACK, through the uplink.
      const p2 = open(5102);
      expect(toA(p2, ['fin', 'ack']).retval).toBe(7);
      expect(fromA(5102, ['fin', 'ack']).retval).toBe(7);
      expect(held(p2)).toEqual([2, 0]);
      expect(toA(p2, ['ack']).retval).toBe(7);
      expect(held(p2)).toEqual([0, 0]);
      // Both close at once (their FINs cross, neither acknowledging the other's): each side then
      // acknowledges the other's FIN, and only the second of those ACKs ends the flow. The sandbox's
      // data ends at 1000 (its FIN is 1000, acknowledged by 1001), the remote's at 2000.
      const p4 = open(5104);
      expect(fromA(5104, ['fin', 'ack'], { seq: 1000, ackNum: 2000 }).retval).toBe(7);
      expect(toA(p4, ['fin', 'ack'], { seq: 2000, ackNum: 1000 }).retval).toBe(7);
      expect(fromA(5104, ['ack'], { seq: 1001, ackNum: 2001 }).retval).toBe(7); // covers the remote's FIN only
      expect(held(p4)).toEqual([2, 0]);
      expect(toA(p4, ['ack'], { seq: 2001, ackNum: 1001 }).retval).toBe(7); // …the remote's ACK of the sandbox's FIN still passes
      expect(held(p4)).toEqual([0, 0]);
      // An ACK short of the FIN it follows (data still unacknowledged) ends nothing either.
      const p5 = open(5105);
      expect(toA(p5, ['fin', 'ack'], { seq: 2000, ackNum: 1000 }).retval).toBe(7);
      expect(fromA(5105, ['fin', 'ack'], { seq: 1000, ackNum: 2001 }).retval).toBe(7);
      expect(toA(p5, ['ack'], { seq: 2001, ackNum: 1000 }).retval).toBe(7);
      expect(held(p5)).toEqual([2, 0]);
      expect(toA(p5, ['ack'], { seq: 2001, ackNum: 1001 }).retval).toBe(7);
      expect(held(p5)).toEqual([0, 0]);
      // A reset while open may be forged and ignored by the ends: the flow waits out the closed timeout in the LRU.
      const p3 = open(5103);
      expect(toA(p3, ['rst']).retval).toBe(7);
      expect(held(p3)).toEqual([0, 2]);
      expect(fromA(5103, ['ack']).retval).toBe(7);
    } finally {
      for (const t of tables) t.close();
    }
  });

  it('assures flows only after a handshake, refuses new flows once the assured table is full, keeps established ones', async () => {
    const pinRoot = join(lab.pinDir(), 'small');
    mkdirSync(pinRoot, { recursive: true });
    const small = ['lxc', 'uplink'].map((n) => BpfObject.load(bpfObject(n), { pinRoot, maxEntries: { ct4: 4, ct4_new: 512 } }));
    try {
      // Same configuration and topology as the main maps.
      const copy = <K, V>(name: string, kc: any, vc: any) => {
        const from = objects[0].map<K, V>(name, kc, vc);
        const to = small[0].map<K, V>(name, kc, vc);
        for (const [k, v] of from.entries()) to.set(k, v);
      };
      copy(DatapathMaps.config, u32, dpConfig);
      copy(DatapathMaps.networks, u32, networkInfo);
      copy(DatapathMaps.endpoints, ipv4, endpointInfo);
      copy(DatapathMaps.endpointsByIfindex, u32, endpointInfo);
      copy(DatapathMaps.local, ipv4, u8);
      const smallStats = small[0].perCpuMap(DatapathMaps.stats, u32, epStats);
      smallStats.set(ifindex.vA, { tx_packets: 0, tx_bytes: 0, rx_packets: 0, rx_bytes: 0, drops: DROP_REASONS.map(() => 0) });
      const assured = small[0].map(DatapathMaps.conntrack, ctKey4, ctEntry4);
      const A = TOPO.endpoints.A;
      const out = (sport: number, flags: Array<'syn' | 'ack'>) => ({ srcMac: A.mac, dstMac: '02:42:0a:01:00:01', src: A.ip, dst: TOPO.remote, proto: 'tcp' as const, sport, dport: 80, flags });
      const fromA = small[0].program('from_container');
      const fromUp = small[1].program('from_uplink');
      const go = (spec: PacketSpec) => fromA.testRun(buildPacket(resolveMacs(spec)), { ctx: skbCtx(ifindex.vA), netns: lab.host.path });
      const reply = (port: number) =>
        fromUp.testRun(buildPacket(resolveMacs({ srcMac: REMOTE_MAC, dstMac: UPLINK_MAC, src: TOPO.remote, dst: TOPO.uplink, proto: 'tcp', sport: 80, dport: port, flags: ['syn', 'ack'] })), {
          ctx: skbCtx(ifindex.up0),
          netns: lab.host.path,
        }).retval;
      const handshake = (sport: number) => {
        const syn = go(out(sport, ['syn']));
        expect(syn.retval).toBe(7);
        expect(reply(parsePacket(syn.data).sport!)).toBe(7);
        expect(go(out(sport, ['ack'])).retval).toBe(7);
      };
      const ctFull = () => sumPerCpu((smallStats.get(ifindex.vA) ?? []).map((s) => ({ n: s.drops[DROP_REASONS.indexOf('conntrack-full')] }))).n;
      // A SYN alone assures nothing; a flood of 2,000 unanswered SYNs only evicts its own kind.
      for (let i = 0; i < 2000; i++) expect(go(out(20000 + i, ['syn'])).retval).toBe(7);
      expect(assured.keys()).toHaveLength(0);
      handshake(4001);
      handshake(4002);
      expect(assured.keys()).toHaveLength(4); // 2 flows x 2 entries fill ct4
      // The next flow completes its handshake but finds no room: it goes on unassured, and
      // from then on new flows are refused at their first packet, cleanly, and counted.
      handshake(4003);
      expect(ctFull()).toBe(0);
      expect(go(out(4004, ['syn'])).retval).toBe(TC_ACT_SHOT);
      expect(ctFull()).toBe(1);
      expect(go(out(4001, ['ack'])).retval).toBe(7); // established flows carry on
      expect(go(out(4002, ['ack'])).retval).toBe(7);
      expect(go(out(4003, ['ack'])).retval).toBe(7);
      assured.close();
    } finally {
      for (const o of small) o.close();
    }
  });
});

describe('stateless published ports (BPF_PROG_TEST_RUN)', () => {
  const B = TOPO.endpoints.B;
  const PORT = { addr: '0.0.0.0', port: 8443, proto: 6 };
  const fromB = { program: 'from_container', endpoint: 'B' } as const;
  const toB = (sport: number, flags: PacketSpec['flags'], dst: string = TOPO.uplink): PacketSpec => ({ srcMac: REMOTE_MAC, dstMac: UPLINK_MAC, src: TOPO.remote, dst, proto: 'tcp', sport, dport: 8443, flags });
  const fromTarget = (dport: number, flags: PacketSpec['flags']): PacketSpec => ({ srcMac: B.mac, dstMac: '02:42:0a:01:00:01', src: B.ip, dst: TOPO.remote, proto: 'tcp', sport: 443, dport, flags });
  const flows = () =>
    [DatapathMaps.conntrack, DatapathMaps.conntrackNew].reduce((n, name) => {
      const ct = objects[0].map(name, ctKey4, ctEntry4);
      const k = ct.keys().length;
      ct.close();
      return n + k;
    }, 0);
  const withMaps = <T>(f: (ports: ReturnType<typeof portsMap>, back: ReturnType<typeof portsMap>, cfg: ReturnType<typeof cfgMap>) => T): T => {
    const [ports, back, cfg] = [portsMap(DatapathMaps.ports), portsMap(DatapathMaps.reversePorts), cfgMap()];
    try {
      return f(ports, back, cfg);
    } finally {
      for (const m of [ports, back, cfg]) m.close();
    }
  };
  const portsMap = (name: string) => objects[0].map(name, portKey, portTarget);
  const cfgMap = () => objects[0].map(DatapathMaps.config, u32, dpConfig);

  beforeAll(() => {
    withMaps((ports) => ports.set(PORT, { addr: B.ip, port: 443, flags: PortFlags.STATELESS }));
    // 8443 among the published TCP port numbers: the uplink looks for a stateless port before
    // the connection table (while the flow log is on, after it: both ways are run below).
    const bits = Buffer.alloc(8192);
    bits[8443 >> 3] |= 1 << (8443 & 7);
    const tcpPorts = objects[0].map(DatapathMaps.tcpPorts, u32, portBitmap);
    tcpPorts.set(0, bits);
    tcpPorts.close();
  });

  it('translates a connection both ways with no connection-table entry, the way back remembered at its SYN', () => {
    const before = flows();
    const syn = run({ program: 'from_uplink' }, toB(6001, ['syn']));
    expect(syn.retval).toBe(7);
    expect(parsePacket(syn.data)).toMatchObject({ src: TOPO.remote, dst: B.ip, sport: 6001, dport: 443, ttl: 63, ipChecksumOk: true, l4ChecksumOk: true });
    expect(withMaps((_, back) => back.get({ addr: B.ip, port: 443, proto: 6 }))).toEqual({ addr: '0.0.0.0', port: 8443, flags: 0 });
    for (const flags of [['syn', 'ack'], ['ack', 'psh'], ['fin', 'ack'], ['rst']] as const) {
      const r = run(fromB, fromTarget(6001, [...flags]));
      expect(r.retval, flags.join()).toBe(7);
      expect(parsePacket(r.data)).toMatchObject({ src: TOPO.uplink, dst: TOPO.remote, sport: 8443, dport: 6001, ttl: 63, ipChecksumOk: true, l4ChecksumOk: true });
    }
    expect(run({ program: 'from_uplink' }, toB(6001, ['ack'])).retval).toBe(7);
    expect(flows()).toBe(before);
  });

  it('masquerades and tracks a connection the target opens from that port (a bare SYN): it does not leave from the published port', () => {
    const before = flows();
    const out = parsePacket(run(fromB, fromTarget(9443, ['syn'])).data);
    expect(out).toMatchObject({ src: TOPO.uplink, dport: 9443, l4ChecksumOk: true });
    expect(out.sport).not.toBe(8443);
    expect(flows()).toBe(before + 2);
  });

  it('tracks connections opened while the flow log is on (those already stateless go on), and to another local address of a port on every address', () => {
    const before = flows();
    withMaps((_, __, cfg) => {
      const c = cfg.get(0)!;
      cfg.set(0, { ...c, flags: c.flags | DP_F_FLOW_EVENTS });
      try {
        expect(run({ program: 'from_uplink' }, toB(6002, ['syn'])).retval).toBe(7);
        expect(run({ program: 'from_uplink' }, toB(6001, ['ack'])).retval).toBe(7);
        expect(parsePacket(run(fromB, fromTarget(6001, ['ack'])).data)).toMatchObject({ src: TOPO.uplink, sport: 8443 });
      } finally {
        cfg.set(0, c);
      }
    });
    expect(flows()).toBe(before + 2);
    const other = run({ program: 'from_uplink' }, toB(6003, ['syn'], TOPO.bridge.gateway));
    expect(parsePacket(other.data)).toMatchObject({ dst: B.ip, dport: 443 });
    expect(flows()).toBe(before + 4);
  });

  it('looks for a port on an address of its own only while its number is among those (tcp_ports_at); else for the one on every address alone', () => {
    const AT = { addr: TOPO.bridge.gateway, port: 8443, proto: 6 };
    const at = objects[0].map(DatapathMaps.tcpPortsAt, u32, portBitmap);
    withMaps((ports) => ports.set(AT, { addr: B.ip, port: 444, flags: PortFlags.STATELESS }));
    try {
      // Bit clear: the stateless look finds only 0.0.0.0:8443, not for this address; the tracked path then finds the port on it.
      let before = flows();
      expect(parsePacket(run({ program: 'from_uplink' }, toB(6005, ['syn'], TOPO.bridge.gateway)).data)).toMatchObject({ dst: B.ip, dport: 444 });
      expect(flows()).toBe(before + 2);
      const bits = Buffer.alloc(8192);
      bits[8443 >> 3] |= 1 << (8443 & 7);
      at.set(0, bits);
      before = flows();
      expect(parsePacket(run({ program: 'from_uplink' }, toB(6006, ['syn'], TOPO.bridge.gateway)).data)).toMatchObject({ dst: B.ip, dport: 444, l4ChecksumOk: true });
      expect(flows()).toBe(before);
      expect(withMaps((_, back) => back.get({ addr: B.ip, port: 444, proto: 6 }))).toEqual({ addr: TOPO.bridge.gateway, port: 8443, flags: 0 });
      // The port on every address still answers for the uplink's own address.
      expect(parsePacket(run({ program: 'from_uplink' }, toB(6007, ['syn'])).data)).toMatchObject({ dst: B.ip, dport: 443 });
      expect(flows()).toBe(before);
    } finally {
      at.set(0, Buffer.alloc(8192));
      at.close();
      withMaps((ports, back) => {
        ports.delete(AT);
        back.delete({ addr: B.ip, port: 444, proto: 6 });
      });
    }
  });

  it('asks the connection table before the way back unless no tracked flow can send from the port (ct_port_clean later than ct_port_tracked); a flow made from it since wins again', async () => {
    const clean = objects[0].map(DatapathMaps.conntrackPortClean, u32, u64n);
    const tracked = objects[0].map(DatapathMaps.conntrackPortTracked, u32, u64n);
    try {
      // A tracked connection from 443 (through the bridge's gateway: the port on every address
      // is stateless only on the uplink's address): its replies leave from the gateway, the
      // stateless way back would make them leave from the uplink's address.
      expect(parsePacket(run({ program: 'from_uplink' }, toB(6020, ['syn'], TOPO.bridge.gateway)).data)).toMatchObject({ dst: B.ip, dport: 443 });
      const marked = tracked.get(443)!;
      expect(marked).toBeGreaterThan(0n);
      const reply = (dport: number) => parsePacket(run(fromB, fromTarget(dport, ['syn', 'ack'])).data);
      clean.set(443, marked);
      expect(reply(6020)).toMatchObject({ src: TOPO.bridge.gateway, sport: 8443, l4ChecksumOk: true });
      // A clean time after the last mark (which no scan gives while that flow lives): the way back first.
      clean.set(443, marked + 1n);
      expect(reply(6020)).toMatchObject({ src: TOPO.uplink, sport: 8443, l4ChecksumOk: true });
      // A flow from 443 made since (the programs' clock is the coarse one: a tick later) marks it again.
      await new Promise((r) => setTimeout(r, 20));
      expect(parsePacket(run({ program: 'from_uplink' }, toB(6021, ['syn'], TOPO.bridge.gateway)).data)).toMatchObject({ dst: B.ip, dport: 443 });
      expect(tracked.get(443)!).toBeGreaterThan(marked);
      expect(reply(6021)).toMatchObject({ src: TOPO.bridge.gateway, sport: 8443 });
      expect(reply(6020)).toMatchObject({ src: TOPO.bridge.gateway, sport: 8443 });
      // A connection of the sandbox's own from 443 marks it too.
      const before = tracked.get(443)!;
      await new Promise((r) => setTimeout(r, 20));
      clean.set(443, before + 1n);
      run(fromB, fromTarget(9444, ['syn']));
      expect(tracked.get(443)!).toBeGreaterThan(before);
    } finally {
      clean.set(443, 0n);
      clean.close();
      tracked.close();
    }
  });

  it('ends its connections when the port is unpublished: the target\'s segments no longer leave from it', () => {
    expect(run(fromB, fromTarget(6004, ['ack'])).retval).toBe(7);
    withMaps((ports) => ports.delete(PORT));
    try {
      const before = drops(ifindex.vB)['ct-invalid'] ?? 0;
      expect(run(fromB, fromTarget(6004, ['ack'])).retval).toBe(TC_ACT_SHOT);
      expect(drops(ifindex.vB)['ct-invalid']).toBe(before + 1);
    } finally {
      withMaps((ports) => ports.set(PORT, { addr: B.ip, port: 443, flags: PortFlags.STATELESS }));
    }
  });

  it('delivers an ICMP error about a stateless connection (fragmentation needed) to its target, the embedded packet rewritten', () => {
    // What B's reply looked like on the wire: uplink:8443 -> remote:6001, its IP header and first 8 bytes.
    const sent = buildPacket({ srcMac: UPLINK_MAC, dstMac: REMOTE_MAC, src: TOPO.uplink, dst: TOPO.remote, proto: 'tcp', sport: 8443, dport: 6001, flags: ['ack'] }).subarray(14, 14 + 28);
    const r = run({ program: 'from_uplink' }, { srcMac: REMOTE_MAC, dstMac: UPLINK_MAC, src: '198.18.0.254', dst: TOPO.uplink, proto: 'icmp', icmpType: 3, icmpId: 1400, payload: sent });
    expect(r.retval).toBe(7);
    const out = parsePacket(r.data);
    expect(out).toMatchObject({ src: '198.18.0.254', dst: B.ip, icmpType: 3, ipChecksumOk: true, l4ChecksumOk: true });
    const inner = r.data.subarray(14 + 20 + 8);
    expect([...inner.subarray(12, 16)].join('.')).toBe(B.ip);
    expect([...inner.subarray(16, 20)].join('.')).toBe(TOPO.remote);
    expect([inner.readUInt16BE(20), inner.readUInt16BE(22)]).toEqual([443, 6001]);
  });
});

describe('stateless published ports over IPv6 (BPF_PROG_TEST_RUN)', () => {
  const B = TOPO.endpoints.B;
  const B6 = 'fd00:1::3';
  const ROUTER6 = 'fd00:18::fe';
  let uplinkMac: string;
  let externalMac: string;
  const test6 = (program: 'from_uplink' | 'from_container', frame: Buffer) =>
    programs[program].testRun(frame, { ctx: skbCtx(program === 'from_uplink' ? ifindex.up0 : ifindex.vB), netns: lab.host.path });
  const fromOutside = (sport: number, flags: PacketSpec['flags']) =>
    buildPacket6({ srcMac: externalMac, dstMac: uplinkMac, src: UPLINK6.external, dst: UPLINK6.host, proto: 'tcp', sport, dport: 8443, flags });
  const fromTarget = (dport: number, flags: PacketSpec['flags']) => buildPacket6({ srcMac: B.mac, dstMac: macs.bridge, src: B6, dst: UPLINK6.external, proto: 'tcp', sport: 443, dport, flags });

  beforeAll(async () => {
    await addUplink6(lab);
    await ip(lab.host, ['-6', 'addr', 'add', 'fd00:1::1/64', 'dev', NETS.bridge, 'nodad']);
    // Forwarding on (the FIB lookup of routed replies asks for it) and the external side's neighbour entry known.
    await lab.exec(lab.host, 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
    await lab.exec(lab.host, 'ping', ['-6', '-c', '1', '-W', '1', UPLINK6.external]);
    uplinkMac = macs.uplink;
    externalMac = macs.remote;
    const lxc = objects[0];
    const maps = [
      lxc.map(DatapathMaps6.config, u32, dpConfig6),
      lxc.map(DatapathMaps6.networks, u32, networkInfo6),
      lxc.map(DatapathMaps6.endpoints, ipv6, endpointInfo),
      lxc.map(DatapathMaps.endpointsByIfindex, u32, endpointInfo),
      lxc.map(DatapathMaps6.local, ipv6, u8),
      lxc.map(DatapathMaps6.ports, portKey6, portTarget6),
    ] as const;
    const [cfg6, net6, ep6, epIfx, local6, ports6] = maps;
    try {
      cfg6.set(0, { uplink_addr: UPLINK6.host, flags: DP6_F_CONFIGURED });
      net6.set(ifindex[NETS.bridge], { subnet: 'fd00:1::', mask: 'ffff:ffff:ffff:ffff::', gateway: 'fd00:1::1', bridge_mac: macs.bridge, flags: FLAGS.bridge });
      const info = { ...epIfx.get(ifindex.vB)!, flags: EpFlags.IPV6, addr6: B6 };
      epIfx.set(ifindex.vB, info);
      ep6.set(B6, info);
      local6.set(UPLINK6.host, 1);
      ports6.set({ addr: '::', port: 8443, proto: 6 }, { addr: B6, port: 443, flags: PortFlags.STATELESS });
    } finally {
      for (const m of maps) m.close();
    }
  });

  it('translates a connection both ways with no ct6 entry, the way back remembered at its SYN', () => {
    const ct6 = () => {
      const tables = [DatapathMaps6.conntrack, DatapathMaps6.conntrackNew].map((name) => objects[0].map(name, ctKey6, ctEntry6));
      const n = tables.reduce((sum, t) => sum + t.keys().length, 0);
      for (const t of tables) t.close();
      return n;
    };
    const before = ct6();
    const syn = test6('from_uplink', fromOutside(6001, ['syn']));
    expect(syn.retval).toBe(7);
    expect(parsePacket6(syn.data)).toMatchObject({ src: UPLINK6.external, dst: B6, sport: 6001, dport: 443, hopLimit: 254, l4ChecksumOk: true });
    const back = objects[0].map(DatapathMaps6.reversePorts, portKey6, portTarget6);
    expect(back.get({ addr: B6, port: 443, proto: 6 })).toEqual({ addr: '::', port: 8443, flags: 0 });
    back.close();
    for (const flags of [['syn', 'ack'], ['ack', 'psh'], ['fin', 'ack']] as const) {
      const was = drops(ifindex.vB);
      const r = test6('from_container', fromTarget(6001, [...flags]));
      expect(r.retval, `${flags.join()}: ${JSON.stringify(drops(ifindex.vB))} was ${JSON.stringify(was)}`).toBe(7);
      expect(parsePacket6(r.data)).toMatchObject({ src: UPLINK6.host, dst: UPLINK6.external, sport: 8443, dport: 6001, hopLimit: 254, l4ChecksumOk: true });
    }
    expect(ct6()).toBe(before);
  });

  it('asks ct6 before the way back unless no tracked flow can send from the port (ct_port_clean later than ct_port_tracked)', () => {
    const clean = objects[0].map(DatapathMaps.conntrackPortClean, u32, u64n);
    const tracked = objects[0].map(DatapathMaps.conntrackPortTracked, u32, u64n);
    try {
      expect(test6('from_uplink', fromOutside(6030, ['syn'])).retval).toBe(7); // the way back: 8443
      // The target's own connection from 443 (a bare SYN): masqueraded and tracked, from another port.
      const out = parsePacket6(test6('from_container', fromTarget(9443, ['syn'])).data);
      expect(out.sport).not.toBe(8443);
      const marked = tracked.get(443)!;
      expect(marked).toBeGreaterThan(0n);
      clean.set(443, marked);
      expect(parsePacket6(test6('from_container', fromTarget(9443, ['ack'])).data)).toMatchObject({ sport: out.sport, l4ChecksumOk: true });
      // A clean time after the mark (which no scan gives while that flow lives): the way back first.
      clean.set(443, marked + 1n);
      expect(parsePacket6(test6('from_container', fromTarget(9443, ['ack'])).data)).toMatchObject({ sport: 8443, l4ChecksumOk: true });
    } finally {
      clean.set(443, 0n);
      clean.close();
      tracked.close();
    }
  });

  it('delivers a packet too big about a stateless connection to its target, the embedded packet rewritten', () => {
    const sent = buildPacket6({ srcMac: uplinkMac, dstMac: externalMac, src: UPLINK6.host, dst: UPLINK6.external, proto: 'tcp', sport: 8443, dport: 6001, flags: ['ack'] }).subarray(14, 14 + 48);
    const r = test6('from_uplink', buildPacket6({ srcMac: externalMac, dstMac: uplinkMac, src: ROUTER6, dst: UPLINK6.host, proto: 'icmp6', icmpType: 2, mtu: 1280, payload: sent }));
    expect(r.retval).toBe(7);
    expect(parsePacket6(r.data)).toMatchObject({ src: ROUTER6, dst: B6, icmpType: 2, l4ChecksumOk: true });
    const inner = r.data.subarray(14 + 40 + 8);
    expect([formatIp6(inner.subarray(8, 24)), formatIp6(inner.subarray(24, 40))]).toEqual([B6, UPLINK6.external]);
    expect([inner.readUInt16BE(40), inner.readUInt16BE(42)]).toEqual([443, 6001]);
  });
});
