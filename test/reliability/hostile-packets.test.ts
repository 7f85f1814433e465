// Hostile packets against a live daemon on the ebpf datapath, as an attacker on the uplink and
// as a sandbox would send them: raw Ethernet frames (crafted byte by byte, sent from an
// AF_PACKET socket) with loopback and martian addresses, forged sources, VLAN tags, IPv6 and
// fragments, and a flood of spoofed datagrams that tries to fill the connection table. Each is
// dropped and counted by its exact reason, and a legitimate flow works during and after.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { addUplink6, Lab, UPLINK, UPLINK6 } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { bridgeName, hostIfname } from '../../src/networks/config.js';
import { linkPrefixFor } from '../../src/daemon/options.js';
import { BpfMap, PerCpuMap, interfaceIndex } from '../../src/datapath/libbpf/bpf.js';
import { DROP_REASONS, ctEntry4, ctKey4, epStats } from '../../src/datapath/abi.js';
import { ipv4, ipv6, u32, u64n } from '../../src/datapath/libbpf/codec.js';
import { ip, link } from '../../src/system/ip.js';
import { readSysctl } from '../../src/system/sysctl.js';
import { projectRoot } from '../../src/paths.js';
import { buildPacket, type PacketSpec } from '../fixtures/packets.js';
import { ECHO_SERVER, echoServer, holdFlows, holdServer, peerIp, probe, sandboxIp, sandboxNs, waitPort } from '../support/traffic.js';

const STREAM = join(projectRoot, 'test', 'support', 'stream.mjs');
const HOST6 = UPLINK6.host;
const EXT6 = UPLINK6.external;

// The raw sender: sends the frames given in hex on IFACE, or a flood of COUNT UDP datagrams from
// random sources (valid IPv4 checksums), while capturing for SECONDS; prints how many TCP SYN-ACKs
// to WATCH_PORT it saw. Python because Node has no AF_PACKET.
const RAW = String.raw`
import socket, struct, sys, time, random, json, os
iface, watch, seconds, mode = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
cap.bind((iface, 0))
cap.setblocking(False)
tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
tx.bind((iface, 0))
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
sent = 0
if mode == 'frames':
    for h in sys.argv[5:]:
        tx.send(bytes.fromhex(h)); sent += 1
else:
    dst_mac, src_mac, dst, dport, count = bytes.fromhex(sys.argv[5]), bytes.fromhex(sys.argv[6]), socket.inet_aton(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
    # 'flood': random sources; 'flood-from SRC': one source (a sandbox's own), random destination ports.
    fixed = socket.inet_aton(sys.argv[10]) if mode == 'flood-from' else None
    eth = dst_mac + src_mac + b'\x08\x00'
    rnd = random.Random(7)
    for i in range(count):
        src = fixed or bytes([rnd.randint(11, 99), rnd.randint(0, 255), rnd.randint(0, 255), rnd.randint(1, 254)])
        udp = struct.pack('!HHHH', rnd.randint(1024, 65535), rnd.randint(1024, 65535) if fixed else dport, 9, 0) + b'x'
        ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), i & 0xffff, 0, 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
        try:
            tx.send(eth + ip + udp); sent += 1
        except BlockingIOError:
            pass
synack = 0
end = time.time() + seconds
while time.time() < end:
    try:
        f = cap.recv(65535)
    except BlockingIOError:
        time.sleep(0.01); continue
    if len(f) < 54 or f[12:14] != b'\x08\x00' or f[23] != 6: continue
    l4 = 14 + (f[14] & 15) * 4
    if struct.unpack('!H', f[l4 + 2:l4 + 4])[0] == watch and (f[l4 + 13] & 0x12) == 0x12: synack += 1
print(json.dumps({'sent': sent, 'synack': synack}))
`;

interface RawResult {
  sent: number;
  synack: number;
}

const hex = (b: Buffer) => b.toString('hex');

