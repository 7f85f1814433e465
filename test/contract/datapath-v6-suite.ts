// IPv6 behaviour of a datapath, driven directly (no daemon): bridges, veths and addresses built
// by hand in a lab (the bridge driver's job), the datapath given the spec's IPv6 fields, and real
// packets: same-network reach, isolation, icc=false, internal, NAT66 and routed egress seen from
// outside, published ports over IPv6 ([::], [::1], one port on every address answering on both
// families), host-local access and hairpin; on a datapath that claims it, anti-spoofing with a
// forged IPv6 source and a forged neighbour advertisement. Run by
// test/kernel/datapath-v6.{ebpf,iptables}.test.ts; one lab and one datapath per file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import type { DesiredState, DropInfo, EndpointSpec, NetworkSpec, PortSpec } from '../../src/datapath/datapath.js';
import { EbpfDatapath } from '../../src/datapath/ebpf/ebpf-datapath.js';
import { IptablesDatapath } from '../../src/datapath/iptables/iptables-datapath.js';
import { addUplink6, Lab, UPLINK, UPLINK6 } from '../../src/lab/lab.js';
import { ensureVeth, ip, link, setUp, type Netns } from '../../src/system/ip.js';
import { buildNeighbourAdvert6 } from '../fixtures/packets.js';
import { ping } from '../support/traffic.js';

// A dual-stack server: every TCP connection and UDP datagram gets "NAME PEER-ADDRESS LOCAL-PORT".
const SERVER = `
const net = require('net'), dgram = require('dgram');
const [name, tcp, udp] = process.argv.slice(1);
let pending = 0;
const ready = () => { if (--pending === 0) console.log('ready'); };
const peer = (a) => a.replace(/^::ffff:/, '');
for (const p of tcp.split(',').filter(Boolean)) {
  pending++;
  net.createServer((s) => s.end(name + ' ' + peer(s.remoteAddress) + ' ' + s.localPort + '\\n')).listen({ port: +p, host: '::' }, ready);
}
for (const p of udp.split(',').filter(Boolean)) {
  pending++;
  const u = dgram.createSocket({ type: 'udp6' });
  u.on('message', (m, r) => u.send(name + ' ' + peer(r.address) + ' ' + p + '\\n', r.port, r.address));
  u.bind(+p, '::', ready);
}`;

// Many requests at once (JSON list of {proto, host, port, from}): prints a JSON array of the
// replies, null where nothing answered within the timeout. One process per namespace and step.
const CLIENT = `
const net = require('net'), dgram = require('dgram');
const list = JSON.parse(process.argv[1]);
const ms = +process.argv[2];
const one = (p) => new Promise((resolve) => {
  const timer = setTimeout(() => resolve(null), ms);
  const done = (v) => { clearTimeout(timer); resolve(v); };
  if (p.proto === 'tcp') {
    let data = '';
    const s = net.connect({ host: p.host, port: p.port, localAddress: p.from || undefined });
    s.on('data', (d) => (data += d));
    s.on('end', () => done(data.trim()));
    s.on('error', () => done(null));
  } else {
    const u = dgram.createSocket(p.host.includes(':') ? 'udp6' : 'udp4');
    u.on('message', (m) => done(String(m).trim()));
    u.on('error', () => done(null));
    u.bind(0, p.from || undefined, () => u.send('ping', p.port, p.host));
  }
});
Promise.all(list.map(one)).then((r) => { console.log(JSON.stringify(r)); process.exit(0); });`;

// Sends raw Ethernet frames (hex, one per argument) out of an interface: what a hostile sandbox can always do.
const RAW_SEND = `import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for f in sys.argv[2:]:
    s.send(bytes.fromhex(f))`;

