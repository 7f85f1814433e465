// An unmodified dockerd (20.10, confined to the lab host: src/lab/dockerd.ts) on bpfnet's
// network and IPAM plugin (`bpfnet daemon --docker-plugin-dir`): real containers of the
// offline busybox image on `-d bpfnet --ipam-driver bpfnet` networks, checked with real
// traffic — reach by address and by name (dockerd's 127.0.0.11), isolation, --internal,
// icc=false, masquerade, published ports (outside, host, hairpin, client address kept, -P,
// ranges, udp), anti-spoofing, compose, the plugin's refusals, a bpfnet daemon restarted
// under running containers and in the middle of `docker run`, and dockerd --live-restore.
// One lab, one bpfnet daemon and one dockerd for the whole file.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabDaemon } from '../../src/lab/daemon.js';
import { BUSYBOX_IMAGE, LabDockerd } from '../../src/lab/dockerd.js';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import type { Netns } from '../../src/system/ip.js';
import { echoServer, peerIp, probe } from '../support/traffic.js';
import { requireTool } from '../support/requirements.js';

const HOST = UPLINK.hostAddress;
const EXT = UPLINK.externalAddress;

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
  const serveIn = async (container: string, proto: 'tcp' | 'udp', port: number) => {
    servers.push(await echoServer(lab, await nsOf(container), proto, port));
  };
  /** `docker run -d` of a container that just stays up. */
  const up = (name: string, ...args: string[]) => docker.run('run', '-d', '--name', name, ...args, BUSYBOX_IMAGE, 'sleep', '100000');
  const execOk = async (container: string, ...cmd: string[]) => (await docker.docker(['exec', container, ...cmd], { timeoutMs: 20_000 })).code === 0;

  beforeAll(async () => {
    requireTool('dockerd', 'docker.io');
    requireTool('docker-compose', 'docker-compose');
    lab = await Lab.create();
    docker = new LabDockerd(lab, { liveRestore: true });
    bpf = await LabDaemon.start(lab, { datapath: 'ebpf', extraArgs: ['--docker-plugin-dir', docker.pluginDir, '--log-level', 'debug'] });
    await docker.start();
    await docker.importBusybox();
    await docker.run('network', 'create', '-d', 'bpfnet', '--ipam-driver', 'bpfnet', '--subnet', '10.91.0.0/24', '--gateway', '10.91.0.1', 'net1');
    await docker.run('network', 'create', '-d', 'bpfnet', '--ipam-driver', 'bpfnet', '--subnet', '10.92.0.0/24', 'net2');
    await Promise.all([up('a1', '--network', 'net1'), up('a2', '--network', 'net1'), up('b1', '--network', 'net2')]);
    servers.push(await echoServer(lab, lab.external, 'tcp', 7300));
  });

  afterAll(async () => {
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
    await serveIn('a1', 'tcp', 7100);
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

  it('publishes ports on the datapath: from outside with the client address kept, from the host, by hairpin; -P, ranges, udp', async () => {
    await docker.run('run', '-d', '--name', 'web', '--network', 'net1', '-p', '8080:80', '-p', '9000-9005:81', '-p', '5353:53/udp', '-P', '--expose', '82', BUSYBOX_IMAGE, 'sleep', '100000');
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
});
