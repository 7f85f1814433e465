// An overlay network over a routed underlay (ebpf datapath): two simulated hosts on two underlay
// segments with a router between them (the lab's own namespace), so each host reaches the other's
// VTEP via a gateway. The datapath's own encapsulation looks the remote VTEP up in the FIB, which
// puts the gateway in the lookup's destination: the outer header must still be addressed to the
// remote VTEP (on overlay.test.ts's single segment the two are the same address, so it cannot
// tell). As there, the test plays the cluster state's watch with `remote-add`.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab/lab.js';
import { ensureAddress, ensureVeth, ip, setUp, type Netns } from '../../src/system/ip.js';
import { startCapture } from '../support/capture.js';
import { OverlayHost } from '../support/overlay-host.js';
import { requireTool } from '../support/requirements.js';
import { echoServer, peerIp, ping, probe } from '../support/traffic.js';
import { until } from '../support/until.js';

/** The underlay: one bridge per segment in the lab's namespace, which routes between them at `router`. */
const SEGMENTS = {
  ula: { router: '198.18.1.1', prefixLength: 24 },
  ulb: { router: '198.18.2.1', prefixLength: 24 },
} as const;
const HOSTS = [
  { name: 'h1', segment: 'ula', vtep: '198.18.1.11' },
  { name: 'h2', segment: 'ulb', vtep: '198.18.2.12' },
] as const;
const OVERLAY_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';
const NETS = { ovr: { subnet: '10.93.0.0/24', vni: 4201 } } as const;
/** Sandboxes: one per host, each serving the echo ports. */
const SANDBOXES = { a1: { host: 0, ip: '10.93.0.11' }, a2: { host: 1, ip: '10.93.0.21' } } as const;

