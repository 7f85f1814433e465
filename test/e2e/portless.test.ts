// The portless eBPF datapath (issue 15, "4,000 sandboxes on one network"): a Linux bridge takes
// 1,024 ports at most, so on the eBPF datapath no sandbox's host veth is a port of its network's
// bridge. What the bridge did is the programs': ARP and neighbour solicitations answered in
// from_container (the sandbox's entry for its gateway is the bridge's MAC, REACHABLE) and in
// bridge.bpf.c (the host's entry for a sandbox), the host's traffic in both directions, and the
// host's broadcast reaching no sandbox, counted. More than 1,024 sandboxes do not fit the test
// budget; `npm run bench -- --scale` creates 4,000.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { bridgeName, hostIfname } from '../../src/networks/config.js';
import { linkPrefixFor } from '../../src/daemon/options.js';
import { PerCpuMap } from '../../src/datapath/libbpf/bpf.js';
import { DROP_REASONS, epStats } from '../../src/datapath/abi.js';
import { u32 } from '../../src/datapath/libbpf/codec.js';
import { link, type Netns } from '../../src/system/ip.js';
import { runRaw } from '../../src/system/exec.js';
import { ECHO_SERVER, echoServer, peerIp, ping, probe, sandboxNs, waitPort } from '../support/traffic.js';