describe('hostile packets (ebpf datapath)', () => {
  let lab: Lab;
  let d: LabDaemon;
  let uplinkMac: string;
  let externalMac: string;
  let webIp: string;
  let attackerIp: string;
  let attackerMac: string;
  let gatewayMac: string;

  /** Sends frames (or a flood) from ns on iface; returns what the capture saw. */
  async function raw(ns: Parameters<Lab['exec']>[0], iface: string, watch: number, seconds: number, args: string[]): Promise<RawResult> {
    const out = await lab.exec(ns, 'python3', ['-c', RAW, iface, String(watch), String(seconds), ...args], { timeoutMs: 120_000 });
    return JSON.parse(out.trim().split('\n').pop()!);
  }

  /** Drops by reason at a stats slot (0: the uplink; a host veth's ifindex: that sandbox). */
  function drops(slot: number): Record<string, number> {
    const map = PerCpuMap.openPinned(`/sys/fs/bpf/${d.instance}/stats4`, u32, epStats);
    try {
      const per = map.get(slot) ?? [];
      return Object.fromEntries(DROP_REASONS.map((name, i) => [name, per.reduce((s, v) => s + v.drops[i], 0)]));
    } finally {
      map.close();
    }
  }

  async function sandboxSlot(name: string, network: string): Promise<number> {
    const epId: string = JSON.parse(await d.bpfnet('inspect', name))[0].NetworkSettings.Networks[network].EndpointID;
    return interfaceIndex(lab.host.path, hostIfname({ linkPrefix: linkPrefixFor(d.instance) } as never, epId));
  }

  /** Runs fn and returns how each drop counter at slot moved (only those that moved). */
  async function moved(slot: number, fn: () => Promise<unknown>): Promise<Record<string, number>> {
    const before = drops(slot);
    await fn();
    await new Promise((r) => setTimeout(r, 100));
    const after = drops(slot);
    return Object.fromEntries(Object.entries(after).filter(([k, v]) => v !== before[k]).map(([k, v]) => [k, v - before[k]]));
  }

  const fromOutside = (spec: Omit<PacketSpec, 'srcMac' | 'dstMac'>) => buildPacket({ srcMac: externalMac, dstMac: uplinkMac, ...spec });

  beforeAll(async () => {
    lab = await Lab.create();
    d = await LabDaemon.start(lab, { datapath: 'ebpf' });
    await d.bpfnet('network', 'create', '--subnet', '10.60.0.0/24', 'front');
    await d.bpfnet('run', '-d', '--name', 'web', '--network', 'front', '-p', '8080:80', '-p', '127.0.0.1:8081:81', '--', process.execPath, ECHO_SERVER, 'tcp', '80,81');
    await d.bpfnet('run', '-d', '--name', 'dns', '--network', 'front', '-p', '5353:53/udp', '--', process.execPath, ECHO_SERVER, 'udp', '53');
    await d.bpfnet('run', '-d', '--name', 'attacker', '--network', 'front');
    await echoServer(lab, lab.external, 'tcp', 7000);
    uplinkMac = (await link(lab.host, UPLINK.hostIf))!.address!;
    externalMac = (await link(lab.external, UPLINK.externalIf))!.address!;
    webIp = await sandboxIp(d, 'web', 'front');
    attackerIp = await sandboxIp(d, 'attacker', 'front');
    const attackerNs = await sandboxNs(d, 'attacker');
    attackerMac = (await link(attackerNs, 'eth0'))!.address!;
    // The network's bridge (host veths are no ports of it on the eBPF datapath).
    gatewayMac = (await link(lab.host, bridgeName({ linkPrefix: linkPrefixFor(d.instance) }, JSON.parse(await d.bpfnet('network', 'inspect', 'front'))[0].Id)))!.address!;
    await waitPort(lab, await sandboxNs(d, 'web'), '127.0.0.1', 80);
    // The host's own processes reach the loopback-bound port: the baseline the attacks must not match.
    expect(peerIp(await probe(lab, lab.host, 'tcp', '127.0.0.1', 8081))).not.toBeNull();
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('a SYN to 127.0.0.1:PORT sent to the uplink MAC gets no SYN-ACK and is counted as a martian destination', async () => {
    let r: RawResult | undefined;
    const delta = await moved(0, async () => {
      r = await raw(lab.external, UPLINK.externalIf, 41001, 1.5, ['frames', hex(fromOutside({ src: UPLINK.externalAddress, dst: '127.0.0.1', proto: 'tcp', sport: 41001, dport: 8081, flags: ['syn'] }))]);
    });
    expect(r).toEqual({ sent: 1, synack: 0 });
    expect(delta).toEqual({ 'martian-destination': 1 });
    // The same frame to the uplink's address and the public port does get its SYN-ACK (the harness can see one).
    const ok = await raw(lab.external, UPLINK.externalIf, 41002, 1.5, ['frames', hex(fromOutside({ src: UPLINK.externalAddress, dst: UPLINK.hostAddress, proto: 'tcp', sport: 41002, dport: 8080, flags: ['syn'] }))]);
    expect(ok).toEqual({ sent: 1, synack: 1 });
  });

  it('the loopback-bound port is not reachable from outside through the uplink address either', async () => {
    expect(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8081, 800)).toBeNull();
    expect(peerIp(await probe(lab, lab.host, 'tcp', '127.0.0.1', 8081))).toBe('10.60.0.1');
  });

  it('martian sources from outside (loopback, the host itself) are dropped and counted', async () => {
    const delta = await moved(0, () =>
      raw(lab.external, UPLINK.externalIf, 41003, 0.5, [
        'frames',
        hex(fromOutside({ src: '127.0.0.1', dst: UPLINK.hostAddress, proto: 'tcp', sport: 41003, dport: 8080, flags: ['syn'] })),
        hex(fromOutside({ src: UPLINK.hostAddress, dst: UPLINK.hostAddress, proto: 'udp', sport: 41003, dport: 5353 })),
        hex(fromOutside({ src: '0.0.0.7', dst: UPLINK.hostAddress, proto: 'udp', sport: 41003, dport: 5353 })),
      ]),
    );
    expect(delta).toEqual({ 'martian-source': 3 });
  });

  it("a SYN straight to a sandbox's address from outside is unsolicited; a TCP ACK that starts nothing creates nothing", async () => {
    await ip(lab.external, ['route', 'replace', '10.60.0.0/24', 'via', UPLINK.hostAddress]);
    const delta = await moved(0, () =>
      raw(lab.external, UPLINK.externalIf, 41004, 1, [
        'frames',
        hex(fromOutside({ src: UPLINK.externalAddress, dst: webIp, proto: 'tcp', sport: 41004, dport: 80, flags: ['syn'] })),
        hex(fromOutside({ src: UPLINK.externalAddress, dst: UPLINK.hostAddress, proto: 'tcp', sport: 41004, dport: 8080, flags: ['ack'] })),
      ]),
    );
    // 8080 is the only way to web:80, so it is stateless (bpf/lib/stateless.h): the ACK goes to
    // web, whose stack resets it, as any stray segment to a listening port (and as Docker's
    // loose conntrack lets it through). A tracked port drops it as ct-invalid (the fixtures).
    expect(delta).toEqual({ unsolicited: 1 });
    const tables = ['ct4', 'ct4_new'].map((name) => BpfMap.openPinned(`/sys/fs/bpf/${d.instance}/${name}`, ctKey4, ctEntry4));
    try {
      expect(tables.flatMap((t) => t.keys()).filter((k) => k.sport === 41004 || k.dport === 41004)).toEqual([]);
    } finally {
      for (const t of tables) t.close();
    }
  });

  it('the first fragment of a datagram for a published port is dropped and counted', async () => {
    const delta = await moved(0, () =>
      raw(lab.external, UPLINK.externalIf, 41005, 0.5, [
        'frames',
        hex(fromOutside({ src: UPLINK.externalAddress, dst: UPLINK.hostAddress, proto: 'udp', sport: 41005, dport: 5353, fragment: { offset: 0, more: true }, payload: Buffer.alloc(64, 1) })),
      ]),
    );
    expect(delta).toEqual({ fragment: 1 });
  });

  it('from a sandbox: a forged source, a VID-0 tagged frame with a forged source, IPv6, an unknown ethertype and 127.0.0.1 are each dropped and counted', async () => {
    const ns = await sandboxNs(d, 'attacker');
    const slot = await sandboxSlot('attacker', 'front');
    // The target records every datagram's source: none of the forged ones may arrive.
    const dnsNs = await sandboxNs(d, 'dns');
    const recorder = lab.spawn(dnsNs, process.execPath, ['-e', "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>console.log(r.address));s.bind(5999,()=>console.log('ready'))"]);
    let heard = '';
    recorder.stdout?.on('data', (x: Buffer) => (heard += x.toString()));
    for (let i = 0; i < 100 && !heard.includes('ready'); i++) await new Promise((r) => setTimeout(r, 20));
    const dnsIp = await sandboxIp(d, 'dns', 'front');
    const dnsMac = (await link(dnsNs, 'eth0'))!.address!;
    const forged = { srcMac: attackerMac, dstMac: dnsMac, src: '10.60.0.200', dst: dnsIp, proto: 'udp' as const, sport: 4000, dport: 5999 };
    const delta = await moved(slot, () =>
      raw(ns, 'eth0', 0, 0.5, [
        'frames',
        hex(buildPacket(forged)),
        hex(buildPacket({ ...forged, vlan: 0 })),
        hex(buildPacket({ ...forged, src: attackerIp, ethertype: 0x86dd })),
        hex(buildPacket({ ...forged, src: attackerIp, ethertype: 0x88b5 })),
        hex(buildPacket({ srcMac: attackerMac, dstMac: gatewayMac, src: attackerIp, dst: '127.0.0.1', proto: 'tcp', sport: 4001, dport: 8081, flags: ['syn'] })),
      ]),
    );
    expect(delta).toEqual({ 'spoofed-source-ip': 1, 'vlan-tagged': 1, ipv6: 1, 'unknown-ethertype': 1, 'martian-destination': 1 });
    // A legitimate datagram from the attacker's own address does arrive, and only it.
    await lab.exec(ns, process.execPath, ['-e', `const s=require('dgram').createSocket('udp4');s.send('x',5999,'${dnsIp}',()=>s.close())`]);
    for (let i = 0; i < 50 && !heard.includes(attackerIp); i++) await new Promise((r) => setTimeout(r, 20));
    expect(heard.split('\n').filter((l) => /^\d/.test(l))).toEqual([attackerIp]);
    recorder.kill();
  });

  it('IPv6 is disabled inside every sandbox namespace, and only there', async () => {
    expect(await readSysctl({ netnsPath: (await sandboxNs(d, 'attacker')).path }, 'net.ipv6.conf.all.disable_ipv6')).toBe('1');
    expect(await readSysctl({ netnsPath: (await sandboxNs(d, 'web')).path }, 'net.ipv6.conf.default.disable_ipv6')).toBe('1');
    expect(await readSysctl({ netnsPath: lab.host.path }, 'net.ipv6.conf.all.disable_ipv6')).toBe('0');
  });

  it('150,000 spoofed datagrams to a published UDP port fill nothing: established and new flows work during and after', async () => {
    const sink = await d.bpfnet('run', '-d', '--name', 'sink', '--network', 'front', '-p', '7700:7700', '--', process.execPath, STREAM, 'serve', '7700');
    expect(sink).toBeTruthy();
    await waitPort(lab, await sandboxNs(d, 'sink'), '127.0.0.1', 7700);
    // An established transfer across the whole flood.
    const client = lab.spawn(lab.external, process.execPath, [STREAM, 'send', UPLINK.hostAddress, '7700', '8']);
    let out = '';
    client.stdout?.on('data', (x: Buffer) => (out += x.toString()));
    client.stderr?.on('data', (x: Buffer) => (out += x.toString()));
    const transfer = new Promise<number>((resolve) => client.once('exit', (code) => resolve(code ?? -1)));
    await new Promise((r) => setTimeout(r, 500));
    const assured = BpfMap.openPinned(`/sys/fs/bpf/${d.instance}/ct4`, ctKey4, ctEntry4);
    const fresh = BpfMap.openPinned(`/sys/fs/bpf/${d.instance}/ct4_new`, ctKey4, ctEntry4);
    try {
      const flood = raw(lab.external, UPLINK.externalIf, 0, 0, ['flood', uplinkMac.replace(/:/g, ''), externalMac.replace(/:/g, ''), UPLINK.hostAddress, '5353', '150000']);
      // New legitimate flows during the flood: TCP from outside, UDP to the flooded port, and a sandbox going out.
      const during: Array<string | null> = [];
      let flooding = true;
      void flood.finally(() => (flooding = false));
      while (flooding || during.length < 3) {
        during.push(peerIp(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8080, 3000)));
        during.push(peerIp(await probe(lab, await sandboxNs(d, 'attacker'), 'tcp', UPLINK.externalAddress, 7000, 3000)));
      }
      const r = await flood;
      expect(r.sent).toBeGreaterThan(140_000);
      expect(during.filter((x) => x === null)).toEqual([]);
      // The flood lives in the LRU of unassured flows; the assured table holds a handful.
      expect(fresh.keys().length).toBeGreaterThan(10_000);
      expect(assured.keys().length).toBeLessThan(64);
      // After: new flows of every kind still work, and the transfer was never disturbed.
      expect(peerIp(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8080))).toBe(UPLINK.externalAddress);
      expect(peerIp(await probe(lab, lab.external, 'udp', UPLINK.hostAddress, 5353))).toBe(UPLINK.externalAddress);
      expect(peerIp(await probe(lab, await sandboxNs(d, 'attacker'), 'tcp', UPLINK.externalAddress, 7000))).toBe(UPLINK.hostAddress);
      expect(await transfer).toBe(0);
      const result = JSON.parse(out.trim().split('\n').pop()!);
      expect(result.received).toBe(result.sent);
    } finally {
      assured.close();
      fresh.close();
    }
  });

  it('a sandbox opening 100,000 unanswered flows fills nothing either: other sandboxes and the outside keep making new flows', async () => {
    const ns = await sandboxNs(d, 'attacker');
    const assured = BpfMap.openPinned(`/sys/fs/bpf/${d.instance}/ct4`, ctKey4, ctEntry4);
    try {
      const before = assured.keys().length;
      const r = await raw(ns, 'eth0', 0, 0, ['flood-from', gatewayMac.replace(/:/g, ''), attackerMac.replace(/:/g, ''), UPLINK.externalAddress, '0', '100000', attackerIp]);
      expect(r.sent).toBeGreaterThan(95_000);
      expect(assured.keys().length).toBeLessThanOrEqual(before + 8);
      expect(peerIp(await probe(lab, await sandboxNs(d, 'dns'), 'tcp', UPLINK.externalAddress, 7000))).toBe(UPLINK.hostAddress);
      expect(peerIp(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8080))).toBe(UPLINK.externalAddress);
      // And the flooding sandbox itself can still open a real flow.
      expect(peerIp(await probe(lab, ns, 'tcp', UPLINK.externalAddress, 7000))).toBe(UPLINK.hostAddress);
    } finally {
      assured.close();
    }
  });

  it('published ports follow the host: an address added later answers, a removed one stops', async () => {
    await ip(lab.host, ['addr', 'add', '198.18.0.10/24', 'dev', UPLINK.hostIf]);
    let answer: string | null = null;
    for (let i = 0; i < 20 && answer === null; i++) answer = await probe(lab, lab.external, 'tcp', '198.18.0.10', 8080, 500);
    expect(peerIp(answer)).toBe(UPLINK.externalAddress);
    await ip(lab.host, ['addr', 'del', '198.18.0.10/24', 'dev', UPLINK.hostIf]);
    // Gone from the host: the published port must not answer there (the host has no such address, so nothing may).
    await ip(lab.external, ['neigh', 'replace', '198.18.0.10', 'lladdr', uplinkMac, 'dev', UPLINK.externalIf]);
    let still: string | null = 'x';
    for (let i = 0; i < 20 && still !== null; i++) {
      still = await probe(lab, lab.external, 'tcp', '198.18.0.10', 8080, 500);
      if (still !== null) await new Promise((r) => setTimeout(r, 250));
    }
    expect(still).toBeNull();
  });
});

