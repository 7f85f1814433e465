// Overlay networks across simulated hosts on the ebpf datapath: two hosts (network namespaces,
// each with its own daemon and its uplink on a shared underlay bridge), two overlay networks
// with sandboxes spread over both hosts. Until the cluster store (etcd) is merged, the test
// plays the cluster state's watch: it tells each host what endpoints the other one has, the
// way the watch will (test/support/overlay-host.mjs). Real packets: VXLAN on the underlay with
// the network's VNI, decapsulated straight into the sandbox; isolation between networks; a
// sandbox on both networks; a published port on one host reaching an overlay sandbox there;
// the time until a new endpoint is reachable from the other host.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab/lab.js';
import { projectRoot } from '../../src/paths.js';
import { ensureAddress, ensureVeth, ip, setUp, type Netns } from '../../src/system/ip.js';
import { echoServer, peerIp, ping, probe } from '../support/traffic.js';
import { start } from '../../src/system/exec.js';
import { startCapture } from '../support/capture.js';
import { OverlayHost } from '../support/overlay-host.js';
import { requireTool } from '../support/requirements.js';
import { until } from '../support/until.js';

const DNS_QUERY = join(projectRoot, 'test', 'support', 'dns-query.mjs');
const VXLAN_FORGE = join(projectRoot, 'test', 'support', 'vxlan-forge.py');
/** New endpoints timed from "the cluster state tells the other host" to "answers a ping from there". */
const PROPAGATION_ENDPOINTS = 5;
const UNDERLAY = { bridge: 'ul0', gateway: '198.18.0.1', prefixLength: 24 } as const;
const OVERLAY_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';
const NETS = {
  ova: { subnet: '10.91.0.0/24', vni: 4101 },
  ovb: { subnet: '10.92.0.0/24', vni: 4102 },
} as const;

