/**
 * Real dockerd (20.10, confined to the lab host: src/lab/dockerd.ts) running real containers
 * of the offline busybox image, in two setups measured side by side:
 * - "docker+bpfnet": the containers on a `-d bpfnet --ipam-driver bpfnet` network, bpfnet's
 *   daemon serving the plugin, its eBPF datapath forwarding, publishing and masquerading;
 * - "docker": the same dockerd with its own bridge driver and iptables rules inside the lab
 *   host, --userland-proxy=false (Docker's default datapath, its real rules, not a rendering);
 * - "docker+floor": the docker+bpfnet setup with the floor's fixed translation (floor.ts) before
 *   the datapath's filters on the uplink and the server's host veth: the floor for Docker's
 *   containers, which carry what Docker puts in them (its embedded DNS's NAT rules, and so the
 *   kernel's conntrack, in every container on a user-defined network) whatever the driver.
 * The benchmark's servers (httpd, iperf3) and clients run in the containers' network
 * namespaces (entered by path), so both setups run the same binaries over their own network
 * paths. createSandboxes() is the container start time: `docker run -d` until the
 * container's first packet reaches a listener in the external namespace.
 */
import type { ChildProcess } from 'node:child_process';
import { LabDaemon } from '../../src/lab/daemon.js';
import { BUSYBOX_IMAGE, LabDockerd } from '../../src/lab/dockerd.js';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { links, type Netns } from '../../src/system/ip.js';
import { PUBLISHED_PORTS, SERVER_PORTS, startServers } from './servers.js';
import { attachFloor, linkIn } from './floor.js';
import { DNS_FILTER_PRIORITY } from '../../src/datapath/ebpf/hooks.js';
import type { Setup } from './setup.js';

const SUBNET = '192.0.2.0/24';
/**
 * Where a starting container sends its first packet (a listener in the external namespace).
 * Below 1024: the external namespace is a client namespace whose ephemeral range is 1024-65535
 * (tuneClient), and a connection-rate run before the control plane left port 7400 held by a
 * client socket (listen: EADDRINUSE, every start sample lost).
 */
const FIRST_PACKET_PORT = 740;

export type DockerEngineKind = 'docker' | 'docker+bpfnet' | 'docker+floor';

export class DockerEngineSetup implements Setup {
  readonly name: DockerEngineKind;
  readonly description: string;
  readonly lab: Lab;
  targets: Setup['targets'] = {};
  readonly #docker: LabDockerd;
  #bpfnet?: LabDaemon;
  #listener?: ChildProcess;
  #accepts = 0;
  #acceptWaiters: Array<() => void> = [];

  private constructor(kind: DockerEngineKind, lab: Lab, docker: LabDockerd) {
    this.name = kind;
    this.lab = lab;
    this.#docker = docker;
    this.description = {
      docker: "dockerd 20.10's own bridge driver and iptables rules (userland-proxy=false) inside the lab host, real containers",
      'docker+bpfnet': "the same dockerd with its containers on bpfnet's Docker network and IPAM plugin (eBPF datapath), real containers",
      'docker+floor': "docker+bpfnet's containers with the floor's fixed translation (no map, no state, no check) before the datapath on the uplink and the server's host veth: the floor for Docker's containers",
    }[kind];
  }

