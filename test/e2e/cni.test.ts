// bpfnet-cni driven as libcni (and the reference cnitool) drive a plugin: the executable run
// with CNI_* in its environment and the plugin's configuration (name and cniVersion of the list,
// runtimeConfig from capability args, prevResult) on stdin, inside the lab's host namespace,
// against a real daemon on the eBPF datapath. Every spec version for ADD/CHECK/DEL/VERSION,
// STATUS and GC on 1.1.0, bad configurations and environments with their CNI codes, traffic
// (same network, isolation, masquerade, portMappings from outside), and a daemon that is down.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { projectRoot } from '../../src/paths.js';
import { run } from '../../src/system/exec.js';
import { ip, ipJson, links, type Netns } from '../../src/system/ip.js';
import { CniRuntime, pluginConfig, type CniNetworkList } from '../../bench/setups/cni-runtime.js';
import { api } from '../support/api.js';
import { expectNoLeaks } from '../support/leak-check.js';
import { echoServer, peerIp, probe } from '../support/traffic.js';

const PLUGIN = join(projectRoot, 'bin', 'bpfnet-cni');
const VERSIONS = ['0.3.1', '0.4.0', '1.0.0', '1.1.0'];

interface Call {
  code: number;
  out: any;
  stderr: string;
}

describe('bpfnet-cni, driven as libcni drives a plugin', () => {
  let lab: Lab;
  let d: LabDaemon;
  const ns: Record<string, Netns> = {};

  /** A conflist with bpfnet-cni first (and only), as a user writes it in the CNI config dir. */
  const list = (version: string, name = 'cninet', extra: Record<string, unknown> = {}): CniNetworkList => ({
    cniVersion: version,
    name,
    plugins: [{ type: 'bpfnet-cni', socket: d.socket, subnet: name === 'cninet' ? '10.77.0.0/24' : '10.78.0.0/24', capabilities: { portMappings: true, ips: true, mac: true }, ...extra }],
  });

  /** One plugin execution exactly as libcni's invoke package does it. */
  const exec = async (command: string, env: Record<string, string>, stdin: string): Promise<Call> => {
    const r = await lab.execRaw(lab.host, PLUGIN, [], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CNI_COMMAND: command, CNI_PATH: join(projectRoot, 'bin'), ...env },
      input: stdin,
      timeoutMs: 60_000,
    });
    let out: unknown;
    try {
      out = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
    } catch {
      out = r.stdout;
    }
    return { code: r.code, out, stderr: r.stderr };
  };

  const cni = (command: string, l: CniNetworkList, c: { id: string; netns?: string; ifname?: string }, caps: Record<string, unknown> = {}, prevResult?: any) =>
    exec(command, { CNI_CONTAINERID: c.id, CNI_NETNS: c.netns ?? '', CNI_IFNAME: c.ifname ?? 'eth0' }, JSON.stringify(pluginConfig(l, l.plugins[0], caps, prevResult)));

  const hostLinks = async () => (await links(lab.host)).map((l) => l.ifname);

  beforeAll(async () => {
    lab = await Lab.create();
    d = await LabDaemon.start(lab, { datapath: 'ebpf' });
    for (const n of ['v031', 'v040', 'v100', 'v110', 'a', 'b', 'other', 'gc1', 'gc2', 'chain', 'six1', 'six2', 'multi6', 'only6', 'stale', 'fresh']) ns[n] = await lab.addNamespace(n);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('VERSION answers every spec version it speaks, in the version asked', async () => {
    const answers = await Promise.all(VERSIONS.map((v) => exec('VERSION', {}, JSON.stringify({ cniVersion: v }))));
    for (const [i, r] of answers.entries()) {
      expect(r.code).toBe(0);
      expect(r.out.cniVersion).toBe(VERSIONS[i]);
      expect(r.out.supportedVersions).toEqual(expect.arrayContaining(VERSIONS));
    }
  });

  // The four versions run side by side, as a runtime's parallel ADDs would.
  it.concurrent.each(VERSIONS)('ADD, CHECK, DEL, DEL again with cniVersion %s', async (v) => {
    const c = { id: `ctr${v.replaceAll('.', '')}`, netns: ns[`v${v.replaceAll('.', '')}`].path };
    const add = await cni('ADD', list(v), c);
    expect(add.code, JSON.stringify(add.out)).toBe(0);
    const res = add.out;
    expect(res.cniVersion).toBe(v);
    expect(res.interfaces).toHaveLength(2);
    expect(res.interfaces[1]).toMatchObject({ name: 'eth0', sandbox: c.netns, mac: expect.stringMatching(/^02:42:/) });
    expect(res.ips).toHaveLength(1);
    expect(res.ips[0]).toMatchObject({ address: expect.stringMatching(/^10\.77\.0\.\d+\/24$/), gateway: '10.77.0.1', interface: 1 });
    // 0.3.x and 0.4.0 tag each address with its family; 1.0.0 dropped the field.
    if (v < '1.0.0') expect(res.ips[0].version).toBe('4');
    else expect(res.ips[0]).not.toHaveProperty('version');
    expect(res.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.77.0.1' }]);
    // The address is really on the interface in the container's namespace.
    const addrs = JSON.stringify(await ipJson(ns[`v${v.replaceAll('.', '')}`], ['addr', 'show', 'dev', 'eth0']));
    expect(addrs).toContain(res.ips[0].address.split('/')[0]);

    const check = await cni('CHECK', list(v), c, {}, res);
    if (v === '0.3.1') expect(check.out).toMatchObject({ code: 1, msg: expect.stringContaining('does not allow CHECK') });
    else expect(check.code, JSON.stringify(check.out)).toBe(0);

    // ADD again for the same container and interface gives the same attachment.
    if (v === '1.0.0') expect((await cni('ADD', list(v), c)).out.ips).toEqual(res.ips);

    expect((await cni('DEL', list(v), c, {}, res)).code).toBe(0);
    expect(await hostLinks()).not.toContain(res.interfaces[0].name);
    // DEL is idempotent, also without a namespace (the runtime may have removed it already).
    const del2 = await cni('DEL', list(v), { id: c.id });
    expect(del2.code, JSON.stringify(del2.out)).toBe(0);
    if (v === '1.0.0') expect((await cni('CHECK', list(v), c, {}, res)).out).toMatchObject({ code: 3 });
  });

  describe('traffic of CNI containers on the eBPF datapath', () => {
    let resA: any;
    let resB: any;
    let resO: any;
    beforeAll(async () => {
      const [a, b, o] = await Promise.all([
        cni('ADD', list('1.0.0'), { id: 'ctra', netns: ns.a.path }, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] }),
        cni('ADD', list('1.0.0'), { id: 'ctrb', netns: ns.b.path }, { ips: ['10.77.0.50/24'], mac: '02:aa:bb:cc:dd:ee' }),
        cni('ADD', list('1.0.0', 'cniother'), { id: 'ctro', netns: ns.other.path }),
        echoServer(lab, ns.a, 'tcp', 80),
        echoServer(lab, lab.external, 'tcp', 9000),
      ]);
      for (const r of [a, b, o]) expect(r.code, JSON.stringify(r.out)).toBe(0);
      resA = a.out;
      resB = b.out;
      resO = o.out;
    });

    it('honours the ips and mac capabilities', () => {
      expect(resB.ips[0].address).toBe('10.77.0.50/24');
      expect(resB.interfaces[1].mac).toBe('02:aa:bb:cc:dd:ee');
    });

    it('reaches a container of the same network by address', async () => {
      const a = resA.ips[0].address.split('/')[0];
      expect(peerIp(await probe(lab, ns.b, 'tcp', a, 80))).toBe('10.77.0.50');
    });

    it('masquerades to the host address on the way out', async () => {
      expect(peerIp(await probe(lab, ns.a, 'tcp', UPLINK.externalAddress, 9000))).toBe(UPLINK.hostAddress);
    });

    it('publishes portMappings on the datapath: reached from outside, the client address kept', async () => {
      expect(peerIp(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8080))).toBe(UPLINK.externalAddress);
      // No portmap plugin: no iptables rules in the host namespace do it.
      const rules = await lab.exec(lab.host, 'iptables-save', []);
      expect(rules).not.toContain('8080');
    });

    it('isolates a container of another CNI network', async () => {
      expect(resO.ips[0].address).toMatch(/^10\.78\.0\./);
      expect(await probe(lab, ns.other, 'tcp', resA.ips[0].address.split('/')[0], 80, 1000)).toBeNull();
      expect((await cni('DEL', list('1.0.0', 'cniother'), { id: 'ctro', netns: ns.other.path })).code).toBe(0);
    });

    it('refuses a host port another container publishes (code 100), and CHECK sees a broken interface (code 101)', async () => {
      const clash = await cni('ADD', list('1.0.0'), { id: 'ctrx', netns: ns.other.path }, { portMappings: [{ hostPort: 8080, containerPort: 81, protocol: 'tcp' }] });
      expect(clash.out).toMatchObject({ code: 100, msg: expect.stringContaining('already allocated') });
      expect(await api(d.socket, 'GET', '/endpoints/ctrx:eth0')).toMatchObject({ status: 404 });

      // CHECK compares the published ports with what the runtime asks now.
      expect((await cni('CHECK', list('1.0.0'), { id: 'ctra', netns: ns.a.path }, {}, resA)).out).toMatchObject({ code: 101, msg: expect.stringContaining('publishes') });
      await ip(ns.b, ['link', 'delete', 'eth0']);
      expect((await cni('CHECK', list('1.0.0'), { id: 'ctrb', netns: ns.b.path }, {}, resB)).out).toMatchObject({ code: 101 });
      expect((await cni('DEL', list('1.0.0'), { id: 'ctrb', netns: ns.b.path }, {}, resB)).code).toBe(0);
      expect((await cni('DEL', list('1.0.0'), { id: 'ctra', netns: ns.a.path }, {}, resA)).code).toBe(0);
      expect(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8080, 1000)).toBeNull();
    });
  });

  it('dual-stack ("subnet6"): an address per family in the result, with their routes, reach over IPv6', async () => {
    const l = list('1.0.0', 'cni6', { subnet: '10.79.0.0/24', subnet6: 'fd79::/64' });
    const [one, two] = await Promise.all([cni('ADD', l, { id: 'six1', netns: ns.six1.path }), cni('ADD', l, { id: 'six2', netns: ns.six2.path }, { ips: ['10.79.0.20/24', 'fd79::20/64'] })]);
    for (const r of [one, two]) expect(r.code, JSON.stringify(r.out)).toBe(0);
    expect(one.out.ips).toEqual([
      { address: expect.stringMatching(/^10\.79\.0\.\d+\/24$/), gateway: '10.79.0.1', interface: 1 },
      { address: expect.stringMatching(/^fd79::[0-9a-f:]+\/64$/), gateway: 'fd79::1', interface: 1 },
    ]);
    expect(one.out.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.79.0.1' }, { dst: '::/0', gw: 'fd79::1' }]);
    expect(two.out.ips.map((i: { address: string }) => i.address)).toEqual(['10.79.0.20/24', 'fd79::20/64']);
    // 0.4.0 tags the IPv6 address with its family.
    const old = await cni('ADD', { ...l, cniVersion: '0.4.0' }, { id: 'six1', netns: ns.six1.path });
    expect(old.out.ips[1]).toMatchObject({ version: '6' });
    const server = await echoServer(lab, ns.six2, 'tcp', 80, '::');
    try {
      const mine = one.out.ips[1].address.split('/')[0];
      expect(peerIp(await probe(lab, ns.six1, 'tcp', 'fd79::20', 80))).toBe(mine);
      expect((await lab.execRaw(ns.six1, 'ping', ['-6', '-c', '1', '-W', '2', 'fd79::20'])).code).toBe(0);
      expect((await cni('CHECK', l, { id: 'six2', netns: ns.six2.path }, { ips: ['10.79.0.20/24', 'fd79::20/64'] }, two.out)).code).toBe(0);
    } finally {
      server.kill('SIGKILL');
    }
    for (const id of ['six1', 'six2']) expect((await cni('DEL', l, { id, netns: ns[id].path })).code).toBe(0);
  });

  it('a network with several IPv6 subnets (made by bpfnet network create): an address in the second gets that subnet\'s gateway and route', async () => {
    await d.bpfnet('network', 'create', '--ipv6', '--subnet', '10.80.0.0/24', '--subnet', 'fd80:a::/64', '--subnet', 'fd80:b::/64', 'cnimulti');
    const l = list('1.0.0', 'cnimulti', { subnet: '10.80.0.0/24' });
    try {
      const add = await cni('ADD', l, { id: 'multi6', netns: ns.multi6.path }, { ips: ['10.80.0.30/24', 'fd80:b::30/64'] });
      expect(add.code, JSON.stringify(add.out)).toBe(0);
      expect(add.out.ips).toEqual([
        { address: '10.80.0.30/24', gateway: '10.80.0.1', interface: 1 },
        { address: 'fd80:b::30/64', gateway: 'fd80:b::1', interface: 1 },
      ]);
      expect(add.out.routes).toContainEqual({ dst: '::/0', gw: 'fd80:b::1' });
      expect((await lab.execRaw(ns.multi6, 'ping', ['-6', '-c', '1', '-W', '2', 'fd80:b::1'])).code).toBe(0);
    } finally {
      expect((await cni('DEL', l, { id: 'multi6', netns: ns.multi6.path })).code).toBe(0);
      await d.bpfnet('network', 'rm', 'cnimulti');
    }
  });

  it('makes an IPv6-only network from a "subnet6" list (gateways by position): an address in the second subnet, that subnet\'s gateway and route; other subnets refused', async () => {
    const l = list('1.0.0', 'cnionly6', { subnet: undefined, subnet6: ['fd81:a::/64', 'fd81:b::/64'], gateway6: ['fd81:a::1', 'fd81:b::fe'] });
    try {
      const add = await cni('ADD', l, { id: 'only6', netns: ns.only6.path }, { ips: ['fd81:b::30/64'] });
      expect(add.code, JSON.stringify(add.out)).toBe(0);
      expect(add.out.ips).toEqual([{ address: 'fd81:b::30/64', gateway: 'fd81:b::fe', interface: 1 }]);
      expect(add.out.routes).toEqual([{ dst: '::/0', gw: 'fd81:b::fe' }]);
      expect((await lab.execRaw(ns.only6, 'ping', ['-6', '-c', '1', '-W', '2', 'fd81:b::fe'])).code).toBe(0);
      const net = JSON.parse(await d.bpfnet('network', 'inspect', 'cnionly6'))[0] as { EnableIPv4: boolean; EnableIPv6: boolean; IPAM: { Config: Array<{ Subnet: string; Gateway: string }> } };
      expect(net).toMatchObject({ EnableIPv4: false, EnableIPv6: true });
      expect(net.IPAM.Config.map((c) => [c.Subnet, c.Gateway])).toEqual([['fd81:a::/64', 'fd81:a::1'], ['fd81:b::/64', 'fd81:b::fe']]);
      // The same subnets in another order are the same network; one of them alone is not.
      const other = list('1.0.0', 'cnionly6', { subnet: undefined, subnet6: ['fd81:b::/64', 'fd81:a::/64'] });
      const reordered = await cni('ADD', other, { id: 'only6c', netns: ns.only6.path, ifname: 'eth1' });
      expect(reordered.code, JSON.stringify(reordered.out)).toBe(0);
      expect(reordered.out.ips).toEqual([{ address: expect.stringMatching(/^fd81:a::[0-9a-f:]+\/64$/), gateway: 'fd81:a::1', interface: 1 }]);
      expect((await cni('DEL', other, { id: 'only6c', netns: ns.only6.path, ifname: 'eth1' })).code).toBe(0);
      const fewer = await cni('ADD', list('1.0.0', 'cnionly6', { subnet: undefined, subnet6: 'fd81:a::/64' }), { id: 'only6b', netns: ns.only6.path });
      expect(fewer.code).toBe(1);
      expect(fewer.out).toMatchObject({ code: 7, msg: expect.stringContaining('has IPv6 subnets fd81:a::/64, fd81:b::/64') });
    } finally {
      expect((await cni('DEL', l, { id: 'only6', netns: ns.only6.path })).code).toBe(0);
      await d.bpfnet('network', 'rm', 'cnionly6');
    }
  });

  it('a host port is taken whichever came first: a bpfnet sandbox\'s -p or a CNI portMapping', async () => {
    // CNI first (its ADD makes cninet when an earlier case has not).
    const first = await cni('ADD', list('1.0.0'), { id: 'clash2', netns: ns.fresh.path }, { portMappings: [{ hostPort: 8183, containerPort: 80, protocol: 'tcp' }] });
    expect(first.code, JSON.stringify(first.out)).toBe(0);
    const refused = await d.cli(['run', '-d', '--name', 'pubsecond', '--network', 'cninet', '-p', '8183:80']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('Bind for 0.0.0.0:8183 failed: port is already allocated (by cni endpoint clash2:eth0)');
    // A binding without host IP takes both families: [::]:8183 is taken too.
    expect((await d.cli(['run', '-d', '--name', 'pubsecond', '--network', 'cninet', '-p', '[::]:8183:80'])).code).not.toBe(0);
    // The sandbox first.
    await d.bpfnet('run', '-d', '--name', 'pubfirst', '--network', 'cninet', '-p', '8182:80');
    const after = await cni('ADD', list('1.0.0'), { id: 'clash1', netns: ns.other.path }, { portMappings: [{ hostPort: 8182, containerPort: 80, protocol: 'tcp' }] });
    expect(after.out).toMatchObject({ code: 100, msg: expect.stringContaining('port is already allocated (by bpfnet sandbox pubfirst)') });
    expect(await api(d.socket, 'GET', '/endpoints/clash1:eth0')).toMatchObject({ status: 404 });
    // Released by one side, the port is free for the other.
    expect((await cni('DEL', list('1.0.0'), { id: 'clash2', netns: ns.fresh.path })).code).toBe(0);
    await d.bpfnet('run', '-d', '--name', 'pubsecond', '--network', 'cninet', '-p', '8183:80');
    await d.bpfnet('rm', '-f', 'pubfirst', 'pubsecond');
  });

  it('goes first in a conflist: the reference tuning plugin reads its result as prevResult, DEL runs in reverse', async () => {
    // A plugin dir as a runtime has one: bpfnet-cni beside the reference plugins.
    const pluginDir = join(lab.tmpDir(), 'cni-bin');
    mkdirSync(pluginDir, { recursive: true });
    symlinkSync(PLUGIN, join(pluginDir, 'bpfnet-cni'));
    symlinkSync('/usr/lib/cni/tuning', join(pluginDir, 'tuning'));
    const chain: CniNetworkList = { ...list('1.0.0'), plugins: [list('1.0.0').plugins[0], { type: 'tuning', mtu: 1400 }] };
    const rt = new CniRuntime(chain, { pluginDir, hostNetns: lab.host.path, cacheDir: join(lab.tmpDir(), 'cni-cache') });
    const att = { containerId: 'chained', netns: ns.chain.path, ifname: 'eth0' };
    const res = await rt.add(att);
    // tuning found the container interface from bpfnet-cni's result and passed the result on.
    expect((await ipJson<Array<{ mtu: number }>>(ns.chain, ['link', 'show', 'dev', 'eth0']))[0].mtu).toBe(1400);
    expect(res.ips?.[0].address).toMatch(/^10\.77\.0\.\d+\/24$/);
    await rt.del(att);
    expect((await api(d.socket, 'GET', '/endpoints/chained:eth0')).status).toBe(404);
  });

  it('GC (1.1.0) removes the endpoints of attachments the runtime no longer has, and only those', async () => {
    const added = await Promise.all(['gc1', 'gc2'].map((id) => cni('ADD', list('1.1.0'), { id, netns: ns[id].path })));
    for (const r of added) expect(r.code, JSON.stringify(r.out)).toBe(0);
    // gc2's runtime died and its namespace went with it (taking the container end of the veth).
    await run('ip', ['netns', 'delete', ns.gc2.name]);
    const gc = await exec('GC', {}, JSON.stringify({ ...pluginConfig(list('1.1.0'), list('1.1.0').plugins[0], {}), 'cni.dev/valid-attachments': [{ containerID: 'gc1', ifname: 'eth0' }] }));
    expect(gc.code, JSON.stringify(gc.out)).toBe(0);
    const left = (await api(d.socket, 'GET', '/endpoints?owner=cni:cninet')).json.map((e: any) => e.Key);
    expect(left).toEqual(['gc1:eth0']);
    expect(await hostLinks()).not.toContain(added[1].out.interfaces[0].name);
    expect(await hostLinks()).toContain(added[0].out.interfaces[0].name);
    expect((await exec('GC', {}, JSON.stringify(pluginConfig(list('1.0.0'), list('1.0.0').plugins[0], {})))).out).toMatchObject({ code: 1 });
    expect((await cni('DEL', list('1.1.0'), { id: 'gc1', netns: ns.gc1.path })).code).toBe(0);
  });

  it('STATUS (1.1.0) says whether ADD can be served', async () => {
    const conf = (l: CniNetworkList) => JSON.stringify(pluginConfig(l, l.plugins[0], {}));
    const [ok, noNet, old] = await Promise.all([list('1.1.0'), list('1.1.0', 'absent', { subnet: undefined }), list('1.0.0')].map((l) => exec('STATUS', {}, conf(l))));
    expect(ok.code, JSON.stringify(ok.out)).toBe(0);
    expect(noNet.out).toMatchObject({ code: 50 });
    expect(old.out).toMatchObject({ code: 1 });
  });

  it('answers bad configurations and environments with the spec codes and a message', async () => {
    const c = { id: 'bad', netns: ns.other.path };
    const raw = (stdin: string, env: Record<string, string> = { CNI_CONTAINERID: 'bad', CNI_NETNS: ns.other.path, CNI_IFNAME: 'eth0' }, cmd = 'ADD') => exec(cmd, env, stdin);
    // The plugin's own checks of every field are in test/unit/cni-spec.test.ts; these run the executable end to end.
    const cases: Array<[string, Promise<Call>, number]> = [
      ['not JSON', raw('{"cniVersion": '), 6],
      ['an unknown version', cni('ADD', list('0.2.0'), c), 1],
      ['an ipam section', cni('ADD', list('1.0.0', 'cninet', { ipam: { type: 'host-local' } }), c), 2],
      ['a missing network without subnet', cni('ADD', list('1.0.0', 'nosuch', { subnet: undefined }), c), 7],
      ['a subnet other than the network has', cni('ADD', list('1.0.0', 'cninet', { subnet: '10.99.0.0/24' }), c), 7],
      ['an sctp port mapping', cni('ADD', list('1.0.0'), c, { portMappings: [{ hostPort: 1, containerPort: 1, protocol: 'sctp' }] }), 7],
      ['an address outside the subnet', cni('ADD', list('1.0.0'), c, { ips: ['10.1.1.1/24'] }), 7],
      ['a multicast MAC', cni('ADD', list('1.0.0'), c, { mac: '01:00:5e:00:00:01' }), 7],
      ['no CNI_CONTAINERID', raw(JSON.stringify(list('1.0.0').plugins[0]), { CNI_NETNS: ns.other.path, CNI_IFNAME: 'eth0' }), 4],
      ['a CNI_NETNS that does not exist', cni('ADD', list('1.0.0'), { ...c, netns: '/run/netns/does-not-exist' }), 4],
      // A file, but no namespace (as a name whose mount a killed process never made).
      ['a CNI_NETNS that is a plain file', cni('ADD', list('1.0.0'), { ...c, netns: '/etc/passwd' }), 4],
    ];
    for (const [what, call, code] of cases) {
      const r = await call;
      expect(r.code, what).toBe(1);
      expect(r.out, what).toMatchObject({ code, msg: expect.any(String) });
    }
    // Nothing was left behind by any of them.
    expect((await api(d.socket, 'GET', '/endpoints')).json).toEqual([]);
  });

  it('refuses hostile /endpoints requests with 400 and a message', async () => {
    const put = (key: string, body: unknown) => api(d.socket, 'PUT', `/endpoints/${key}`, body);
    for (const [key, body] of [
      ['k1', { Network: 'cninet', Netns: ns.other.path }],
      ['k1', { Network: 'cninet', Netns: ns.other.path, Ifname: 'eth0', Ports: [{ HostPort: 0, ContainerPort: 80 }] }],
      ['k1', { Network: 'cninet', Netns: 'relative', Ifname: 'eth0' }],
      ['k1', { Network: 'cninet', Netns: ns.other.path, Ifname: 'eth 0' }],
      ['-k', { Network: 'cninet', Netns: ns.other.path, Ifname: 'eth0' }],
      ['k1', [1, 2, 3]],
    ] as const) {
      const r = await put(key, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.message).toEqual(expect.any(String));
    }
    expect((await api(d.socket, 'GET', '/endpoints')).json).toEqual([]);
    expect((await api(d.socket, 'GET', '/endpoints/bad%20ref')).status).toBe(400);
  });

  it('after a daemon restart: the attachment is re-adopted (its veth kept), CHECK passes, DEL removes it and nothing is left', async () => {
    const add = await cni('ADD', list('1.1.0'), { id: 'restart', netns: ns.chain.path });
    expect(add.code, JSON.stringify(add.out)).toBe(0);
    await d.restart();
    // Foreign endpoints are stored: the restarted daemon keeps the veth and takes the key back.
    expect(d.log).toContain('CNI endpoints: adopted 1, forgot 0');
    // One route family for every engine's endpoints: by key, by bpfnet's id or a prefix of it, listed by client.
    const byKey = (await api(d.socket, 'GET', '/endpoints/restart:eth0')).json;
    expect(byKey).toMatchObject({ Key: 'restart:eth0', Client: 'cni', Owner: 'cni:cninet', State: 'joined', Ifname: 'eth0', Netns: ns.chain.path });
    expect((await api(d.socket, 'GET', `/endpoints/${byKey.Id.slice(0, 12)}`)).json.Key).toBe('restart:eth0');
    expect((await api(d.socket, 'GET', '/endpoints?client=cni')).json.map((e: { Key: string }) => e.Key)).toEqual(['restart:eth0']);
    expect(await d.bpfnet('ps')).toContain('restart:eth0');
    expect(await hostLinks()).toContain(add.out.interfaces[0].name);
    expect((await cni('CHECK', list('1.1.0'), { id: 'restart', netns: ns.chain.path }, {}, add.out)).code).toBe(0);
    expect((await cni('DEL', list('1.1.0'), { id: 'restart', netns: ns.chain.path })).code).toBe(0);
    expect(await hostLinks()).not.toContain(add.out.interfaces[0].name);
    expect((await api(d.socket, 'GET', '/endpoints')).json).toEqual([]);
  });

  it('a container whose namespace died while the daemon was down: dropped at start (record, address, ports), DEL succeeds, nothing leaks', async () => {
    const add = await cni('ADD', list('1.1.0'), { id: 'stale', netns: ns.stale.path }, { ips: ['10.77.0.60/24'], portMappings: [{ hostPort: 8184, containerPort: 80, protocol: 'tcp' }] });
    expect(add.code, JSON.stringify(add.out)).toBe(0);
    await d.stop();
    // The runtime's DEL would fail now (daemon down); the namespace goes, and the veth with it.
    await run('ip', ['netns', 'delete', ns.stale.name]);
    await d.start();
    expect(d.log).toMatch(/reconcile: dropped foreign endpoint cni endpoint stale:eth0 on network cninet .*freed 10\.77\.0\.60, withdrew ports 8184\/tcp/);
    expect(d.log).toContain('CNI endpoints: adopted 0, forgot 1');
    expect(await api(d.socket, 'GET', '/endpoints/stale:eth0')).toMatchObject({ status: 404 });
    expect((await cni('DEL', list('1.1.0'), { id: 'stale', netns: ns.stale.path })).code).toBe(0);
    // Its address and its host port are free again.
    const again = await cni('ADD', list('1.1.0'), { id: 'fresh', netns: ns.fresh.path }, { ips: ['10.77.0.60/24'], portMappings: [{ hostPort: 8184, containerPort: 80, protocol: 'tcp' }] });
    expect(again.code, JSON.stringify(again.out)).toBe(0);
    expect((await cni('DEL', list('1.1.0'), { id: 'fresh', netns: ns.fresh.path })).code).toBe(0);
    await expectNoLeaks(lab, d);
  });

  it('answers "try again later" (11) when the daemon is down, STATUS "not available" (50)', async () => {
    await d.stop();
    const c = { id: 'down', netns: ns.other.path };
    const [add, del, status] = await Promise.all([cni('ADD', list('1.1.0'), c), cni('DEL', list('1.1.0'), c), exec('STATUS', {}, JSON.stringify(pluginConfig(list('1.1.0'), list('1.1.0').plugins[0], {})))]);
    expect(add.out).toMatchObject({ code: 11, msg: expect.stringContaining('unreachable') });
    expect(del.out).toMatchObject({ code: 11 });
    expect(status.out).toMatchObject({ code: 50 });
  });
});