describe('the connection table at its limits (ebpf datapath, --ebpf-ct-max 16: 8 flows, at most 4 per sandbox)', () => {
  let lab: Lab;
  let d: LabDaemon;
  const pins = () => `/sys/fs/bpf/${d.instance}`;

  /** Drops by reason at a stats slot, summed over CPUs. */
  function dropsAt(slot: number, reason: (typeof DROP_REASONS)[number]): number {
    const map = PerCpuMap.openPinned(`${pins()}/stats4`, u32, epStats);
    try {
      return (map.get(slot) ?? []).reduce((s, v) => s + v.drops[DROP_REASONS.indexOf(reason)], 0);
    } finally {
      map.close();
    }
  }

  beforeAll(async () => {
    lab = await Lab.create();
    // IPv6 on the uplink before the daemon starts (it reads NAT66's source then): ct6 has the same quota.
    await addUplink6(lab);
    // Closed flows stay in ct4 for the whole file (no GC takes them back between the cases).
    d = await LabDaemon.start(lab, { datapath: 'ebpf', extraArgs: ['--ebpf-ct-max', '16', '--ebpf-timeouts', 'tcp-closed=300,tcp-fin=300'] });
    await d.bpfnet('network', 'create', '--subnet', '10.61.0.0/24', 'tight');
    await d.bpfnet('network', 'create', '--ipv6', '--ipv4=false', '--subnet', 'fd61::/64', 'tight6');
    // Seven sandboxes and a server at once: the CLI processes start in parallel (the daemon serializes).
    // The sinks and web each publish their port twice, so that their connections are tracked
    // (a port that is the only way to its target is stateless and takes no entry: bpf/lib/stateless.h);
    // free's is stateless.
    await Promise.all([
      ...[7700, 7701, 7702].map((port, i) =>
        d.bpfnet('run', '-d', '--name', `sink${i}`, '--network', 'tight', '-p', `${port}:${port}`, '-p', `${port + 100}:${port}`, '--', process.execPath, STREAM, 'serve', String(port)),
      ),
      d.bpfnet('run', '-d', '--name', 'web', '--network', 'tight', '-p', '8080:80', '-p', '8088:80', '--', process.execPath, ECHO_SERVER, 'tcp', '80'),
      d.bpfnet('run', '-d', '--name', 'free', '--network', 'tight', '-p', '9090:80', '--', process.execPath, ECHO_SERVER, 'tcp', '80'),
      d.bpfnet('run', '-d', '--name', 'greedy', '--network', 'tight'),
      d.bpfnet('run', '-d', '--name', 'other', '--network', 'tight'),
      d.bpfnet('run', '-d', '--name', 'greedy6', '--network', 'tight6'),
      d.bpfnet('run', '-d', '--name', 'other6', '--network', 'tight6'),
      echoServer(lab, lab.external, 'tcp', 7000),
      echoServer(lab, lab.external, 'tcp', 7001, '::'),
      holdServer(lab, lab.external, 7010),
    ]);
    await Promise.all([
      ...[7700, 7701, 7702].map(async (port, i) => waitPort(lab, await sandboxNs(d, `sink${i}`), '127.0.0.1', port)),
      ...['web', 'free'].map(async (name) => waitPort(lab, await sandboxNs(d, name), '127.0.0.1', 80)),
    ]);
  }, 240_000);

  afterAll(async () => {
    await lab?.destroy();
  });

  it("one sandbox holding many real flows fills only its quota: its next flows are refused and counted, everyone else's still start; closed flows give their charge back", async () => {
    const inspected = JSON.parse(await d.bpfnet('inspect', 'greedy', 'other', 'web')) as Array<{ NetworkSettings: { SandboxKey: string; Networks: { tight: { IPAddress: string; EndpointID: string } } } }>;
    const [greedy, other] = inspected.map((x) => ({ ...x.NetworkSettings.Networks.tight, ns: { name: 'sandbox', path: x.NetworkSettings.SandboxKey } }));
    const slot = interfaceIndex(lab.host.path, hostIfname({ linkPrefix: linkPrefixFor(d.instance) } as never, greedy.EndpointID));
    const quotaBefore = dropsAt(slot, 'conntrack-quota');
    const owners = BpfMap.openPinned(`${pins()}/ct_owner4`, ipv4, u32);
    const assured = BpfMap.openPinned(`${pins()}/ct4`, ctKey4, ctEntry4);
    const full = BpfMap.openPinned(`${pins()}/ct_full4`, u32, u64n);
    // Without the quota the first eight would fill ct4, the ninth would set off the global refusal
    // and the tenth, the other sandbox's and the outside's flows below would be refused.
    const held = await holdFlows(lab, greedy.ns, UPLINK.externalAddress, 7010, 10);
    try {
      expect(held.flows).toEqual(['ok', 'ok', 'ok', 'ok', 'refused', 'refused', 'refused', 'refused', 'refused', 'refused']);
      expect(dropsAt(slot, 'conntrack-quota') - quotaBefore).toBeGreaterThanOrEqual(6);
      expect(owners.get(greedy.IPAddress)).toBe(4);
      expect(assured.keys()).toHaveLength(8);
      // Another sandbox goes out, and the outside reaches a published port: new flows, assured.
      expect(await probe(lab, other.ns, 'tcp', UPLINK.externalAddress, 7000)).toMatch(/^198\.18\.0\.1:\d+\n?$/);
      expect(peerIp(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8080))).toBe(UPLINK.externalAddress);
      expect(full.get(0)).toBe(0n);
      expect(dropsAt(0, 'conntrack-full') + dropsAt(slot, 'conntrack-full')).toBe(0);
      // Closed, the held flows leave ct4 (for the evictable table) with their charge at once:
      // no waiting for their closed timeout (300 s here) or the next GC.
      await held.close();
      for (let i = 0; i < 50 && (owners.get(greedy.IPAddress) ?? 0) > 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(owners.get(greedy.IPAddress) ?? 0).toBe(0);
      const again = await holdFlows(lab, greedy.ns, UPLINK.externalAddress, 7010, 2);
      expect(again.flows).toEqual(['ok', 'ok']);
      await again.close();
    } finally {
      await held.close();
      owners.close();
      assured.close();
      full.close();
    }
  }, 180_000);

  it('the same quota holds on ct6: a sandbox holding many IPv6 flows gets its four, another IPv6 sandbox still goes out, closing gives them back', async () => {
    const inspected = JSON.parse(await d.bpfnet('inspect', 'greedy6', 'other6')) as Array<{ NetworkSettings: { SandboxKey: string; Networks: { tight6: { GlobalIPv6Address: string; EndpointID: string } } } }>;
    const [greedy, other] = inspected.map((x) => ({ ...x.NetworkSettings.Networks.tight6, ns: { name: 'sandbox', path: x.NetworkSettings.SandboxKey } }));
    const slot = interfaceIndex(lab.host.path, hostIfname({ linkPrefix: linkPrefixFor(d.instance) } as never, greedy.EndpointID));
    const quotaBefore = dropsAt(slot, 'conntrack-quota');
    const held = await holdFlows(lab, greedy.ns, EXT6, 7010, 10);
    const owners = BpfMap.openPinned(`${pins()}/ct_owner6`, ipv6, u32);
    const full = BpfMap.openPinned(`${pins()}/ct_full6`, u32, u64n);
    try {
      expect(held.flows).toEqual(['ok', 'ok', 'ok', 'ok', 'refused', 'refused', 'refused', 'refused', 'refused', 'refused']);
      expect(dropsAt(slot, 'conntrack-quota') - quotaBefore).toBeGreaterThanOrEqual(6);
      expect(owners.get(greedy.GlobalIPv6Address)).toBe(4);
      expect(peerIp(await probe(lab, other.ns, 'tcp', EXT6, 7001))).toBe(HOST6);
      expect(full.get(0)).toBe(0n);
      await held.close();
      for (let i = 0; i < 50 && (owners.get(greedy.GlobalIPv6Address) ?? 0) > 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(owners.get(greedy.GlobalIPv6Address) ?? 0).toBe(0);
    } finally {
      await held.close();
      owners.close();
      full.close();
    }
  }, 180_000);

  it('full from several sandboxes: refuses new flows cleanly and counts them, while the established ones finish intact', async () => {
    // Long transfers spread over three sandboxes (none near its quota) fill what is left of
    // ct4's 16 entries, plus one: that last
    // flow finds no room and goes on unassured, and from then on new flows are refused. One
    // more transfer than that would be refused itself and never finish.
    const assured = BpfMap.openPinned(`${pins()}/ct4`, ctKey4, ctEntry4);
    const n = (16 - assured.keys().length) / 2 + 1;
    expect(n).toBeGreaterThanOrEqual(2);
    const transfers = Array.from({ length: n }, (_, i) => {
      const c = lab.spawn(lab.external, process.execPath, [STREAM, 'send', UPLINK.hostAddress, String(7700 + (i % 3)), '10']);
      let out = '';
      c.stdout?.on('data', (x: Buffer) => (out += x.toString()));
      return new Promise<{ code: number; out: string }>((resolve) => c.once('exit', (code) => resolve({ code: code ?? -1, out })));
    });
    // Node starts the clients slowly on a shared machine: wait until ct4 is full and a flow
    // has been turned away from it.
    const full = BpfMap.openPinned(`${pins()}/ct_full4`, u32, u64n);
    for (let i = 0; i < 100 && !(assured.keys().length === 16 && full.get(0)! > 0n); i++) await new Promise((r) => setTimeout(r, 100));
    expect(assured.keys()).toHaveLength(16);
    expect(full.get(0)! > 0n).toBe(true);
    assured.close();
    full.close();
    const uplinkDrops = () => Object.fromEntries(DROP_REASONS.map((r) => [r, dropsAt(0, r)]));
    const before = uplinkDrops();
    expect(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8080, 800)).toBeNull();
    const after = uplinkDrops();
    expect(Object.fromEntries(DROP_REASONS.filter((r) => after[r] !== before[r]).map((r) => [r, after[r] > before[r]]))).toEqual({ 'conntrack-full': true });
    // A stateless published port needs no entry: it takes new connections while the table is full.
    expect(peerIp(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 9090))).toBe(UPLINK.externalAddress);
    for (const t of transfers) {
      const { code, out } = await t;
      expect(code).toBe(0);
      const result = JSON.parse(out.trim().split('\n').pop()!);
      expect(result.received).toBe(result.sent);
    }
  }, 180_000);
});