  static async create(kind: DockerEngineKind): Promise<DockerEngineSetup> {
    const lab = await Lab.create();
    const docker = new LabDockerd(lab, { ownBridge: kind === 'docker' });
    const s = new DockerEngineSetup(kind, lab, docker);
    try {
      if (kind !== 'docker') s.#bpfnet = await LabDaemon.start(lab, { datapath: 'ebpf', extraArgs: ['--docker-plugin-dir', docker.pluginDir] });
      await docker.start();
      await docker.importBusybox();
      const driver = kind === 'docker' ? [] : ['-d', 'bpfnet', '--ipam-driver', 'bpfnet'];
      await docker.run('network', 'create', ...driver, '--subnet', SUBNET, 'benchnet');
      const run = (name: string, ...args: string[]) => docker.run('run', '-d', '--name', name, '--network', 'benchnet', ...args, BUSYBOX_IMAGE, 'sleep', '2147483647');
      await run('srv', '-p', `${PUBLISHED_PORTS.http}:${SERVER_PORTS.http}`, '-p', `${PUBLISHED_PORTS.iperf}:${SERVER_PORTS.iperf}`);
      await run('cli');
      const srv = await s.#ns('srv');
      const cli = await s.#ns('cli');
      await startServers(lab, { server: srv, client: cli });
      const srvIp = await docker.run('inspect', '-f', '{{(index .NetworkSettings.Networks "benchnet").IPAddress}}', 'srv');
      if (kind === 'docker+floor') {
        await s.#floorFor(srv, srvIp);
        s.targets = { published: { client: lab.external, address: UPLINK.hostAddress, httpPort: PUBLISHED_PORTS.http, iperfPort: PUBLISHED_PORTS.iperf } };
        return s;
      }
      s.targets = {
        published: { client: lab.external, address: UPLINK.hostAddress, httpPort: PUBLISHED_PORTS.http, iperfPort: PUBLISHED_PORTS.iperf },
        'same-network': { client: cli, address: srvIp, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
        egress: { client: cli, address: UPLINK.externalAddress, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
      };
    } catch (err) {
      await s.destroy();
      throw err;
    }
    return s;
  }

  /** The floor before bpfnet's filters (and its DNS filter) for the server container behind its host veth. */
  async #floorFor(srv: Netns, address: string): Promise<void> {
    const peer = (await linkIn(this.lab, srv, 'eth0')).link_index;
    const hostVeth = (await links(this.lab.host)).find((l) => l.ifindex === peer)?.ifname;
    if (!hostVeth) throw new Error(`docker+floor: no host veth for the server container's eth0 (peer index ${peer})`);
    await attachFloor(this.lab, { ns: srv, hostVeth, address }, DNS_FILTER_PRIORITY - 1);
  }

  async #ns(container: string): Promise<Netns> {
    return { name: `${this.name}:${container}`, path: await this.#docker.netnsPath(container) };
  }

  /** A listener in the external namespace that counts accepted connections (first packets of starting containers). */
  async #firstPacketListener(): Promise<void> {
    if (this.#listener) return;
    const script = `require('net').createServer((s)=>{console.log('a');s.destroy()}).listen(${FIRST_PACKET_PORT},()=>console.log('ready'))`;
    const child = this.lab.spawn(this.lab.external, process.execPath, ['-e', script]);
    this.#listener = child;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    // A listener that died is started afresh by the next call, not waited on for ever.
    child.once('exit', () => {
      if (this.#listener === child) this.#listener = undefined;
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => {
        for (const line of d.toString().split('\n')) {
          if (line === 'ready') resolve();
          if (line === 'a') {
            this.#accepts++;
            for (const w of this.#acceptWaiters.splice(0)) w();
          }
        }
      });
      child.once('exit', (code) => reject(new Error(`first-packet listener exited (${code}): ${stderr.trim().split('\n').find((l) => /Error/.test(l)) ?? stderr.trim()}`)));
    });
  }

  #nextAccept(after: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no first packet within ${timeoutMs} ms`)), timeoutMs);
      const check = () => {
        if (this.#accepts > after) {
          clearTimeout(timer);
          resolve();
        } else this.#acceptWaiters.push(check);
      };
      check();
    });
  }

  /** Container start time: `docker run -d` to the container's first packet at the external listener, n times in a row. */
  async createSandboxes(n: number): Promise<number[]> {
    await this.#firstPacketListener();
    const out: number[] = [];
    const names: string[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const name = `start${i}`;
        names.push(name);
        const before = this.#accepts;
        const t0 = performance.now();
        const accepted = this.#nextAccept(before, 30_000);
        // Handled now: a docker run slower than the timeout must fail this sample (below), not
        // kill the whole run with an unhandled rejection while it is still being awaited.
        accepted.catch(() => undefined);
        await this.#docker.run(
          'run', '-d', '--name', name, '--network', 'benchnet', BUSYBOX_IMAGE,
          'sh', '-c', `until nc ${UPLINK.externalAddress} ${FIRST_PACKET_PORT} </dev/null; do :; done; exec sleep 2147483647`,
        );
        await accepted;
        out.push(performance.now() - t0);
      }
    } finally {
      if (names.length > 0) await this.#docker.docker(['rm', '-f', ...names], { timeoutMs: 120_000 });
    }
    return out;
  }

  async info(): Promise<Record<string, string>> {
    return {
      dockerd: await this.#docker.run('version', '--format', '{{.Server.Version}}'),
      datapath: { docker: 'bridge + iptables, userland-proxy=false', 'docker+bpfnet': 'bpfnet plugin, eBPF', 'docker+floor': 'bpfnet plugin, the floor before its eBPF datapath' }[this.name],
    };
  }

  async destroy(): Promise<void> {
    await this.#docker.destroy().catch(() => undefined);
    await this.lab.destroy();
  }
}
