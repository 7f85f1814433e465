// An unmodified dockerd (20.10, confined to the lab host: src/lab/dockerd.ts) on bpfnet's
// network and IPAM plugin (`bpfnet daemon --docker-plugin-dir`): real containers of the
// offline busybox image on `-d bpfnet --ipam-driver bpfnet` networks, checked with real
// traffic — reach by address and by name (dockerd's 127.0.0.11), isolation, --internal,
// icc=false, masquerade, published ports (outside, host, hairpin, client address kept, -P,
// ranges, udp), anti-spoofing, compose, the plugin's refusals, a bpfnet daemon restarted
// under running containers and in the middle of `docker run`, and dockerd --live-restore.
// One lab, one bpfnet daemon and one dockerd for the whole file.
import type { ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabDaemon } from '../../src/lab/daemon.js';
import { BUSYBOX_IMAGE, LabDockerd } from '../../src/lab/dockerd.js';
import { addUplink6, Lab, UPLINK, UPLINK6 } from '../../src/lab/lab.js';
import type { Netns } from '../../src/system/ip.js';
import { echoServer, peerIp, probe } from '../support/traffic.js';
import { requireTool } from '../support/requirements.js';

const HOST = UPLINK.hostAddress;
const EXT = UPLINK.externalAddress;
/** The uplink's IPv6 addresses (as in the IPv6 suite): NAT66's source and the published ports' address. */
const HOST6 = UPLINK6.host;
const EXT6 = UPLINK6.external;