describe('portless: no bridge port per sandbox on the eBPF datapath', () => {
  let lab: Lab;
  let d: LabDaemon;
  let bridge: string;
  const names = ['p1', 'p2'];
  const ns: Record<string, Netns> = {};
  const ip4: Record<string, string> = {};
  const ip6: Record<string, string> = {};
  const veth: Record<string, string> = {};

  beforeAll(async () => {
    lab = await Lab.create();
    d = await LabDaemon.start(lab, { datapath: 'ebpf' });
    await echoServer(lab, lab.external, 'tcp', 7000);
    await d.bpfnet('network', 'create', '--ipv6', '--subnet', '10.61.0.0/24', '--subnet', 'fd61::/64', 'flat');
    await d.bpfnet('run', '-d', '--name', 'p1', '--network', 'flat');
    await d.bpfnet('run', '-d', '--name', 'p2', '--network', 'flat', '-p', '8461:80', '--', process.execPath, ECHO_SERVER, 'tcp', '80', '::');
    const net = JSON.parse(await d.bpfnet('network', 'inspect', 'flat'))[0];
    bridge = bridgeName({ linkPrefix: linkPrefixFor(d.instance) }, net.Id);
    for (const name of names) {
      const s = JSON.parse(await d.bpfnet('inspect', name))[0].NetworkSettings.Networks.flat;
      ns[name] = await sandboxNs(d, name);
      ip4[name] = s.IPAddress;
      ip6[name] = s.GlobalIPv6Address;
      veth[name] = hostIfname({ linkPrefix: linkPrefixFor(d.instance) }, s.EndpointID);
    }
    await waitPort(lab, ns.p1, ip4.p2, 80);
  }, 60_000);

  afterAll(async () => {
    await lab?.destroy();
  });

  it('makes no sandbox a port of the bridge', async () => {
    for (const name of names) expect({ name, master: (await link(lab.host, veth[name]))?.master }).toEqual({ name, master: undefined });
    const ports = await lab.exec(lab.host, 'bridge', ['-j', 'link', 'show']);
    expect((JSON.parse(ports || '[]') as Array<{ ifname: string; master?: string }>).filter((p) => p.master === bridge)).toEqual([]);
  });

  it('answers ARP and neighbour solicitations in the datapath: the gateway is the bridge MAC, REACHABLE', async () => {
    const bridgeMac = (await link(lab.host, bridge))!.address!;
    const neigh = async (where: Netns, family: '-4' | '-6', addr: string) =>
      (JSON.parse(await lab.exec(where, 'ip', ['-j', family, 'neigh', 'show', addr, 'dev', 'eth0'])) as Array<{ lladdr?: string; state?: string[]; router?: null }>)[0];
    await lab.exec(ns.p1, 'ip', ['neigh', 'flush', 'dev', 'eth0']);
    expect(await ping(lab, ns.p1, '10.61.0.1')).toBe(true);
    expect(await ping(lab, ns.p1, 'fd61::1')).toBe(true);
    expect(await ping(lab, ns.p1, ip4.p2)).toBe(true);
    expect(await ping(lab, ns.p1, ip6.p2)).toBe(true);
    const gw4 = await neigh(ns.p1, '-4', '10.61.0.1');
    expect({ mac: gw4?.lladdr, state: gw4?.state }).toEqual({ mac: bridgeMac, state: ['REACHABLE'] });
    const gw6 = await neigh(ns.p1, '-6', 'fd61::1');
    // A router's advertisement: the sandbox keeps the gateway as its default router.
    expect({ mac: gw6?.lladdr, state: gw6?.state, router: gw6 && 'router' in gw6 }).toEqual({ mac: bridgeMac, state: ['REACHABLE'], router: true });
    const peer4 = await neigh(ns.p1, '-4', ip4.p2);
    const peer6 = await neigh(ns.p1, '-6', ip6.p2);
    const p2mac = (await link(ns.p2, 'eth0'))!.address!;
    expect([peer4?.lladdr, peer6?.lladdr]).toEqual([p2mac, p2mac]);
    // The host's own entries for a sandbox, answered by bridge.bpf.c.
    expect(await ping(lab, lab.host, ip4.p2)).toBe(true);
    expect(await ping(lab, lab.host, ip6.p2)).toBe(true);
    const host4 = (JSON.parse(await lab.exec(lab.host, 'ip', ['-j', 'neigh', 'show', ip4.p2, 'dev', bridge])) as Array<{ lladdr?: string }>)[0];
    const host6 = (JSON.parse(await lab.exec(lab.host, 'ip', ['-j', '-6', 'neigh', 'show', ip6.p2, 'dev', bridge])) as Array<{ lladdr?: string }>)[0];
    expect([host4?.lladdr, host6?.lladdr]).toEqual([p2mac, p2mac]);
  });

  it('reaches sandboxes, the gateway by DNS name, the outside and a published port', async () => {
    expect(peerIp(await probe(lab, ns.p1, 'tcp', ip4.p2, 80))).toBe(ip4.p1);
    expect(peerIp(await probe(lab, ns.p1, 'tcp', ip6.p2, 80))).toBe(ip6.p1);
    // The embedded resolver on the gateway answers a sandbox's name (through the bridge's ingress and back).
    const key: string = JSON.parse(await d.bpfnet('inspect', 'p1'))[0].NetworkSettings.SandboxKey;
    const r = await runRaw('ip', ['netns', 'exec', key.slice('/run/netns/'.length), 'getent', 'hosts', 'p2'], { timeoutMs: 20_000 });
    expect(r.stdout.trim().split(/\s+/)[0]).toMatch(new RegExp(`^(${ip4.p2}|${ip6.p2})$`));
    expect(peerIp(await probe(lab, ns.p1, 'tcp', UPLINK.externalAddress, 7000))).toBe(UPLINK.hostAddress);
    expect(peerIp(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8461))).toBe(UPLINK.externalAddress);
    expect(peerIp(await probe(lab, ns.p1, 'tcp', UPLINK.hostAddress, 8461))).toBe('10.61.0.1');
  });

  it("delivers the host's broadcast to no sandbox and counts it on the bridge", async () => {
    const slot = (await link(lab.host, bridge))!.ifindex;
    const drops = () => {
      const map = PerCpuMap.openPinned(`/sys/fs/bpf/${d.instance}/stats4`, u32, epStats);
      try {
        return (map.get(slot) ?? []).reduce((s, v) => s + v.drops[DROP_REASONS.indexOf('no-shared-link')], 0);
      } finally {
        map.close();
      }
    };
    const heard = lab.spawn(ns.p2, process.execPath, ['-e', "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>console.log(r.address));s.bind(6000,()=>console.log('ready'))"]);
    let out = '';
    heard.stdout?.on('data', (x: Buffer) => (out += x.toString()));
    try {
      for (let i = 0; i < 100 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 20));
      const before = drops();
      await lab.exec(lab.host, process.execPath, ['-e', "const s=require('dgram').createSocket('udp4');s.bind(()=>{s.setBroadcast(true);s.send('x',6000,'10.61.0.255',()=>s.close())})"]);
      await new Promise((r) => setTimeout(r, 300));
      expect(drops() - before).toBeGreaterThanOrEqual(1);
      expect(out.split('\n').filter((l) => /^\d/.test(l))).toEqual([]);
    } finally {
      heard.kill('SIGKILL');
    }
  });
});
