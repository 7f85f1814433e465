// Real podman 4.3 with network_backend="cni" running containers on a bpfnet network: a conflist
// naming bpfnet-cni in a private CNI config dir (no `podman network create`), podman confined to
// a lab host namespace with its own containers.conf, storage.conf (vfs) and image (the offline
// busybox, `podman import`). Checked by traffic: reach between two containers, isolation from a
// container of another network, `podman run -p` from the external namespace with the client's
// address kept, masquerade seen from outside. Everything podman made is removed afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { buildBusyboxTarball, busyboxHttpd } from '../../src/lab/busybox-image.js';
import { projectRoot } from '../../src/paths.js';
import type { RunResult } from '../../src/system/exec.js';
import { api } from '../support/api.js';
import { requireTool } from '../support/requirements.js';
import { echoServer, peerIp, probe } from '../support/traffic.js';

const PODMAN = requireTool('podman', 'podman');
requireTool('runc', 'runc');

describe('podman 4.3 (CNI backend) on a bpfnet network', () => {
  let lab: Lab;
  let d: LabDaemon;
  let dir = '';
  const ip4: Record<string, string> = {};

  const podman = (...args: string[]): Promise<RunResult> =>
    lab.execRaw(lab.host, PODMAN, args, {
      env: { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'), CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf') },
      timeoutMs: 60_000,
    });
  const ok = async (...args: string[]): Promise<string> => {
    const r = await podman(...args);
    if (r.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  };
  const conflist = (name: string, subnet: string) => ({
    cniVersion: '1.0.0',
    name,
    plugins: [{ type: 'bpfnet-cni', socket: d.socket, subnet, capabilities: { portMappings: true, ips: true, mac: true } }],
  });
  /** podman's own processes (conmon) that outlive a command: found by our directory in their command line, ended by pid. */
  const ourProcesses = (): number[] =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir);
        } catch {
          return false;
        }
      })
      .map(Number);

  beforeAll(async () => {
    lab = await Lab.create();
    dir = join(lab.tmpDir(), 'podman');
    for (const sub of ['root', 'run', 'tmp', 'volumes', 'cni.d']) mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, 'storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/root"\nrunroot = "${dir}/run"\n`);
    writeFileSync(join(dir, 'registries.conf'), 'unqualified-search-registries = []\n');
    writeFileSync(
      join(dir, 'containers.conf'),
      [
        '[containers]',
        'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = ["${projectRoot}/bin", "/usr/lib/cni"]`,
        `network_config_dir = "${dir}/cni.d"`,
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'runtime = "runc"',
        'events_logger = "file"',
        `events_logfile_path = "${dir}/events.log"`,
        `tmp_dir = "${dir}/tmp"`,
        `volume_path = "${dir}/volumes"`,
        `static_dir = "${dir}/root/libpod"`,
        '',
      ].join('\n'),
    );
    d = await LabDaemon.start(lab, { datapath: 'ebpf' });
    writeFileSync(join(dir, 'cni.d', 'pnet.conflist'), JSON.stringify(conflist('pnet', '10.79.0.0/24')));
    writeFileSync(join(dir, 'cni.d', 'pother.conflist'), JSON.stringify(conflist('pother', '10.80.0.0/24')));
    await buildBusyboxTarball(join(dir, 'busybox.tar'));
    await ok('import', join(dir, 'busybox.tar'), 'localhost/busybox:local');
    // Three runs side by side: podman's parallel ADDs race to create the network, the plugin takes whichever made it.
    await Promise.all([
      ok('run', '-d', '--name', 'web', '--network', 'pnet', '-p', '8080:80', '-p', '8081:81', 'localhost/busybox:local', ...busyboxHttpd(80)),
      // --ip and --mac-address reach the plugin in CNI_ARGS (IP=, MAC=).
      ok('run', '-d', '--name', 'client', '--network', 'pnet', '--ip', '10.79.0.77', '--mac-address', '02:00:00:aa:bb:cc', 'localhost/busybox:local', 'sleep', '600'),
      ok('run', '-d', '--name', 'stranger', '--network', 'pother', 'localhost/busybox:local', 'sleep', '600'),
    ]);
    const addrs = (await ok('inspect', '-f', '{{.Name}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', 'web', 'client', 'stranger')).split('\n');
    for (const line of addrs) ip4[line.split(' ')[0]] = line.split(' ')[1];
    // An echo server in the web container's namespace: it tells which client address arrived.
    const sandbox = await ok('inspect', '-f', '{{.NetworkSettings.SandboxKey}}', 'web');
    await echoServer(lab, { name: 'web', path: sandbox }, 'tcp', 81);
    await echoServer(lab, lab.external, 'tcp', 9000);
  });

  afterAll(async () => {
    try {
      if (lab && dir) {
        await podman('rm', '-f', '-t', '0', '-a');
        await podman('rmi', '-a', '-f');
        for (const pid of ourProcesses()) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
      }
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
      await lab?.destroy();
    }
  });

  it('gives each container an address of its bpfnet network from the daemon', async () => {
    expect(ip4.web).toMatch(/^10\.79\.0\.\d+$/);
    expect(ip4.client).toBe('10.79.0.77');
    expect(await ok('exec', 'client', 'cat', '/sys/class/net/eth0/address')).toBe('02:00:00:aa:bb:cc');
    expect(ip4.stranger).toMatch(/^10\.80\.0\.\d+$/);
    const keys = (await api(d.socket, 'GET', '/endpoints')).json.map((e: { Owner: string }) => e.Owner).sort();
    expect(keys).toEqual(['cni:pnet', 'cni:pnet', 'cni:pother']);
  });

  // Busybox-static's wget crashes in getaddrinfo (static glibc): HTTP is spoken through nc.
  const GET = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3";
  const httpFrom = (container: string, host: string, port: number) => podman('exec', container, 'sh', '-c', `${GET} ${host} ${port}`);

  it('reaches a container of the same network, with its own address (no NAT inside the network)', async () => {
    expect((await httpFrom('client', ip4.web, 80)).stdout).toContain('bpfnet');
    expect(peerIp((await ok('exec', 'client', 'nc', '-w', '3', ip4.web, '81')).trim())).toBe(ip4.client);
  });

  it('isolates a container of another network', async () => {
    expect((await podman('exec', 'stranger', 'nc', '-w', '2', ip4.web, '81')).stdout).toBe('');
  });

  it('publishes `podman run -p` ports on the datapath, reached from outside with the client address kept', async () => {
    const http = await lab.execRaw(lab.external, '/bin/sh', ['-c', `${GET.replace('| nc', '| /bin/busybox nc')} ${UPLINK.hostAddress} 8080`]);
    expect(http.stdout).toContain('bpfnet');
    expect(peerIp(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8081))).toBe(UPLINK.externalAddress);
  });

  it('masquerades containers to the host address on the way out', async () => {
    const seen = await ok('exec', 'client', 'nc', '-w', '3', UPLINK.externalAddress, '9000');
    expect(peerIp(seen)).toBe(UPLINK.hostAddress);
  });

  it('podman rm runs DEL: the endpoint, its address and its published ports are gone', async () => {
    await ok('rm', '-f', '-t', '0', 'web');
    const left = (await api(d.socket, 'GET', '/endpoints')).json.map((e: { Owner: string }) => e.Owner).sort();
    expect(left).toEqual(['cni:pnet', 'cni:pother']);
    expect(await probe(lab, lab.external, 'tcp', UPLINK.hostAddress, 8081, 1000)).toBeNull();
    expect(existsSync(join(dir, 'cni.d', 'pnet.conflist'))).toBe(true);
  });
});