// A connected UDP socket: "refused" prints whether an ICMP port unreachable came back; "pmtu"
// sends 1400-byte datagrams with DF until the path MTU an ICMP error taught it shows.
const ICMP_PROBE = `import errno, socket, sys, time
kind, fam, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
six = fam == '6'
s = socket.socket(socket.AF_INET6 if six else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.5)
s.connect((host, port))
if kind == 'refused':
    s.send(b'x')
    try:
        s.recv(100)
        print('answered')
    except ConnectionRefusedError:
        print('refused')
    except socket.timeout:
        print('timeout')
else:
    s.setsockopt(socket.IPPROTO_IPV6 if six else socket.IPPROTO_IP, 23 if six else 10, 2)  # IP(V6)_MTU_DISCOVER = PMTUDISC_DO
    for i in range(15):
        try:
            s.send(b'x' * 1400)
        except OSError as e:
            if e.errno == errno.EMSGSIZE:
                break
        time.sleep(0.1)
    print(s.getsockopt(socket.IPPROTO_IPV6 if six else socket.IPPROTO_IP, 24 if six else 14))  # IP(V6)_MTU`;

const TIMEOUT_MS = 1500;
/** Debian's python3 (bootstrap installs it) rather than whatever shim PATH finds first: a pyenv shim costs seconds per start. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const HOST4 = UPLINK.hostAddress;
const EXT4 = UPLINK.externalAddress;
const HOST6 = UPLINK6.host;
const EXT6 = UPLINK6.external;
/** A host beyond the external namespace, on a 1280-byte link: the external namespace is the router that sends PMTU errors. */
const FAR4 = '198.19.0.2';
const FAR6 = 'fd00:19::2';

export interface V6SuiteOptions {
  /** The datapath refuses forged sources and neighbour advertisements (Docker's iptables rules do not). */
  antiSpoofing: boolean;
  /** A port bound to [::1] answers host processes (ip6tables cannot DNAT ::1 out of lo: Docker needs its userland proxy there). */
  loopback6: boolean;
}

