// The iptables datapath with real packets: bridges and sandboxes built by hand in a lab
// (the bridge driver's job), the datapath applying Docker's rules in the lab's host
// namespace, and TCP/UDP probes proving isolation, masquerade, DNAT, host-local
// bindings, hairpin, icc=false, unpublish, idempotence, stray removal and teardown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DesiredState, EndpointSpec, NetworkSpec, PortSpec } from '../../src/datapath/datapath.js';
import { IptablesDatapath } from '../../src/datapath/iptables/iptables-datapath.js';
import { ownedRules } from '../../src/datapath/iptables/rules.js';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { ensureAddress, ensureVeth, ip, setUp, type Netns } from '../../src/system/ip.js';

// A server answering every TCP connection and UDP datagram with "NAME PEER-ADDRESS LOCAL-PORT".
const SERVER = `
const net = require('net'), dgram = require('dgram');
const [name, tcp, udp] = process.argv.slice(1);
let pending = 0;
const ready = () => { if (--pending === 0) console.log('ready'); };
for (const p of tcp.split(',').filter(Boolean)) {
  pending++;
  net.createServer((s) => s.end(name + ' ' + s.remoteAddress + ' ' + s.localPort + '\\n')).listen(+p, '0.0.0.0', ready);
}
for (const p of udp.split(',').filter(Boolean)) {
  pending++;
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send(name + ' ' + r.address + ' ' + p + '\\n', r.port, r.address));
  u.bind(+p, '0.0.0.0', ready);
}`;

// One request: prints the reply and exits 0, or exits non-zero on timeout or error.
const CLIENT = `
const net = require('net'), dgram = require('dgram');
const [proto, host, port, ms] = process.argv.slice(1);
setTimeout(() => process.exit(2), +ms);
if (proto === 'tcp') {
  let data = '';
  const s = net.connect({ host, port: +port });
  s.on('data', (d) => (data += d));
  s.on('end', () => { process.stdout.write(data); process.exit(0); });
  s.on('error', () => process.exit(3));
} else {
  const u = dgram.createSocket('udp4');
  u.on('message', (m) => { process.stdout.write(m); process.exit(0); });
  u.send('ping', +port, host);
}`;

const TIMEOUT_MS = 700;
const EXT = UPLINK.externalAddress;
const HOST = UPLINK.hostAddress;