describe('overlay network over a routed underlay (ebpf datapath)', () => {
  let lab: Lab;
  let h1: OverlayHost;
  let h2: OverlayHost;
  const servers: ChildProcess[] = [];
  const ns: Record<string, Netns> = {};

  /** Packets through a host's VXLAN device (the kernel's encapsulation and decapsulation path). */
  async function device(h: OverlayHost): Promise<{ rx: number; tx: number }> {
    const links = JSON.parse(await lab.exec(h.ns, 'ip', ['-j', '-s', '-d', 'link', 'show', 'type', 'vxlan'])) as Array<{ stats64: { rx: { packets: number }; tx: { packets: number } } }>;
    expect(links).toHaveLength(1);
    return { rx: links[0].stats64.rx.packets, tx: links[0].stats64.tx.packets };
  }

  beforeAll(async () => {
    requireTool('tcpdump', 'tcpdump');
    requireTool('iperf3', 'iperf3');
    // Lab.create turns forwarding on in its own namespace (and only there): it is the router.
    lab = await Lab.create({ uplink: false });
    for (const [bridge, s] of Object.entries(SEGMENTS)) {
      await ip(lab.host, ['link', 'add', 'name', bridge, 'type', 'bridge']);
      await ensureAddress(lab.host, bridge, `${s.router}/${s.prefixLength}`);
      await setUp(lab.host, bridge);
    }
    const hosts: OverlayHost[] = [];
    for (const { name, segment, vtep } of HOSTS) {
      const hns = await lab.addNamespace(name);
      await ensureVeth(hns, 'up0', lab.host, `ul-${name}`);
      await ip(lab.host, ['link', 'set', 'dev', `ul-${name}`, 'master', segment, 'up']);
      await ensureAddress(hns, 'up0', `${vtep}/${SEGMENTS[segment].prefixLength}`);
      await setUp(hns, 'up0');
      await ip(hns, ['route', 'add', 'default', 'via', SEGMENTS[segment].router]);
      hosts.push(new OverlayHost(lab, name, hns, vtep, NETS));
    }
    [h1, h2] = hosts;
    // Each router becomes a known neighbour of its hosts, as on a host that has been up a while:
    // the datapath encapsulates itself only then, and leaves a packet to the VXLAN device before.
    // One reply within 5 s, one request a second: new links may drop the first (seen once).
    for (const [h, other] of [
      [h1, h2],
      [h2, h1],
    ])
      await lab.exec(h.ns, 'ping', ['-c', '1', '-w', '5', '-q', other.vtep]);
    await Promise.all(hosts.map((h) => h.start()));
    await Promise.all(
      hosts.map(async (h, i) => {
        for (const [name, n] of Object.entries(NETS)) await h.cli('network', 'create', '-d', 'overlay', '--attachable', '--subnet', n.subnet, '-o', `${OVERLAY_OPTION}=${n.vni}`, name);
        // Addresses are given: without the cluster store each host's IPAM is its own.
        for (const [name, sb] of Object.entries(SANDBOXES)) {
          if (sb.host !== i) continue;
          await h.cli('run', '-d', '--name', name, '--network', 'ovr', '--ip', sb.ip);
          ns[name] = await h.sandboxNs(name);
        }
      }),
    );
    // Each host learns of the other's sandbox, as the cluster state's watch would tell it.
    for (const [name, sb] of Object.entries(SANDBOXES)) {
      const from = hosts[sb.host];
      for (const ep of await from.endpointsOf(name)) for (const h of hosts) if (h !== from) await h.call('remote-add', ep);
    }
    servers.push(...(await Promise.all(Object.keys(SANDBOXES).flatMap((name) => [echoServer(lab, ns[name], 'tcp', 7000), echoServer(lab, ns[name], 'udp', 7001)]))));
  }, 180_000);

  afterAll(async () => {
    for (const s of servers) s.kill('SIGTERM');
    for (const h of [h1, h2]) if (h?.child && h.child.exitCode === null) h.child.kill('SIGTERM');
    await lab?.destroy();
  });

  it('routes the underlay: each host reaches the other\'s VTEP via its own segment\'s router', async () => {
    for (const [h, other] of [
      [h1, h2],
      [h2, h1],
    ]) {
      const gw = SEGMENTS[HOSTS.find((x) => x.name === h.name)!.segment].router;
      expect(await lab.exec(h.ns, 'ip', ['-o', 'route', 'get', other.vtep])).toMatch(new RegExp(`^${other.vtep} via ${gw} dev up0 `));
      expect(await ping(lab, h.ns, other.vtep)).toBe(true);
    }
  });

  it('carries ICMP, TCP and UDP between sandboxes on the two segments, both ways, keeping the client\'s address', async () => {
    expect(await ping(lab, ns.a1, SANDBOXES.a2.ip)).toBe(true);
    expect(await ping(lab, ns.a2, SANDBOXES.a1.ip)).toBe(true);
    expect(peerIp(await probe(lab, ns.a1, 'tcp', SANDBOXES.a2.ip, 7000))).toBe(SANDBOXES.a1.ip);
    expect(peerIp(await probe(lab, ns.a1, 'udp', SANDBOXES.a2.ip, 7001))).toBe(SANDBOXES.a1.ip);
    expect(peerIp(await probe(lab, ns.a2, 'tcp', SANDBOXES.a1.ip, 7000))).toBe(SANDBOXES.a2.ip);
    expect(peerIp(await probe(lab, ns.a2, 'udp', SANDBOXES.a1.ip, 7001))).toBe(SANDBOXES.a2.ip);
  });

  it('encapsulates a ping series in the datapath across the router: every reply comes back, and neither VXLAN device carries it', async () => {
    const before = await Promise.all([device(h1), device(h2)]);
    const r = await lab.execRaw(ns.a1, 'ping', ['-c', '40', '-i', '0.01', '-W', '1', SANDBOXES.a2.ip]);
    expect(r.stdout).toMatch(/\b40 packets transmitted, 40 received\b/);
    // 40 requests out of h1 into h2 and 40 replies back, none through either device.
    const after = await Promise.all([device(h1), device(h2)]);
    for (const [i, d] of after.entries()) {
      const moved = { rx: d.rx - before[i].rx, tx: d.tx - before[i].tx };
      expect(Math.max(moved.rx, moved.tx), `h${i + 1}'s VXLAN device: ${JSON.stringify(moved)}`).toBeLessThanOrEqual(2);
    }
  });

  it('addresses the VXLAN packets to the remote VTEP, not the router, on both segments', async () => {
    // Both bridges at once: on segment A the packets h1 sends (and the router's copies of h2's),
    // on segment B the router's copies of h1's (and those h2 sends).
    const dumps = await Promise.all(Object.keys(SEGMENTS).map((bridge) => startCapture(lab.host.path, ['-i', bridge, 'udp', 'port', '4789'])));
    let lines: string[][];
    let crossed: { ping: boolean; tcp: string | null; udp: string | null };
    try {
      crossed = {
        ping: await ping(lab, ns.a1, SANDBOXES.a2.ip),
        tcp: peerIp(await probe(lab, ns.a1, 'tcp', SANDBOXES.a2.ip, 7000)),
        udp: peerIp(await probe(lab, ns.a2, 'udp', SANDBOXES.a1.ip, 7001)),
      };
      lines = await Promise.all(dumps.map((d) => d.finish()));
    } finally {
      for (const d of dumps) d.kill();
    }
    // The addresses first: traffic sent to the router is lost there, and this says where it went.
    const [h1ToH2, h2ToH1] = [`${h1.vtep} > ${h2.vtep}`, `${h2.vtep} > ${h1.vtep}`];
    for (const [i, bridge] of Object.keys(SEGMENTS).entries()) {
      // "12:00:00.000000 IP 198.18.1.11.40000 > 198.18.2.12.4789: VXLAN, flags [I] (0x08), vni 4201"
      const outer = lines[i].filter((l) => /^\d\d:\d\d:/.test(l));
      const pairs = outer.map((l) => /^\S+ IP (\d+\.\d+\.\d+\.\d+)\.\d+ > (\d+\.\d+\.\d+\.\d+)\.4789: VXLAN, flags \[I\] \(0x08\), vni (\d+)$/.exec(l)).map((m, j) => (m ? `${m[1]} > ${m[2]} vni ${m[3]}` : outer[j]));
      expect(new Set(pairs), `segment ${bridge}:\n${lines[i].join('\n')}`).toEqual(new Set([`${h1ToH2} vni ${NETS.ovr.vni}`, `${h2ToH1} vni ${NETS.ovr.vni}`]));
      // A ping and a reply, a handshake with its data and close, a datagram and its echo.
      expect(outer.length, `segment ${bridge}`).toBeGreaterThanOrEqual(10);
    }
    expect(crossed).toEqual({ ping: true, tcp: SANDBOXES.a1.ip, udp: SANDBOXES.a2.ip });
  });

  it('carries a TCP stream across the router', async () => {
    const server = lab.spawn(ns.a2, 'iperf3', ['-s', '-1', '-p', '5301']);
    try {
      await until('iperf3 listening in a2', async () => (await lab.exec(ns.a2, 'ss', ['-Hltn', 'sport = :5301'])).trim() !== '');
      const r = await lab.execRaw(ns.a1, 'iperf3', ['-c', SANDBOXES.a2.ip, '-p', '5301', '-t', '1', '-J'], { timeoutMs: 20_000 });
      expect(r.code, `iperf3 -c: ${r.stdout}${r.stderr}`).toBe(0);
      const out = JSON.parse(r.stdout) as { end: { sum_received: { bytes: number } } };
      expect(out.end.sum_received.bytes).toBeGreaterThan(1_000_000);
    } finally {
      server.kill('SIGKILL');
    }
  });
});