export function datapathV6Suite(kind: 'ebpf' | 'iptables', opts: V6SuiteOptions): void {
  describe(`IPv6 on the ${kind} datapath (driven directly)`, () => {
    let lab: Lab;
    let dp: EbpfDatapath | IptablesDatapath;
    const ns: Record<string, Netns> = {};
    const macs: Record<string, string> = {};
    const endpoints: EndpointSpec[] = [];

    const net = (id: string, third: number, over: Partial<NetworkSpec>): NetworkSpec => ({
      id,
      name: id,
      device: `br${id}`,
      subnet: '',
      gateway: '',
      subnet6: `fd00:${third}::/64`,
      gateway6: `fd00:${third}::1`,
      internal: false,
      icc: true,
      masquerade: true,
      hostBinding: '',
      ...over,
    });
    // Dual-stack (NAT66), IPv6-only, routed (no NAT66), internal, icc=false.
    const A = net('A', 0xa, { subnet: '10.66.1.0/24', gateway: '10.66.1.1' });
    const B = net('B', 0xb, {});
    const R = net('R', 0xc, { subnet: '10.66.3.0/24', gateway: '10.66.3.1', masquerade6: false });
    const I = net('I', 0xd, { internal: true });
    const N = net('N', 0xe, { icc: false });
    const NETS = [A, B, R, I, N];

    const six = (n: NetworkSpec, host: number) => n.subnet6!.replace('::/64', `::${host}`);
    const four = (n: NetworkSpec, host: number) => (n.subnet ? n.subnet.replace(/0\/24$/, String(host)) : '');

    async function sandbox(name: string, n: NetworkSpec, host: number): Promise<void> {
      const sb = await lab.addNamespace(name);
      ns[name] = sb;
      const hostIf = `v${name}`;
      await ensureVeth(lab.host, hostIf, sb, 'eth0');
      await ip(lab.host, ['link', 'set', hostIf, 'master', n.device, 'up']);
      await ip(sb, ['link', 'set', 'lo', 'up']);
      await setUp(sb, 'eth0');
      // As Docker: no duplicate address detection on addresses IPAM handed out.
      await ip(sb, ['-6', 'addr', 'add', `${six(n, host)}/64`, 'dev', 'eth0', 'nodad']);
      await ip(sb, ['-6', 'route', 'add', 'default', 'via', n.gateway6!]);
      if (n.subnet) {
        await ip(sb, ['addr', 'add', `${four(n, host)}/24`, 'dev', 'eth0']);
        await ip(sb, ['route', 'add', 'default', 'via', n.gateway]);
      }
      macs[name] = (await link(sb, 'eth0'))!.address!;
      endpoints.push({ id: name, networkId: n.id, sandboxId: name, hostIfname: hostIf, ifname: 'eth0', netnsPath: sb.path, ipv4: four(n, host), ipv6: six(n, host), mac: macs[name] });
    }

    async function serve(where: Netns, name: string, tcp: number[], udp: number[] = []): Promise<void> {
      const child = lab.spawn(where, process.execPath, ['-e', SERVER, name, tcp.join(','), udp.join(',')]);
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`server ${name} exited (${code})`)));
      });
    }

    type Probe = [proto: 'tcp' | 'udp', host: string, port: number, source?: string];

    /** The replies of servers to probes sent at once from one namespace (null: nothing answered). */
    async function probes(from: Netns, list: Probe[]): Promise<Array<string | null>> {
      const json = JSON.stringify(list.map(([proto, host, port, source]) => ({ proto, host, port, from: source ?? '' })));
      const out = await lab.exec(from, process.execPath, ['-e', CLIENT, json, String(TIMEOUT_MS)]);
      return JSON.parse(out.trim()) as Array<string | null>;
    }

    /** Each probe with the reply it must get (a string, a pattern, or null), checked together so a failure shows them all. */
    async function expectReplies(from: Netns, cases: Array<[Probe, string | RegExp | null]>): Promise<void> {
      const got = await probes(from, cases.map(([p]) => p));
      const shown = (want: string | RegExp | null, have: string | null) => (want instanceof RegExp && have !== null && want.test(have) ? want.source : have);
      expect(cases.map(([p, want], i) => [p.join(' '), shown(want, got[i])])).toEqual(cases.map(([p, want]) => [p.join(' '), want instanceof RegExp ? want.source : want]));
    }

    const ping6 = (from: Netns, to: string) => ping(lab, from, to);

    const port = (protocol: 'tcp' | 'udp', hostPort: number, containerPort: number, hostIp: string): PortSpec => ({
      protocol,
      hostIp,
      hostPort,
      endpointId: 's1',
      networkId: A.id,
      containerIp: four(A, 2),
      containerIp6: six(A, 2),
      containerPort,
    });
    const PORTS = [
      port('tcp', 8080, 80, ''), // every address, both families
      port('tcp', 8083, 80, '::'), // every IPv6 address
      port('tcp', 8084, 80, '0.0.0.0'), // every IPv4 address
      port('tcp', 8081, 80, '::1'), // IPv6 loopback only
      port('udp', 5353, 53, ''),
      port('udp', 5354, 54, ''), // nothing listens on 54: s1 answers port unreachable
    ];

    beforeAll(async () => {
      lab = await Lab.create();
      await addUplink6(lab);
      // The routed network is reachable from outside by route, as gateway_mode_ipv6=routed expects.
      await ip(lab.external, ['-6', 'route', 'add', R.subnet6!, 'via', HOST6]);
      const far = await lab.addNamespace('far');
      ns.far = far;
      await ensureVeth(lab.external, 'eth1', far, 'eth0');
      for (const [where, dev, a4, a6] of [
        [lab.external, 'eth1', '198.19.0.1', 'fd00:19::1'],
        [far, 'eth0', FAR4, FAR6],
      ] as const) {
        await ip(where, ['link', 'set', dev, 'mtu', '1280', 'up']);
        await ip(where, ['addr', 'add', `${a4}/24`, 'dev', dev]);
        await ip(where, ['-6', 'addr', 'add', `${a6}/64`, 'dev', dev, 'nodad']);
      }
      await ip(far, ['route', 'add', 'default', 'via', '198.19.0.1']);
      await ip(far, ['-6', 'route', 'add', 'default', 'via', 'fd00:19::1']);
      await lab.exec(lab.external, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
      for (const [i, n] of NETS.entries()) {
        await ip(lab.host, ['link', 'add', 'name', n.device, 'address', `02:42:66:00:00:0${i + 1}`, 'type', 'bridge']);
        await ip(lab.host, ['-6', 'addr', 'add', `${n.gateway6}/64`, 'dev', n.device, 'nodad']);
        if (n.subnet) await ip(lab.host, ['addr', 'add', `${n.gateway}/24`, 'dev', n.device]);
        await setUp(lab.host, n.device);
      }
      await Promise.all([
        sandbox('s1', A, 2),
        sandbox('s2', A, 3),
        sandbox('s3', B, 2),
        sandbox('s4', R, 2),
        sandbox('s5', I, 2),
        sandbox('n1', N, 2),
        sandbox('n2', N, 3),
      ]);
      endpoints.sort((a, b) => (a.id < b.id ? -1 : 1));
      await Promise.all([
        serve(ns.s1, 's1', [80], [53]),
        serve(ns.s3, 's3', [80]),
        serve(ns.s4, 's4', [80]),
        serve(ns.n2, 'n2', [80]),
        serve(lab.external, 'ext', [80], [53]),
        serve(far, 'far', [], [53]),
      ]);
      const ctx = {
        linkPrefix: 'bnsix',
        instance: `${lab.prefix}six`,
        uplink: { ifname: UPLINK.hostIf, ipv4: HOST4, ipv6: HOST6 },
        root: lab.tmpDir(),
      };
      dp = kind === 'ebpf' ? new EbpfDatapath(ctx, { netns: lab.host }) : new IptablesDatapath(ctx, { netnsPath: lab.host.path });
      const desired: DesiredState = { networks: NETS, endpoints, ports: PORTS };
      await dp.start(desired);
    });

    afterAll(async () => {
      try {
        await (dp as { teardown?: () => Promise<void> })?.teardown?.();
      } finally {
        await lab?.destroy();
      }
    });

    it('reaches a sandbox of the same network over IPv6 (TCP, UDP, ping -6), on a dual-stack network over IPv4 too', async () => {
      const [, pinged, gw] = await Promise.all([
        expectReplies(ns.s2, [
          [['tcp', six(A, 2), 80], `s1 ${six(A, 3)} 80`],
          [['udp', six(A, 2), 53], `s1 ${six(A, 3)} 53`],
          [['tcp', four(A, 2), 80], `s1 ${four(A, 3)} 80`],
        ]),
        ping6(ns.s2, six(A, 2)),
        ping6(ns.s1, A.gateway6!),
      ]);
      expect({ pinged, gw }).toEqual({ pinged: true, gw: true });
    });

    it('isolates networks over IPv6, and enable_icc=false keeps sandboxes of one network apart but lets them out', async () => {
      await Promise.all([
        expectReplies(ns.s3, [[['tcp', six(A, 2), 80], null]]),
        expectReplies(ns.s1, [[['tcp', six(B, 2), 80], null]]),
        expectReplies(ns.n1, [
          [['tcp', six(N, 3), 80], null],
          [['tcp', EXT6, 80], `ext ${HOST6} 80`],
        ]),
      ]);
    });

    it('masquerades IPv6 egress to the uplink address (NAT66): TCP, UDP and ping -6', async () => {
      const [, , pinged] = await Promise.all([
        expectReplies(ns.s1, [
          [['tcp', EXT6, 80], `ext ${HOST6} 80`],
          [['udp', EXT6, 53], `ext ${HOST6} 53`],
        ]),
        expectReplies(ns.s3, [[['tcp', EXT6, 80], `ext ${HOST6} 80`]]),
        ping6(ns.s2, EXT6),
      ]);
      expect(pinged).toBe(true);
    });

    it('routes without NAT66 on gateway_mode_ipv6=routed (IPv4 still masqueraded), admitting replies only', async () => {
      await Promise.all([
        expectReplies(ns.s4, [
          [['tcp', EXT6, 80], `ext ${six(R, 2)} 80`],
          [['tcp', EXT4, 80], `ext ${HOST4} 80`],
        ]),
        expectReplies(lab.external, [[['tcp', six(R, 2), 80], null]]),
      ]);
    });

    it('lets nothing out of an internal network and nothing in, and refuses direct access to a NATed sandbox address', async () => {
      await ip(lab.external, ['-6', 'route', 'replace', A.subnet6!, 'via', HOST6]);
      try {
        await Promise.all([
          expectReplies(ns.s5, [[['tcp', EXT6, 80], null]]),
          expectReplies(lab.external, [
            [['tcp', six(I, 2), 80], null],
            [['tcp', six(A, 2), 80], null],
          ]),
        ]);
      } finally {
        await ip(lab.external, ['-6', 'route', 'del', A.subnet6!, 'via', HOST6]);
      }
    });

    it('publishes ports over IPv6 from outside, keeping the client address: [::], every address on both families, not 0.0.0.0 nor [::1]', async () => {
      await expectReplies(lab.external, [
        [['tcp', HOST6, 8080], `s1 ${EXT6} 80`],
        [['tcp', HOST4, 8080], `s1 ${EXT4} 80`],
        [['udp', HOST6, 5353], `s1 ${EXT6} 53`],
        [['tcp', HOST6, 8083], `s1 ${EXT6} 80`],
        [['tcp', HOST4, 8083], null],
        [['tcp', HOST4, 8084], `s1 ${EXT4} 80`],
        [['tcp', HOST6, 8084], null],
        [['tcp', HOST6, 8081], null],
      ]);
    });

    it('reaches published ports from host processes and, hairpinned, from sandboxes through the host IPv6 address', async () => {
      const s1 = /^s1 \S+ 80$/;
      await Promise.all([
        expectReplies(lab.host, [
          [['tcp', HOST6, 8080], s1],
          [['tcp', HOST6, 8083], s1],
          ...(opts.loopback6 ? ([[['tcp', '::1', 8081], s1]] as Array<[Probe, RegExp]>) : []),
        ]),
        // From its own network, from another, and from itself.
        expectReplies(ns.s2, [
          [['tcp', HOST6, 8080], s1],
          [['udp', HOST6, 5353], /^s1 \S+ 53$/],
        ]),
        expectReplies(ns.s3, [[['tcp', HOST6, 8080], s1]]),
        expectReplies(ns.s1, [[['tcp', HOST6, 8080], s1]]),
      ]);
    });

    it('unpublishes on IPv6 and IPv4 alike', async () => {
      await dp.unpublish([PORTS[0]]);
      try {
        await expectReplies(lab.external, [
          [['tcp', HOST6, 8080], null],
          [['tcp', HOST4, 8080], null],
        ]);
      } finally {
        await dp.publish([PORTS[0]]);
      }
      await expectReplies(lab.external, [[['tcp', HOST6, 8080], `s1 ${EXT6} 80`]]);
    });

    it('delivers ICMP errors about its own flows to a sandbox behind NAT: port unreachable, fragmentation needed / packet too big', async () => {
      const icmp = (from: Netns, kind: 'refused' | 'pmtu', fam: '4' | '6', host: string, p: number) =>
        lab.exec(from, PYTHON, ['-c', ICMP_PROBE, kind, fam, host, String(p)]).then((o) => o.trim());
      // The far host answers through the narrow link, so the path works before its MTU is learnt.
      await expectReplies(ns.s1, [
        [['udp', FAR4, 53], `far ${HOST4} 53`],
        [['udp', FAR6, 53], `far ${HOST6} 53`],
      ]);
      const got = await Promise.all([
        icmp(ns.s1, 'refused', '4', EXT4, 9),
        icmp(ns.s1, 'refused', '6', EXT6, 9),
        icmp(ns.s2, 'pmtu', '4', FAR4, 53),
        icmp(ns.s2, 'pmtu', '6', FAR6, 53),
      ]);
      expect(got).toEqual(['refused', 'refused', '1280', '1280']);
    });

    it('delivers the port unreachable a sandbox sends about a published port to the outside client', async () => {
      const icmp = (fam: '4' | '6', host: string) => lab.exec(lab.external, PYTHON, ['-c', ICMP_PROBE, 'refused', fam, host, '5354']).then((o) => o.trim());
      expect(await Promise.all([icmp('4', HOST4), icmp('6', HOST6)])).toEqual(['refused', 'refused']);
    });

    if (opts.antiSpoofing) {
      it('never delivers a forged IPv6 source, and counts and reports it with its addresses', async () => {
        const forged = six(A, 0x99);
        const reported: DropInfo[] = [];
        const off = (dp as EbpfDatapath).onDrop((d) => reported.push(d));
        await ip(ns.s2, ['-6', 'addr', 'add', `${forged}/64`, 'dev', 'eth0', 'nodad']);
        try {
          await expectReplies(ns.s2, [
            [['udp', six(A, 2), 53, forged], null],
            [['tcp', EXT6, 80, forged], null],
          ]);
        } finally {
          off();
          await ip(ns.s2, ['-6', 'addr', 'del', `${forged}/64`, 'dev', 'eth0']);
        }
        const c = (dp as EbpfDatapath).counters('vs2');
        expect(c?.drops['spoofed-source-ip']).toBeGreaterThanOrEqual(2);
        // What `bpfnet monitor` shows: the forged source and the real destination, bracketed with their ports.
        expect(reported).toContainEqual(expect.objectContaining({ reason: 'spoofed-source-ip', protocol: 'tcp', source: expect.stringMatching(new RegExp(`^\\[${forged}\\]:\\d+$`)), destination: `[${EXT6}]:80` }));
      });

      it('never lets a sandbox answer neighbour discovery for another sandbox or the gateway', async () => {
        const neighbour = async (where: Netns, dev: string, addr: string) =>
          /lladdr (\S+)/.exec(await lab.exec(where, 'ip', ['-6', 'neigh', 'show', addr, 'dev', dev]))?.[1];
        // The host knows s1's real MAC.
        await expectReplies(lab.host, [[['tcp', six(A, 2), 80], /^s1 /]]);
        expect(await neighbour(lab.host, A.device, six(A, 2))).toBe(macs.s1);
        const before = (dp as EbpfDatapath).counters('vs2')?.drops['spoofed-neighbour-discovery'] ?? 0;
        // s2 forges unsolicited overriding advertisements: for s1 and for the gateway, to everyone and to the host.
        const bridgeMac = (await link(lab.host, A.device))!.address!;
        const frames = (
          [
            [six(A, 2), '33:33:00:00:00:01', 'ff02::1'],
            [A.gateway6!, '33:33:00:00:00:01', 'ff02::1'],
            [six(A, 2), bridgeMac, A.gateway6!],
          ] as const
        ).map(([target, dstMac, dst]) =>
          buildNeighbourAdvert6({ srcMac: macs.s2, dstMac, src: six(A, 3), dst, target, targetMac: macs.s2, override: true }).toString('hex'),
        );
        await lab.exec(ns.s2, PYTHON, ['-c', RAW_SEND, 'eth0', ...frames]);
        await new Promise((r) => setTimeout(r, 100));
        expect(await neighbour(lab.host, A.device, six(A, 2))).toBe(macs.s1);
        await expectReplies(lab.host, [[['tcp', six(A, 2), 80], /^s1 /]]);
        expect(((dp as EbpfDatapath).counters('vs2')?.drops['spoofed-neighbour-discovery'] ?? 0) - before).toBe(3);
      });
    }
  });
}