describe('Docker containers on the bpfnet plugin', () => {
  let lab: Lab;
  let bpf: LabDaemon;
  let docker: LabDockerd;
  const servers: ChildProcess[] = [];

  /** The container's network namespace, for probes and servers of the test's own. */
  const nsOf = async (container: string): Promise<Netns> => {
    const path = await docker.netnsPath(container);
    return { name: container, path };
  };
  const ipOf = async (container: string, network: string): Promise<string> =>
    docker.run('inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, container);
  /** A server of ours in the container's namespace that answers with the peer's address. */
  const serveIn = async (container: string, proto: 'tcp' | 'udp', port: number, host?: string) => {
    servers.push(await echoServer(lab, await nsOf(container), proto, port, host));
  };
  /** `docker run -d` of a container that just stays up. */
  const up = (name: string, ...args: string[]) => docker.run('run', '-d', '--name', name, ...args, BUSYBOX_IMAGE, 'sleep', '100000');
  const execOk = async (container: string, ...cmd: string[]) => (await docker.docker(['exec', container, ...cmd], { timeoutMs: 20_000 })).code === 0;

  beforeAll(async () => {
    requireTool('dockerd', 'docker.io');
    requireTool('docker-compose', 'docker-compose');
    lab = await Lab.create();
    // The daemon reads the uplink's IPv6 address at start: NAT66 and IPv6 published ports use it.
    await addUplink6(lab);
    docker = new LabDockerd(lab, { liveRestore: true });
    bpf = await LabDaemon.start(lab, { datapath: 'ebpf', extraArgs: ['--docker-plugin-dir', docker.pluginDir, '--log-level', 'debug'] });
    await docker.start();
    await docker.importBusybox();
    const net = (name: string, ...args: string[]) => docker.run('network', 'create', '-d', 'bpfnet', '--ipam-driver', 'bpfnet', ...args, name);
    await Promise.all([
      net('net1', '--subnet', '10.91.0.0/24', '--gateway', '10.91.0.1'),
      net('net2', '--subnet', '10.92.0.0/24'),
      net('inet', '--internal', '--subnet', '10.93.0.0/24'),
      net('noicc', '-o', 'com.docker.network.bridge.enable_icc=false', '--subnet', '10.94.0.0/24'),
      net('net6', '--ipv6', '--subnet', '10.97.0.0/24', '--subnet', 'fd97::/64'),
    ]);
    await Promise.all([
      ...[['a1', 'net1'], ['a2', 'net1'], ['b1', 'net2'], ['i1', 'inet'], ['i2', 'inet'], ['n1', 'noicc'], ['n2', 'noicc']].map(([name, network]) => up(name, '--network', network)),
      up('d1', '--network', 'net6', '-p', '8086:80', '-p', '[::]:8087:81'),
      up('d2', '--network', 'net6', '--ip6', 'fd97::d2'),
      docker.run('run', '-d', '--name', 'web', '--network', 'net1', '-p', '8080:80', '-p', '9000-9005:81', '-p', '5353:53/udp', '-P', '--expose', '82', BUSYBOX_IMAGE, 'sleep', '100000'),
    ]);
    servers.push(await echoServer(lab, lab.external, 'tcp', 7300, '::'));
    // The server isolation and anti-spoofing aim at (each case runs alone too, with -t).
    await serveIn('a1', 'tcp', 7100);
  });

  afterAll(async () => {
    if (process.env.DP_DEBUG) {
      writeFileSync('/tmp/dp-debug-bpfnet.log', bpf?.log ?? '');
      writeFileSync('/tmp/dp-debug-dockerd.log', docker?.log ?? '');
    }
    for (const s of servers) s.kill('SIGKILL');
    await docker?.destroy();
    await lab?.destroy();
  });

  it('gives containers the plugin IPAM addresses on a veth bpfnet made, with the gateway route', async () => {
    const a1 = await ipOf('a1', 'net1');
    expect(a1).toMatch(/^10\.91\.0\.\d+$/);
    expect(a1).not.toBe('10.91.0.1');
    const inside = await docker.run('exec', 'a1', 'ip', '-o', '-4', 'addr', 'show', 'eth0');
    expect(inside).toContain(`inet ${a1}/24`);
    expect(await docker.run('exec', 'a1', 'ip', 'route', 'show', 'default')).toContain('default via 10.91.0.1 dev eth0');
    // bpfnet holds the network under Docker's id, and the endpoint.
    const dockerId = await docker.run('network', 'inspect', '-f', '{{.Id}}', 'net1');
    expect(await bpf.bpfnet('network', 'ls', '--format', '{{.Name}}')).toContain(`docker-${dockerId.slice(0, 12)}`);
  });

  it('reaches containers of the same network by address and by name (the embedded 127.0.0.11)', async () => {
    const a1 = await ipOf('a1', 'net1');
    const a2 = await ipOf('a2', 'net1');
    expect(peerIp(await probe(lab, await nsOf('a2'), 'tcp', a1, 7100))).toBe(a2);
    expect(await execOk('a2', 'ping', '-c', '1', '-W', '2', 'a1')).toBe(true);
    expect(await docker.run('exec', 'a2', 'nslookup', 'a1', '127.0.0.11')).toContain(a1);
  });

  it('isolates networks from each other', async () => {
    const a1 = await ipOf('a1', 'net1');
    expect(await probe(lab, await nsOf('b1'), 'tcp', a1, 7100, 800)).toBeNull();
    expect(await execOk('b1', 'ping', '-c', '1', '-W', '1', a1)).toBe(false);
  });

  it('masquerades egress to the host uplink address, seen from the external namespace', async () => {
    expect(peerIp(await probe(lab, await nsOf('a1'), 'tcp', EXT, 7300))).toBe(HOST);
  });

  it('dual-stack networks (--ipv6, both pools from the plugin IPAM): IPv6 addresses, reach over -6, NAT66, ports published over IPv6', async () => {
    const ip6Of = (c: string) => docker.run('inspect', '-f', '{{(index .NetworkSettings.Networks "net6").GlobalIPv6Address}}', c);
    const [d1, d2] = [await ip6Of('d1'), await ip6Of('d2')];
    expect(d1).toMatch(/^fd97::[0-9a-f:]+$/);
    expect(d2).toBe('fd97::d2');
    expect(await ipOf('d1', 'net6')).toMatch(/^10\.97\.0\.\d+$/);
    expect(await docker.run('exec', 'd1', 'ip', '-o', '-6', 'addr', 'show', 'eth0')).toContain(`inet6 ${d1}/64`);
    expect(await docker.run('exec', 'd1', 'ip', '-6', 'route', 'show', 'default')).toContain('default via fd97::1 dev eth0');
    // bpfnet shows the endpoint's IPv6 address too (docker port cannot).
    const bpfnetId = (await docker.run('inspect', '-f', '{{(index .NetworkSettings.Networks "net6").EndpointID}}', 'd1')).slice(0, 12);
    expect(JSON.parse(await bpf.bpfnet('inspect', bpfnetId))[0].IPv6Address).toBe(`${d1}/64`);
    await Promise.all([serveIn('d1', 'tcp', 80, '::'), serveIn('d1', 'tcp', 81, '::')]);
    const ns2 = await nsOf('d2');
    expect(await execOk('d2', 'ping', '-6', '-c', '1', '-W', '2', d1)).toBe(true);
    expect(peerIp(await probe(lab, ns2, 'tcp', d1, 80))).toBe(d2);
    // Another network's container has no IPv6 way to it.
    expect(await probe(lab, await nsOf('a2'), 'tcp', d1, 80, 800)).toBeNull();
    expect(peerIp(await probe(lab, await nsOf('d1'), 'tcp', EXT6, 7300))).toBe(HOST6);
    // -p 8086:80 publishes on both families, -p [::]:8087:81 on IPv6 only; the client's address is kept.
    expect(peerIp(await probe(lab, lab.external, 'tcp', HOST6, 8086))).toBe(EXT6);
    expect(peerIp(await probe(lab, lab.external, 'tcp', HOST, 8086))).toBe(EXT);
    expect(peerIp(await probe(lab, lab.external, 'tcp', HOST6, 8087))).toBe(EXT6);
    expect(await probe(lab, lab.external, 'tcp', HOST, 8087, 800)).toBeNull();
  });

  it('publishes ports on the datapath: from outside with the client address kept, from the host, by hairpin; -P, ranges, udp', async () => {
    await serveIn('web', 'tcp', 80);
    await serveIn('web', 'tcp', 81);
    await serveIn('web', 'tcp', 82);
    await serveIn('web', 'udp', 53);
    expect(peerIp(await probe(lab, lab.external, 'tcp', HOST, 8080))).toBe(EXT);
    expect(peerIp(await probe(lab, lab.external, 'udp', HOST, 5353))).toBe(EXT);
    expect(await probe(lab, lab.host, 'tcp', HOST, 8080)).not.toBeNull();
    // Hairpin: a container of the same network through the host's published port.
    expect(await probe(lab, await nsOf('a2'), 'tcp', HOST, 8080)).not.toBeNull();
    // docker port cannot show a remote driver's ports: bpfnet ps does.
    const ps = await bpf.bpfnet('ps');
    const webEp = (await docker.run('inspect', '-f', '{{(index .NetworkSettings.Networks "net1").EndpointID}}', 'web')).slice(0, 12);
    const line = ps.split('\n').find((l) => l.includes(webEp));
    expect(line, ps).toBeDefined();
    expect(line).toContain('8080->80/tcp');
    const ranged = Number(/:(900[0-5])->81\/tcp/.exec(line!)?.[1]);
    expect(peerIp(await probe(lab, lab.external, 'tcp', HOST, ranged))).toBe(EXT);
    const ephemeral = Number(/:(\d+)->82\/tcp/.exec(line!)?.[1]);
    expect(ephemeral).toBeGreaterThanOrEqual(32768);
    expect(peerIp(await probe(lab, lab.external, 'tcp', HOST, ephemeral))).toBe(EXT);
    await docker.run('rm', '-f', 'web');
    expect(await probe(lab, lab.external, 'tcp', HOST, 8080, 800)).toBeNull();
  });

  it('--internal networks reach inside only (no default route, no way out)', async () => {
    await serveIn('i1', 'tcp', 7100);
    expect(await probe(lab, await nsOf('i2'), 'tcp', await ipOf('i1', 'inet'), 7100)).not.toBeNull();
    expect(await docker.run('exec', 'i1', 'ip', 'route')).not.toContain('default');
    // Even with a route of its own, nothing leaves the network.
    const i1 = await nsOf('i1');
    await lab.exec(i1, 'ip', ['route', 'add', 'default', 'via', '10.93.0.1']);
    expect(await probe(lab, i1, 'tcp', EXT, 7300, 800)).toBeNull();
  });

  it('icc=false keeps containers of one network apart, while egress still works', async () => {
    await serveIn('n1', 'tcp', 7100);
    expect(await probe(lab, await nsOf('n2'), 'tcp', await ipOf('n1', 'noicc'), 7100, 800)).toBeNull();
    expect(peerIp(await probe(lab, await nsOf('n2'), 'tcp', EXT, 7300))).toBe(HOST);
  });

  it('drops packets whose source address is not the container\'s own (anti-spoofing)', async () => {
    const a2 = await nsOf('a2');
    const a1 = await ipOf('a1', 'net1');
    const from = async (src: string) => {
      const script = `const s=require('net').connect({host:'${a1}',port:7100,localAddress:'${src}'});s.on('data',d=>{process.stdout.write(d);process.exit(0)});s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(2),1500)`;
      return (await lab.execRaw(a2, process.execPath, ['-e', script])).stdout.trim();
    };
    await lab.exec(a2, 'ip', ['addr', 'add', '10.91.0.200/32', 'dev', 'eth0']);
    try {
      expect(peerIp(await from(await ipOf('a2', 'net1')))).toBe(await ipOf('a2', 'net1'));
      expect(await from('10.91.0.200')).toBe('');
    } finally {
      await lab.exec(a2, 'ip', ['addr', 'del', '10.91.0.200/32', 'dev', 'eth0']);
    }
  });

  it('several IPv6 subnets on one network (--subnet twice with --ipv6): a gateway for each, --ip6 from either, reach between them', async () => {
    await docker.run('network', 'create', '-d', 'bpfnet', '--ipam-driver', 'bpfnet', '--ipv6', '--subnet', '10.89.0.0/24', '--subnet', 'fd94:a::/64', '--subnet', 'fd94:b::/64', 'multi6');
    try {
      await up('m1', '--network', 'multi6', '--ip6', 'fd94:a::11');
      await up('m2', '--network', 'multi6', '--ip6', 'fd94:b::12');
      const net = JSON.parse(await bpf.bpfnet('network', 'inspect', `docker-${(await docker.run('network', 'inspect', '-f', '{{.Id}}', 'multi6')).slice(0, 12)}`))[0];
      expect(net.IPAM.Config.map((c: { Subnet: string }) => c.Subnet).sort()).toEqual(['10.89.0.0/24', 'fd94:a::/64', 'fd94:b::/64']);
      expect(await docker.run('exec', 'm2', 'ip', '-6', 'route', 'show', 'default')).toContain('default via fd94:b::1 dev eth0');
      expect(await docker.run('exec', 'm2', 'ip', '-o', '-6', 'addr', 'show', 'eth0')).toContain('inet6 fd94:b::12/64');
      expect(await execOk('m2', 'ping', '-6', '-c', '1', '-W', '2', 'fd94:a::11')).toBe(true);
      expect(await execOk('m1', 'ping', '-6', '-c', '1', '-W', '2', 'fd94:b::12')).toBe(true);
    } finally {
      await docker.docker(['rm', '-f', 'm1', 'm2']);
      await docker.docker(['network', 'rm', 'multi6']);
    }
  });

  it('answers hostile plugin requests with the protocol\'s error field and keeps serving', async () => {
    const socket = join(docker.pluginDir, 'bpfnet.sock');
    const post = (path: string, body: string) =>
      new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
        const req = request({ socketPath: socket, path, method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
        });
        req.on('error', reject);
        req.end(body);
      });
    expect((await post('/Plugin.Activate', '')).json).toEqual({ Implements: ['NetworkDriver', 'IpamDriver'] });
    expect((await post('/NetworkDriver.GetCapabilities', '{}')).json).toEqual({ Scope: 'local', ConnectivityScope: 'local' });
    expect((await post('/NetworkDriver.CreateNetwork', '{not json')).json.Err).toBe('request body is not valid JSON');
    expect((await post('/NetworkDriver.CreateNetwork', '[1,2]')).json.Err).toBe('request body must be a JSON object');
    expect((await post('/NetworkDriver.CreateNetwork', JSON.stringify({ NetworkID: 'x'.repeat(500) }))).json.Err).toMatch(/NetworkID must be an id/);
    expect((await post('/NetworkDriver.CreateNetwork', JSON.stringify({ NetworkID: 'n1', IPv4Data: [{ Pool: '10.99.0.0/24' }], IPv6Data: [{ Pool: '10.98.0.0/24' }] }))).json.Err).toBe('invalid IPv6 pool "10.98.0.0/24"');
    expect((await post('/NetworkDriver.CreateNetwork', JSON.stringify({ NetworkID: 'n1', IPv4Data: [{ Pool: '10.99.0.0/24' }], IPv6Data: [{ Pool: 'fd98::/64' }, { Pool: 'fd98::/80' }] }))).json.Err).toMatch(/Pool overlaps/);
    expect((await post('/NetworkDriver.CreateNetwork', JSON.stringify({ NetworkID: 'n1', IPv4Data: [{ Pool: '10.99.0.0/24' }], Options: { 'com.docker.network.enable_ipv6': true } }))).json.Err).toMatch(/--ipv6 needs an IPv6 pool/);
    expect((await post('/NetworkDriver.CreateEndpoint', JSON.stringify({ NetworkID: 'nope', EndpointID: 'e1', Interface: { Address: '10.99.0.5/24', AddressIPv6: 'fd99::zz/64' } }))).json.Err).toMatch(/invalid Interface.AddressIPv6/);
    expect((await post('/NetworkDriver.CreateEndpoint', JSON.stringify({ NetworkID: 'nope', EndpointID: 'e1', Interface: { Address: '10.99.0.5/24' } }))).json.Err).toMatch(/is not a bpfnet network/);
    expect((await post('/NetworkDriver.Join', JSON.stringify({ NetworkID: 'nope', EndpointID: 'e1', SandboxKey: '../x' }))).json.Err).toBeTruthy();
    expect((await post('/NetworkDriver.ProgramExternalConnectivity', JSON.stringify({ NetworkID: 'nope', EndpointID: 'e1', Options: { 'com.docker.network.portmap': [{ Proto: 6, Port: 99999 }] } }))).json.Err).toBeTruthy();
    expect((await post('/IpamDriver.RequestPool', JSON.stringify({ Pool: '10.91.0.0/16' }))).json.Error).toMatch(/overlaps/);
    expect((await post('/IpamDriver.RequestPool', JSON.stringify({ Pool: '10.99.0.1/24' }))).json.Error).toMatch(/host bits are set/);
    expect((await post('/IpamDriver.RequestAddress', JSON.stringify({ PoolID: 'no-such-pool' }))).json.Error).toBe('no pool no-such-pool');
    expect((await post('/IpamDriver.RequestAddress', JSON.stringify({ PoolID: 1 }))).json.Error).toMatch(/PoolID/);
    expect((await post('/NetworkDriver.Bogus', '{}')).status).toBe(404);
    // Still serving dockerd.
    expect(await execOk('a2', 'ping', '-c', '1', '-W', '2', 'a1')).toBe(true);
  });

  it('refuses a bad driver option and an address in use with the plugin\'s message, leaving nothing half made', async () => {
    const bad = await docker.docker(['network', 'create', '-d', 'bpfnet', '--ipam-driver', 'bpfnet', '-o', 'com.docker.network.bridge.enable_icc=maybe', '--subnet', '10.96.0.0/24', 'bad']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('invalid value "maybe" for option com.docker.network.bridge.enable_icc');
    // dockerd released the pool: the same subnet is free again.
    await docker.run('network', 'create', '-d', 'bpfnet', '--ipam-driver', 'bpfnet', '--subnet', '10.96.0.0/24', 'good');
    await docker.run('network', 'rm', 'good');
    await up('s1', '--network', 'net1', '--ip', '10.91.0.50');
    const taken = await docker.docker(['run', '-d', '--name', 's2', '--network', 'net1', '--ip', '10.91.0.50', BUSYBOX_IMAGE, 'sleep', '1000']);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain('Address already in use');
    await docker.docker(['rm', '-f', 's1', 's2']);
    // Both endpoints are gone from bpfnet, and the address is free again.
    await up('s3', '--network', 'net1', '--ip', '10.91.0.50');
    await docker.run('rm', '-f', 's3');
  });

  it('docker-compose up -d / down with the ipam block (subnet, ip_range, gateway, aux_addresses), names and ports; nothing left behind', async () => {
    const dir = lab.tmpDir();
    const file = join(dir, 'compose.yml');
    writeFileSync(
      file,
      [
        'version: "2.4"',
        'services:',
        '  web: { image: "busybox:local", command: ["sleep", "100000"], ports: ["8090:80"], networks: [net1] }',
        '  client: { image: "busybox:local", command: ["sleep", "100000"], networks: [net1] }',
        'networks:',
        '  net1:',
        '    driver: bpfnet',
        '    ipam:',
        '      driver: bpfnet',
        '      config:',
        '        - { subnet: 10.95.0.0/24, ip_range: 10.95.0.128/25, gateway: 10.95.0.1, aux_addresses: { printer: 10.95.0.128 } }',
        '',
      ].join('\n'),
    );
    const linksBefore = (await lab.exec(lab.host, 'ip', ['-o', 'link'])).split('\n').length;
    const upR = await docker.compose(file, 'proj', ['up', '-d']);
    expect(upR.code, upR.stderr).toBe(0);
    const client = await ipOf('proj_client_1', 'proj_net1');
    const web = await ipOf('proj_web_1', 'proj_net1');
    for (const a of [client, web]) {
      expect(a).toMatch(/^10\.95\.0\.(\d+)$/);
      expect(Number(a.split('.')[3])).toBeGreaterThan(128);
    }
    expect(await docker.run('exec', 'proj_client_1', 'ip', 'route', 'show', 'default')).toContain('via 10.95.0.1');
    expect(await execOk('proj_client_1', 'ping', '-c', '1', '-W', '2', 'web')).toBe(true);
    await serveIn('proj_web_1', 'tcp', 80);
    expect(peerIp(await probe(lab, lab.external, 'tcp', HOST, 8090))).toBe(EXT);
    const downR = await docker.compose(file, 'proj', ['down', '-t', '0']);
    expect(downR.code, downR.stderr).toBe(0);
    expect(await bpf.bpfnet('network', 'ls', '--format', '{{.Name}} {{.Labels}}')).not.toContain('10.95');
    expect(await bpf.bpfnet('ps')).not.toContain('10.95.0.');
    expect((await lab.exec(lab.host, 'ip', ['-o', 'link'])).split('\n').length).toBe(linksBefore);
    expect(await probe(lab, lab.external, 'tcp', HOST, 8090, 800)).toBeNull();
  });

  it('a host port is taken whichever came first: a bpfnet sandbox\'s -p or a Docker container\'s', async () => {
    await bpf.bpfnet('run', '-d', '--name', 'sbfirst', '-p', '8095:80');
    const refused = await docker.docker(['run', '-d', '--name', 'dc1', '--network', 'net1', '-p', '8095:80', BUSYBOX_IMAGE, 'sleep', '1000']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('Bind for 0.0.0.0:8095/tcp failed: port is already allocated (by bpfnet sandbox sbfirst)');
    await up('dc2', '--network', 'net1', '-p', '8096:80');
    const ep = (await docker.run('inspect', '-f', '{{(index .NetworkSettings.Networks "net1").EndpointID}}', 'dc2')).slice(0, 12);
    const second = await bpf.cli(['run', '-d', '--name', 'sbsecond', '-p', '8096:80']);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain(`Bind for 0.0.0.0:8096 failed: port is already allocated (by Docker endpoint ${ep})`);
    // Released by either side, the port is free for the other.
    await docker.docker(['rm', '-f', 'dc1', 'dc2']);
    await bpf.bpfnet('run', '-d', '--name', 'sbsecond', '-p', '8096:80');
    await bpf.bpfnet('rm', '-f', 'sbfirst', 'sbsecond');
    await up('dc3', '--network', 'net1', '-p', '8095:80');
    await docker.run('rm', '-f', 'dc3');
  });

  it('a container killed while bpfnet is down: at start its endpoint is dropped: addresses (bpfnet\'s and the Docker pool\'s), port, datapath, veth', async () => {
    await up('k1', '--network', 'net6', '--ip', '10.97.0.77', '-p', '8097:80');
    const ep = (await docker.run('inspect', '-f', '{{(index .NetworkSettings.Networks "net6").EndpointID}}', 'k1')).slice(0, 12);
    // Destroying the namespace, dockerd moves the container's interface back to the host (the veth survives).
    const linksBefore = (await lab.exec(lab.host, 'ip', ['-o', 'link'])).split('\n').length;
    await bpf.kill();
    // With bpfnet down, dockerd retries each of its five calls (Revoke, Leave, DeleteEndpoint, two
    // ReleaseAddress) for 15 s, then gives up and removes the namespace: 75 s. A socket that refuses
    // every call at once ends the same way (dockerd treats both as the call failing) in a second.
    const socket = join(docker.pluginDir, 'bpfnet.sock');
    rmSync(socket, { force: true });
    const calls: string[] = [];
    const refuser = createServer((req, res) => {
      calls.push(req.url ?? '');
      req.resume();
      res.end(JSON.stringify({ Err: 'bpfnet is down', Error: 'bpfnet is down' }));
    });
    await new Promise<void>((r) => refuser.listen(socket, r));
    try {
      await docker.run('kill', 'k1');
      const t0 = Date.now();
      // dockerd is done with k1 when it has asked to release its addresses (the last of its calls).
      while (calls.filter((c) => c === '/IpamDriver.ReleaseAddress').length < 2) {
        if (Date.now() - t0 > 30_000) throw new Error(`dockerd did not clean up after k1 within 30 s (calls: ${calls.join(' ')})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await new Promise<void>((r) => refuser.close(() => r()));
      rmSync(socket, { force: true });
    }
    expect(calls).toEqual(expect.arrayContaining(['/NetworkDriver.Leave', '/NetworkDriver.DeleteEndpoint', '/IpamDriver.ReleaseAddress']));
    await bpf.start();
    expect(bpf.log).toMatch(new RegExp(`reconcile: dropped foreign endpoint Docker endpoint ${ep} on network docker-\\w+ .*freed 10\\.97\\.0\\.77 and fd97::[0-9a-f:]+, withdrew ports 8097/tcp`));
    expect(await bpf.bpfnet('ps')).not.toContain(ep);
    // The veth pair dockerd gave back is gone.
    expect((await lab.exec(lab.host, 'ip', ['-o', 'link'])).split('\n').length).toBe(linksBefore - 1);
    await docker.run('rm', '-f', 'k1');
    // The address (in bpfnet's network and in the Docker pool dockerd could not release it from) and the port are free again, on the datapath too.
    await up('k2', '--network', 'net6', '--ip', '10.97.0.77', '-p', '8097:80');
    await serveIn('k2', 'tcp', 80, '::');
    expect(peerIp(await probe(lab, lab.external, 'tcp', HOST, 8097))).toBe(EXT);
    await docker.run('rm', '-f', 'k2');
    expect(await probe(lab, lab.external, 'tcp', HOST, 8097, 800)).toBeNull();
  });

  it('a bpfnet daemon restarted under running containers: traffic keeps flowing, endpoints are re-adopted', async () => {
    const a1 = await ipOf('a1', 'net1');
    await docker.run('run', '-d', '--name', 'pub', '--network', 'net1', '-p', '8081:80', BUSYBOX_IMAGE, 'sleep', '100000');
    await Promise.all([serveIn('pub', 'tcp', 80), serveIn('a1', 'tcp', 7101)]);
    expect(await probe(lab, await nsOf('a2'), 'tcp', a1, 7101)).not.toBeNull();
    await bpf.kill();
    // Down: the pinned datapath still forwards, publishes and masquerades.
    expect(await probe(lab, await nsOf('a2'), 'tcp', a1, 7101)).not.toBeNull();
    expect(peerIp(await probe(lab, lab.external, 'tcp', HOST, 8081))).toBe(EXT);
    expect(peerIp(await probe(lab, await nsOf('a1'), 'tcp', EXT, 7300))).toBe(HOST);
    await bpf.start();
    expect(await probe(lab, await nsOf('a2'), 'tcp', a1, 7101)).not.toBeNull();
    expect(peerIp(await probe(lab, lab.external, 'tcp', HOST, 8081))).toBe(EXT);
    expect(await bpf.bpfnet('ps')).toContain('8081->80/tcp');
    // The re-adopted endpoint leaves and is deleted as usual.
    await docker.run('rm', '-f', 'pub');
    expect(await probe(lab, lab.external, 'tcp', HOST, 8081, 800)).toBeNull();
    expect(await bpf.bpfnet('ps')).not.toContain('8081->80/tcp');
  });

  it('a bpfnet daemon restarted in the middle of docker run: dockerd retries and the container is served', async () => {
    await bpf.kill();
    const running = docker.docker(['run', '-d', '--name', 'mid', '--network', 'net1', BUSYBOX_IMAGE, 'sleep', '100000'], { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 1500));
    await bpf.start();
    const r = await running;
    expect(r.code, r.stderr).toBe(0);
    await serveIn('mid', 'tcp', 7100);
    expect(await probe(lab, await nsOf('a2'), 'tcp', await ipOf('mid', 'net1'), 7100)).not.toBeNull();
  });

  it('dockerd --live-restore restarted: containers keep their traffic, and leave cleanly afterwards', async () => {
    const a1 = await ipOf('a1', 'net1');
    const a2 = await nsOf('a2');
    await serveIn('a1', 'tcp', 7102);
    await docker.stopDaemon();
    expect(await probe(lab, a2, 'tcp', a1, 7102)).not.toBeNull();
    await docker.start();
    expect(await probe(lab, a2, 'tcp', a1, 7102)).not.toBeNull();
    expect(await execOk('a2', 'ping', '-c', '1', '-W', '2', 'a1')).toBe(true);
    await docker.run('rm', '-f', 'a1');
    expect(await probe(lab, a2, 'tcp', a1, 7102, 800)).toBeNull();
    await up('a3', '--network', 'net1');
    expect(await execOk('a3', 'ping', '-c', '1', '-W', '2', 'a2')).toBe(true);
  });
});