describe('overlay networks across hosts (ebpf datapath)', () => {
  let lab: Lab;
  let h1: OverlayHost;
  let h2: OverlayHost;
  const servers: ChildProcess[] = [];
  const ns: Record<string, Netns> = {};

  /** Tells every other host about a sandbox of `from`, as the cluster state's watch would. */
  async function announce(from: OverlayHost, sandbox: string): Promise<void> {
    for (const ep of await from.endpointsOf(sandbox)) for (const h of [h1, h2]) if (h !== from) await h.call('remote-add', ep);
  }

  beforeAll(async () => {
    requireTool('tcpdump', 'tcpdump');
    lab = await Lab.create({ uplink: false });
    // The underlay: a bridge in the lab's own namespace, each host's uplink a port of it.
    await ip(lab.host, ['link', 'add', 'name', UNDERLAY.bridge, 'type', 'bridge']);
    await ensureAddress(lab.host, UNDERLAY.bridge, `${UNDERLAY.gateway}/${UNDERLAY.prefixLength}`);
    await setUp(lab.host, UNDERLAY.bridge);
    const hosts: OverlayHost[] = [];
    for (const [i, name] of ['h1', 'h2'].entries()) {
      const hns = await lab.addNamespace(name);
      const vtep = `198.18.0.${11 + i}`;
      await ensureVeth(hns, 'up0', lab.host, `ul-${name}`);
      await ip(lab.host, ['link', 'set', 'dev', `ul-${name}`, 'master', UNDERLAY.bridge, 'up']);
      await ensureAddress(hns, 'up0', `${vtep}/${UNDERLAY.prefixLength}`);
      await setUp(hns, 'up0');
      await ip(hns, ['route', 'add', 'default', 'via', UNDERLAY.gateway]);
      hosts.push(new OverlayHost(lab, name, hns, vtep, NETS));
    }
    [h1, h2] = hosts;
    await Promise.all(hosts.map((h) => h.start()));
    await Promise.all(
      hosts.map(async (h) => {
        for (const [name, n] of Object.entries(NETS)) await h.cli('network', 'create', '-d', 'overlay', '--attachable', '--subnet', n.subnet, '-o', `${OVERLAY_OPTION}=${n.vni}`, name);
      }),
    );
    // Addresses are given: without the cluster store each host's IPAM is its own.
    const plan: Array<[OverlayHost, string, string, string]> = [
      [h1, 'a1', 'ova', '10.91.0.11'],
      [h2, 'a2', 'ova', '10.91.0.21'],
      [h1, 'b1', 'ovb', '10.92.0.11'],
      [h2, 'b2', 'ovb', '10.92.0.21'],
      [h2, 'ab2', 'ova', '10.91.0.22'],
    ];
    // Each host in its own sequence, both at once.
    await Promise.all(
      hosts.map(async (h) => {
        for (const [host, name, net, addr] of plan) {
          if (host !== h) continue;
          await h.cli('run', '-d', '--name', name, '--network', net, '--ip', addr, ...(name === 'a2' ? ['-p', '8080:7000'] : []));
          ns[name] = await h.sandboxNs(name);
        }
      }),
    );
    await h2.cli('network', 'connect', '--ip', '10.92.0.22', 'ovb', 'ab2');
    await Promise.all(plan.map(([h, name]) => announce(h, name)));
    servers.push(...(await Promise.all(['a2', 'b2', 'ab2'].flatMap((name) => [echoServer(lab, ns[name], 'tcp', 7000), echoServer(lab, ns[name], 'udp', 7001)]))));
  }, 180_000);

  afterAll(async () => {
    for (const s of servers) s.kill('SIGTERM');
    for (const h of [h1, h2]) if (h?.child && h.child.exitCode === null) h.child.kill('SIGTERM');
    await lab?.destroy();
  });

  it('gives overlay sandboxes the MTU of the tunnel (uplink 1500 - 50)', async () => {
    const links = JSON.parse(await lab.exec(ns.a1, 'ip', ['-j', 'link', 'show', 'dev', 'eth0'])) as Array<{ mtu: number }>;
    expect(links[0].mtu).toBe(1450);
    const inspect = JSON.parse(await h1.cli('network', 'inspect', 'ova'))[0];
    expect(inspect.Driver).toBe('overlay');
    expect(inspect.Scope).toBe('global');
  });

  it("makes no host veth a port of the network's local bridge (the datapath switches; a bridge would stop at 1,024)", async () => {
    const veths = JSON.parse(await lab.exec(h2.ns, 'ip', ['-j', '-d', 'link', 'show', 'type', 'veth'])) as Array<{ ifname: string; master?: string }>;
    // a2, ab2 (on both networks: two) and b2 live on h2.
    expect(veths.length).toBeGreaterThanOrEqual(4);
    expect(veths.filter((v) => v.master !== undefined).map((v) => `${v.ifname} on ${v.master}`)).toEqual([]);
  });

  it('carries ICMP, TCP and UDP between hosts inside a network, without translation', async () => {
    expect(await ping(lab, ns.a1, '10.91.0.21')).toBe(true);
    expect(peerIp(await probe(lab, ns.a1, 'tcp', '10.91.0.21', 7000))).toBe('10.91.0.11');
    expect(peerIp(await probe(lab, ns.a1, 'udp', '10.91.0.21', 7001))).toBe('10.91.0.11');
    expect(peerIp(await probe(lab, ns.b1, 'tcp', '10.92.0.21', 7000))).toBe('10.92.0.11');
  });

  it('encapsulates and decapsulates VXLAN in the datapath, so the VXLAN device sees none of a ping series; a bulk stream\'s aggregated packets still cross through the device', async () => {
    /** Packets through a host's VXLAN device (the kernel's encapsulation and decapsulation path). */
    const device = async (h: OverlayHost): Promise<{ rx: number; tx: number }> => {
      const links = JSON.parse(await lab.exec(h.ns, 'ip', ['-j', '-s', '-d', 'link', 'show', 'type', 'vxlan'])) as Array<{ stats64: { rx: { packets: number }; tx: { packets: number } } }>;
      expect(links).toHaveLength(1);
      return { rx: links[0].stats64.rx.packets, tx: links[0].stats64.tx.packets };
    };
    const moved = async (before: Array<{ rx: number; tx: number }>) =>
      (await Promise.all([device(h1), device(h2)])).map((d, i) => ({ rx: d.rx - before[i].rx, tx: d.tx - before[i].tx }));
    let before = await Promise.all([device(h1), device(h2)]);
    await lab.execRaw(ns.a1, 'ping', ['-c', '40', '-i', '0.01', '-W', '1', '10.91.0.21']);
    // 40 requests out of h1 into h2 and 40 replies back, none through either device.
    for (const [i, d] of (await moved(before)).entries()) expect(Math.max(d.rx, d.tx), `h${i + 1}'s VXLAN device: ${JSON.stringify(d)}`).toBeLessThanOrEqual(2);
    expect(peerIp(await probe(lab, ns.a1, 'tcp', '10.91.0.21', 7000))).toBe('10.91.0.11');
    // A TCP stream's segments leave the sandbox aggregated (GSO): both ends leave those to the
    // device, which keeps them whole across the underlay.
    const server = lab.spawn(ns.a2, 'iperf3', ['-s', '-1', '-p', '5301']);
    try {
      await until('iperf3 listening in a2', async () => (await lab.exec(ns.a2, 'ss', ['-Hltn', 'sport = :5301'])).trim() !== '');
      before = await Promise.all([device(h1), device(h2)]);
      const out = JSON.parse(await lab.exec(ns.a1, 'iperf3', ['-c', '10.91.0.21', '-p', '5301', '-t', '1', '-J'], { timeoutMs: 20_000 })) as { end: { sum_received: { bytes: number } } };
      expect(out.end.sum_received.bytes).toBeGreaterThan(1_000_000);
      const [sender, receiver] = await moved(before);
      expect(sender.tx, 'the sending host\'s VXLAN device carried the aggregates').toBeGreaterThan(10);
      expect(receiver.rx, 'the receiving host\'s VXLAN device carried the aggregates').toBeGreaterThan(10);
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('isolates overlay networks from each other across hosts', async () => {
    expect(await ping(lab, ns.a1, '10.92.0.21')).toBe(false);
    expect(await probe(lab, ns.a1, 'tcp', '10.92.0.21', 7000, 800)).toBeNull();
    expect(await probe(lab, ns.b1, 'tcp', '10.91.0.21', 7000, 800)).toBeNull();
  });

  it('lets a sandbox on both networks reach (and be reached from) both', async () => {
    expect(peerIp(await probe(lab, ns.a1, 'tcp', '10.91.0.22', 7000))).toBe('10.91.0.11');
    expect(peerIp(await probe(lab, ns.b1, 'tcp', '10.92.0.22', 7000))).toBe('10.92.0.11');
  });

  it('publishes a port on one host to an overlay sandbox there, and masquerades egress through the sandbox\'s own host', async () => {
    expect(peerIp(await probe(lab, lab.host, 'tcp', h2.vtep, 8080))).toBe(UNDERLAY.gateway);
    // The underlay's router plays "the outside": each sandbox leaves by its own host's address.
    servers.push(await echoServer(lab, lab.host, 'tcp', 7100));
    expect(peerIp(await probe(lab, ns.a1, 'tcp', UNDERLAY.gateway, 7100))).toBe(h1.vtep);
    expect(peerIp(await probe(lab, ns.a2, 'tcp', UNDERLAY.gateway, 7100))).toBe(h2.vtep);
  });

  /** The embedded DNS's answer for `name`, asked from a sandbox to its network's gateway. */
  async function resolve(from: string, gateway: string, name: string): Promise<string[]> {
    const out = await lab.exec(ns[from], process.execPath, [DNS_QUERY, gateway, name, 'A', 'udp', '1500']);
    return (JSON.parse(out.trim().split('\n')[0]) as { answers?: string[] }).answers ?? [];
  }

  it('resolves names of sandboxes on other hosts, inside a network only, and follows changes within a second', async () => {
    expect(await resolve('a1', '10.91.0.1', 'a2')).toEqual(['10.91.0.21']);
    expect(await resolve('a1', '10.91.0.1', 'ab2')).toEqual(['10.91.0.22']);
    expect(await resolve('b1', '10.92.0.1', 'ab2')).toEqual(['10.92.0.22']);
    expect(await resolve('b1', '10.92.0.1', 'a2')).not.toContain('10.91.0.21');
    // A new alias on the other host: visible as soon as the cluster state says so.
    const [rec] = (await h2.endpointsOf('b2')).filter((r) => r.vni === NETS.ovb.vni);
    const t0 = Date.now();
    await h1.call('remote-add', { ...rec, aliases: ['db'] });
    let answers: string[] = [];
    while (Date.now() - t0 < 1000 && !(answers = await resolve('b1', '10.92.0.1', 'db')).includes('10.92.0.21'));
    expect(answers).toEqual(['10.92.0.21']);
    await h1.call('remote-add', rec);
  });

  it('puts only VXLAN with the network\'s VNI on the underlay: no inner address, no ARP of the overlay', async () => {
    const dump = await startCapture(lab.host.path, ['-i', UNDERLAY.bridge, 'not', 'ip6']);
    try {
      // A fresh neighbour: the sandbox must ask for the remote MAC again, and gets it from its own host.
      await lab.exec(ns.a1, 'ip', ['neigh', 'flush', 'all']);
      expect(await ping(lab, ns.a1, '10.91.0.21')).toBe(true);
      expect(peerIp(await probe(lab, ns.b1, 'tcp', '10.92.0.21', 7000))).toBe('10.92.0.11');
      const lines = await dump.finish();
      const vxlan = lines.filter((l) => /VXLAN/.test(l));
      expect(vxlan.length).toBeGreaterThanOrEqual(4);
      for (const l of vxlan) expect(l).toMatch(/\.4789: VXLAN, flags \[I\] \(0x08\), vni (4101|4102)$/);
      expect(vxlan.some((l) => / vni 4101$/.test(l))).toBe(true);
      expect(vxlan.some((l) => / vni 4102$/.test(l))).toBe(true);
      // Inner packets are printed under their VXLAN line, without a time stamp: any time-stamped
      // line naming an overlay address left a host unencapsulated.
      const outer = lines.filter((l) => /^\d\d:\d\d:/.test(l));
      expect(outer.filter((l) => /10\.9[12]\./.test(l))).toEqual([]);
      expect(lines.filter((l) => /ARP/.test(l) && /10\.9[12]\./.test(l))).toEqual([]);
      expect(lines.some((l) => /^IP 10\.91\.0\.11 > 10\.91\.0\.21: ICMP echo request/.test(l))).toBe(true);
    } finally {
      dump.kill();
    }
  });

  it('accepts from the underlay only what a known host may send: its own endpoints, on their VNI, to their network', async () => {
    // The lab's underlay address plays a third host with one endpoint on ova.
    const forger = { vni: NETS.ova.vni, ipv4: '10.91.0.99', mac: '02:42:0a:5b:00:63', vtep: UNDERLAY.gateway, sandboxId: 'f'.repeat(64), name: 'forger', aliases: [] };
    await h1.call('remote-add', forger);
    // What reached the sandbox, counted by its own kernel: the echo requests it received.
    const inEchos = async (at: Netns): Promise<number> => {
      const [names, values] = (await lab.exec(at, 'cat', ['/proc/net/snmp'])).split('\n').filter((l) => l.startsWith('Icmp:'));
      return Number(values.split(/\s+/)[names.split(/\s+/).indexOf('InEchos')]);
    };
    /** Sends one forged packet from the underlay router; resolves with [echo requests the target sandbox got, reply seen back]. */
    const forge = async (vni: number, src: string, dst: string, mac: string, target: Netns): Promise<[number, string]> => {
      const before = await inEchos(target);
      const reply = (await lab.exec(lab.host, 'python3', [VXLAN_FORGE, h1.vtep, String(vni), src, dst, mac, '0.7'])).trim();
      return [(await inEchos(target)) - before, reply];
    };
    try {
      expect(await forge(NETS.ova.vni, '10.91.0.99', '10.91.0.11', '02:42:0a:5b:00:0b', ns.a1)).toEqual([1, 'reply']);
      // Another host's endpoint, sent from this one (a reply would go to the real one's host: count arrivals).
      expect(await forge(NETS.ova.vni, '10.91.0.21', '10.91.0.11', '02:42:0a:5b:00:0b', ns.a1)).toEqual([0, 'none']);
      // The right endpoint under another network's VNI, or aimed at another network's sandbox.
      expect(await forge(NETS.ovb.vni, '10.91.0.99', '10.91.0.11', '02:42:0a:5b:00:0b', ns.a1)).toEqual([0, 'none']);
      expect(await forge(NETS.ova.vni, '10.91.0.99', '10.92.0.11', '02:42:0a:5c:00:0b', ns.b1)).toEqual([0, 'none']);
    } finally {
      await h1.call('remote-remove', forger);
    }
    expect(await forge(NETS.ova.vni, '10.91.0.99', '10.91.0.11', '02:42:0a:5b:00:0b', ns.a1)).toEqual([0, 'none']);
  });

  it(`makes a new endpoint reachable from the other host right after the cluster state tells it (p50/p99 over ${PROPAGATION_ENDPOINTS})`, async () => {
    const names = Array.from({ length: PROPAGATION_ENDPOINTS }, (_, i) => `p${i}`);
    await Promise.all(names.map((name, i) => h2.cli('run', '-d', '--name', name, '--network', 'ova', '--ip', `10.91.0.${100 + i}`)));
    /** From just before spawning ping to its first reply, to an address known for long: what spawning costs here. */
    const firstReply = async (addr: string, t0: number): Promise<number> => {
      const pinger = start('nsenter', [`--net=${ns.a1.path}`, 'ping', '-D', '-n', '-i', '0.005', '-W', '1', '-w', '8', addr]);
      let out = '';
      pinger.stdout?.on('data', (b: Buffer) => (out += b.toString()));
      while (!/bytes from/.test(out) && Date.now() - t0 < 8000) await new Promise((r) => setTimeout(r, 5));
      pinger.kill('SIGKILL');
      const first = /^\[(\d+\.\d+)\] \d+ bytes from/m.exec(out);
      expect(first, `no reply from ${addr} within 8 s`).not.toBeNull();
      return Number(first![1]) * 1000 - t0;
    };
    const spawnMs: number[] = [];
    for (let i = 0; i < 3; i++) spawnMs.push(await firstReply('10.91.0.21', Date.now()));
    const ms: number[] = [];
    for (const name of names) {
      const [rec] = await h2.endpointsOf(name);
      // The clock starts when the cluster state tells the other host; ping starts right after
      // (started before, the sandbox's failed ARP backs off: not the datapath's time). Spawning
      // nsenter + ping is counted (an upper bound); its own cost is measured above.
      const t0 = Date.now();
      await h1.call('remote-add', rec);
      ms.push(await firstReply(rec.ipv4, t0));
    }
    ms.sort((a, b) => a - b);
    const p = (q: number) => ms[Math.min(ms.length - 1, Math.ceil(q * ms.length) - 1)];
    spawnMs.sort((a, b) => a - b);
    console.log(
      `overlay propagation (remote-add -> first ping reply from the other host), ms: p50 ${p(0.5).toFixed(1)}, p99 ${p(0.99).toFixed(1)}, all ${ms.map((m) => m.toFixed(1)).join(' ')}; ` +
        `spawning ping to a known endpoint alone: ${spawnMs.map((m) => m.toFixed(1)).join(' ')}`,
    );
    expect(p(0.99)).toBeLessThan(1000);
  }, 120_000);
});