describe('hostile packets (iptables datapath): the parts that apply', () => {
  let lab: Lab;
  let d: LabDaemon;

  beforeAll(async () => {
    lab = await Lab.create();
    d = await LabDaemon.start(lab, { datapath: 'iptables' });
    await d.bpfnet('network', 'create', '--subnet', '10.62.0.0/24', 'front');
    await d.bpfnet('run', '-d', '--name', 'web', '--network', 'front', '-p', '8080:80', '-p', '127.0.0.1:8081:81', '--', process.execPath, ECHO_SERVER, 'tcp', '80,81');
    await waitPort(lab, await sandboxNs(d, 'web'), '127.0.0.1', 81);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('a SYN to 127.0.0.1:PORT sent to the uplink MAC gets no SYN-ACK; the public port does', async () => {
    const uplinkMac = (await link(lab.host, UPLINK.hostIf))!.address!;
    const externalMac = (await link(lab.external, UPLINK.externalIf))!.address!;
    const frame = (dst: string, sport: number, dport: number) =>
      buildPacket({ srcMac: externalMac, dstMac: uplinkMac, src: UPLINK.externalAddress, dst, proto: 'tcp', sport, dport, flags: ['syn'] }).toString('hex');
    const send = async (args: string[], watch: number) => JSON.parse((await lab.exec(lab.external, 'python3', ['-c', RAW, UPLINK.externalIf, String(watch), '1.5', 'frames', ...args])).trim().split('\n').pop()!);
    expect(await send([frame('127.0.0.1', 42001, 8081)], 42001)).toEqual({ sent: 1, synack: 0 });
    expect(await send([frame(UPLINK.hostAddress, 42002, 8080)], 42002)).toEqual({ sent: 1, synack: 1 });
    expect(peerIp(await probe(lab, lab.host, 'tcp', '127.0.0.1', 8081))).not.toBeNull();
  });
});