describe('iptables datapath (real namespaces and packets)', () => {
  let lab: Lab;
  let dp: IptablesDatapath;
  const ns: Record<string, Netns> = {};
  let desired: DesiredState;

  const net = (id: string, device: string, third: number, over: Partial<NetworkSpec> = {}): NetworkSpec => ({
    id,
    name: id,
    device,
    subnet: `10.77.${third}.0/24`,
    gateway: `10.77.${third}.1`,
    internal: false,
    icc: true,
    masquerade: true,
    hostBinding: '',
    ...over,
  });
  const A = net('neta', 'brA', 1);
  const B = net('netb', 'brB', 2);
  const I = net('neti', 'brI', 3, { internal: true });
  const N = net('netn', 'brN', 4, { icc: false });
  const endpoints: EndpointSpec[] = [];
  const port = (protocol: 'tcp' | 'udp', hostPort: number, containerPort: number, hostIp = ''): PortSpec => ({
    protocol,
    hostIp,
    hostPort,
    endpointId: 's1-a',
    networkId: A.id,
    containerIp: '10.77.1.2',
    containerPort,
  });
  const p8080 = port('tcp', 8080, 80);
  const p8081 = port('tcp', 8081, 80, '127.0.0.1');
  const p5353 = port('udp', 5353, 53);
  const range = [0, 1, 2].map((i) => port('tcp', 9000 + i, 7000 + i));

  /** A sandbox namespace with one veth per network; the first attachment carries the default route. */
  async function sandbox(name: string, attachments: Array<[NetworkSpec, number]>): Promise<void> {
    const sb = await lab.addNamespace(name);
    ns[name] = sb;
    for (const [i, [n, host]] of attachments.entries()) {
      const hostIf = `v${name}${n.device.slice(2).toLowerCase()}`;
      const ifname = `eth${i}`;
      const addr = n.subnet.replace(/0\/24$/, String(host));
      await ensureVeth(lab.host, hostIf, sb, ifname);
      await ip(lab.host, ['link', 'set', hostIf, 'master', n.device, 'up']);
      await ensureAddress(sb, ifname, `${addr}/24`);
      await setUp(sb, ifname);
      if (i === 0) await ip(sb, ['route', 'add', 'default', 'via', n.gateway]);
      endpoints.push({ id: `${name}-${n.device.slice(2).toLowerCase()}`, networkId: n.id, sandboxId: name, hostIfname: hostIf, ifname, netnsPath: sb.path, ipv4: addr, mac: '' });
    }
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

  /** The reply of a server, or null when nothing answered. */
  async function probe(from: Netns, proto: 'tcp' | 'udp', host: string, p: number): Promise<string | null> {
    const r = await lab.execRaw(from, process.execPath, ['-e', CLIENT, proto, host, String(p), String(TIMEOUT_MS)]);
    return r.code === 0 ? r.stdout.trim() : null;
  }

  const save = async () =>
    (await lab.exec(lab.host, 'iptables-save', []))
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .map((l) => l.replace(/\[\d+:\d+\]/, '[0:0]'))
      .join('\n');

  beforeAll(async () => {
    lab = await Lab.create();
    for (const n of [A, B, I, N]) {
      await ip(lab.host, ['link', 'add', 'name', n.device, 'type', 'bridge']);
      await ensureAddress(lab.host, n.device, `${n.gateway}/24`);
      await setUp(lab.host, n.device);
    }
    await sandbox('s1', [[A, 2]]);
    await sandbox('s2', [[A, 3]]);
    await sandbox('s3', [[B, 2]]);
    await sandbox('s4', [[A, 4], [B, 4]]);
    await sandbox('s5', [[I, 2]]);
    await sandbox('s6', [[N, 2]]);
    await sandbox('s7', [[N, 3]]);
    await Promise.all([
      serve(ns.s1, 's1', [80, 7000, 7001, 7002, 15000], [53]),
      serve(ns.s3, 's3', [80]),
      serve(ns.s5, 's5', [80]),
      serve(ns.s7, 's7', [80]),
      serve(lab.external, 'ext', [80]),
    ]);
    // The outside routes the sandbox subnets via the host: direct access must still be refused.
    await ip(lab.external, ['route', 'add', '10.77.0.0/16', 'via', HOST]);

    dp = new IptablesDatapath(
      { linkPrefix: lab.prefix, instance: lab.prefix, uplink: { ifname: UPLINK.hostIf, ipv4: HOST }, root: lab.tmpDir() },
      { netnsPath: lab.host.path },
    );
    desired = { networks: [A, B, I, N], endpoints, ports: [p8080, p8081, p5353, ...range] };
    await dp.start(desired);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('applies exactly the rendered rules, with the settings they need', async () => {
    const saved = (await save()).split('\n');
    for (const [table, rules] of ownedRules(dp.render())) {
      const start = saved.indexOf(`*${table}`);
      const end = saved.indexOf('COMMIT', start);
      const ours = saved.slice(start, end).filter((l) => /^-A (\S+)/.exec(l)?.[1].startsWith(dp.chains.main));
      expect(ours.sort()).toEqual([...rules].sort());
    }
    expect(saved).toContain(`-A FORWARD -j ${dp.chains.user}`);
    expect(saved).toContain(`-A PREROUTING -m addrtype --dst-type LOCAL -j ${dp.chains.main}`);
    const sysctl = (k: string) => lab.exec(lab.host, 'sysctl', ['-n', k]).then((v) => v.trim());
    expect(await sysctl('net.ipv4.conf.brA.route_localnet')).toBe('1');
    expect(await sysctl('net.bridge.bridge-nf-call-iptables')).toBe('1');
    expect(await lab.exec(lab.host, 'ip', ['-d', 'link', 'show', 'vs1a'])).toMatch(/hairpin on/);
  });

  it('connects sandboxes of one network and isolates networks from each other', async () => {
    expect(await probe(ns.s2, 'tcp', '10.77.1.2', 80)).toBe('s1 10.77.1.3 80');
    expect(await probe(ns.s3, 'tcp', '10.77.1.2', 80)).toBeNull();
    expect(await probe(ns.s1, 'tcp', '10.77.2.2', 80)).toBeNull();
    // A sandbox on both networks reaches both.
    expect(await probe(ns.s4, 'tcp', '10.77.1.2', 80)).toBe('s1 10.77.1.4 80');
    expect(await probe(ns.s4, 'tcp', '10.77.2.2', 80)).toBe('s3 10.77.2.4 80');
  });

  it('masquerades outbound traffic, and an internal network has no way out and no way in', async () => {
    expect(await probe(ns.s1, 'tcp', EXT, 80)).toBe(`ext ${HOST} 80`);
    expect(await probe(ns.s5, 'tcp', EXT, 80)).toBeNull();
    expect(await probe(lab.external, 'tcp', '10.77.3.2', 80)).toBeNull();
    expect(await probe(ns.s1, 'tcp', '10.77.3.2', 80)).toBeNull();
  });

  it('publishes ports to the outside, keeping the client address, and refuses direct access', async () => {
    expect(await probe(lab.external, 'tcp', HOST, 8080)).toBe(`s1 ${EXT} 80`);
    expect(await probe(lab.external, 'udp', HOST, 5353)).toBe(`s1 ${EXT} 53`);
    for (const i of [0, 1, 2]) expect(await probe(lab.external, 'tcp', HOST, 9000 + i)).toBe(`s1 ${EXT} ${7000 + i}`);
    expect(await probe(lab.external, 'tcp', '10.77.1.2', 80)).toBeNull();
    expect(await probe(lab.external, 'tcp', '10.77.2.2', 80)).toBeNull();
  });

  it('binds 127.0.0.1 ports for the host only, and lets the host use published ports', async () => {
    expect(await probe(lab.external, 'tcp', HOST, 8081)).toBeNull();
    expect(await probe(lab.host, 'tcp', '127.0.0.1', 8081)).toBe('s1 10.77.1.1 80');
    expect(await probe(lab.host, 'tcp', '127.0.0.1', 8080)).toBe('s1 10.77.1.1 80');
    expect(await probe(lab.host, 'tcp', HOST, 8080)).toBe('s1 10.77.1.1 80');
  });

  it('hairpins: a sandbox reaches its own and its neighbour\'s published port through the host address', async () => {
    expect(await probe(ns.s1, 'tcp', HOST, 8080)).toBe('s1 10.77.1.1 80');
    expect(await probe(ns.s1, 'udp', HOST, 5353)).toBe('s1 10.77.1.1 53');
    expect(await probe(ns.s2, 'tcp', HOST, 8080)).toBe('s1 10.77.1.3 80');
  });

  it('drops traffic between sandboxes of an icc=false network, not their way out', async () => {
    expect(await probe(ns.s6, 'tcp', '10.77.4.3', 80)).toBeNull();
    expect(await probe(ns.s6, 'tcp', EXT, 80)).toBe(`ext ${HOST} 80`);
  });

  it('is idempotent, keeps rules over stop(), and start() removes strays carrying the prefix', async () => {
    const before = await save();
    await dp.start(desired);
    await dp.ensureNetwork(A);
    await dp.ensureEndpoint(A, endpoints[0]);
    await dp.publish([p8080]);
    await dp.stop();
    expect(await save()).toBe(before);

    const P = dp.chains.main;
    await lab.exec(lab.host, 'iptables', ['-N', `${P}-STRAY`]);
    await lab.exec(lab.host, 'iptables', ['-A', 'FORWARD', '-j', `${P}-STRAY`]);
    await lab.exec(lab.host, 'iptables', ['-t', 'nat', '-N', `${P}-OLD`]);
    await lab.exec(lab.host, 'iptables', ['-t', 'nat', '-A', 'OUTPUT', '-j', `${P}-OLD`]);
    await lab.exec(lab.host, 'iptables', ['-t', 'nat', '-D', 'POSTROUTING', '-j', dp.chains.postrouting]);
    await lab.exec(lab.host, 'iptables', ['-A', dp.chains.user, '-s', '192.0.2.1/32', '-j', 'DROP']);
    await dp.start(desired);
    const after = await save();
    expect(after).not.toMatch(new RegExp(`${P}-(STRAY|OLD)`));
    // The user's chain keeps what the user put there; everything else is as before.
    expect(after.replace(`-A ${dp.chains.user} -s 192.0.2.1/32 -j DROP\n`, '')).toBe(before);
    await lab.exec(lab.host, 'iptables', ['-F', dp.chains.user]);
    expect(await probe(lab.external, 'tcp', HOST, 8080)).toBe(`s1 ${EXT} 80`);
  });

  it('reads its hooks back at most once per window: a hook someone deleted returns with the first change after it', async () => {
    const quick = new IptablesDatapath(
      { linkPrefix: lab.prefix, instance: lab.prefix, uplink: { ifname: UPLINK.hostIf, ipv4: HOST }, root: lab.tmpDir() },
      { netnsPath: lab.host.path, hookRecheckMs: 1_500 },
    );
    await quick.start(desired);
    const hook = ['-t', 'nat', '-C', 'POSTROUTING', '-j', dp.chains.postrouting];
    const hooked = async () => (await lab.execRaw(lab.host, 'iptables', hook)).code === 0;
    await lab.exec(lab.host, 'iptables', ['-t', 'nat', '-D', 'POSTROUTING', '-j', dp.chains.postrouting]);
    // Within the window a change refills its chains without listing the built-in ones.
    await quick.unpublish([p8081]);
    expect(await hooked()).toBe(false);
    await new Promise((r) => setTimeout(r, 1_600));
    await quick.publish([p8081]);
    expect(await hooked()).toBe(true);
    expect(await probe(lab.external, 'tcp', HOST, 8080)).toBe(`s1 ${EXT} 80`);
    await quick.stop();
  });

  it('unpublish removes reachability; a refused change leaves the state as it was', async () => {
    await dp.unpublish([p8080]);
    expect(await probe(lab.external, 'tcp', HOST, 8080)).toBeNull();
    expect(await probe(ns.s1, 'tcp', HOST, 8080)).toBeNull();
    const before = await save();
    await expect(dp.publish([{ ...p5353, containerIp: '10.77.1.3' }])).rejects.toThrow(/already published/);
    expect(await save()).toBe(before);
    await dp.publish([p8080]);
    expect(await probe(lab.external, 'tcp', HOST, 8080)).toBe(`s1 ${EXT} 80`);
  });

  it('renders and applies 10,000 published ports', async () => {
    const many = Array.from({ length: 10_000 }, (_, i) => ({ ...port('tcp', 20_000 + i, 10_000 + i) }));
    let t = performance.now();
    await dp.publish(many);
    const publishAll = performance.now() - t;
    t = performance.now();
    await dp.publish([port('tcp', 19_999, 80)]);
    const publishOneMore = performance.now() - t;
    t = performance.now();
    await dp.start({ ...desired, ports: [...desired.ports, ...many] });
    const startAll = performance.now() - t;
    t = performance.now();
    dp.render();
    const renderOnly = performance.now() - t;
    expect(await probe(lab.external, 'tcp', HOST, 25_000)).toBe(`s1 ${EXT} 15000`);
    t = performance.now();
    await dp.unpublish(many);
    const unpublishAll = performance.now() - t;
    console.log(
      `[iptables] 10,000 ports: render ${renderOnly.toFixed(0)} ms, publish (render+apply) ${publishAll.toFixed(0)} ms, ` +
        `one more port on top ${publishOneMore.toFixed(0)} ms, start() replay ${startAll.toFixed(0)} ms, unpublish all ${unpublishAll.toFixed(0)} ms`,
    );
    expect(publishAll).toBeLessThan(15_000);
    expect(await probe(lab.external, 'tcp', HOST, 25_000)).toBeNull();
  });

  it('teardown leaves no chain carrying the prefix and no jump into one', async () => {
    await dp.teardown();
    const saved = await save();
    expect(saved).not.toContain(dp.chains.main);
    expect(await probe(lab.external, 'tcp', HOST, 8080)).toBeNull();
  });
});
