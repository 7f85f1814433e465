/**
 * bpfnet itself, one setup per datapath: the real daemon in the lab's simulated host, a
 * user-defined bridge network "bench", a server sandbox publishing 8080->80 (HTTP) and
 * 5201->5201 (iperf3), and a client sandbox on the same network. Sandboxes are made through
 * the daemon's API, as the CLI would.
 */
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { netns, type Netns } from '../../src/system/ip.js';
import { callApi, mustCall } from './engine-api.js';
import { HTTPD, PUBLISHED_PORTS, SERVER_PORTS, serverCommand, spawnServers, tuneClient, waitListening } from './servers.js';
import { median } from '../stats.js';
import { BASELINE_RUNS, type PublishedSweep, type Setup, type Target } from './setup.js';

const NETWORK = 'bench';

export class BpfnetSetup implements Setup {
  readonly name: 'ebpf' | 'iptables';
  readonly description: string;
  readonly lab: Lab;
  readonly daemon: LabDaemon;
  targets: Setup['targets'] = {};
  #seq = 0;

  private constructor(datapath: 'ebpf' | 'iptables', lab: Lab, daemon: LabDaemon) {
    this.name = datapath;
    this.lab = lab;
    this.daemon = daemon;
    this.description =
      datapath === 'ebpf'
        ? 'bpfnet, eBPF datapath (TC programs, BPF NAT/conntrack, published ports in a hash map)'
        : "bpfnet, iptables datapath (Docker 28's rules, userland-proxy=false, one DNAT rule per port)";
  }

  static async create(datapath: 'ebpf' | 'iptables'): Promise<BpfnetSetup> {
    const lab = await Lab.create();
    try {
      const daemon = await LabDaemon.start(lab, { datapath });
      const s = new BpfnetSetup(datapath, lab, daemon);
      await s.#build();
      return s;
    } catch (err) {
      await lab.destroy();
      throw err;
    }
  }

  get #socket(): string {
    return this.daemon.socket;
  }

  async #build(): Promise<void> {
    const lab = this.lab;
    await mustCall(this.#socket, 'POST', '/networks/create', { Name: NETWORK, Driver: 'bridge' });
    await this.#create('srv', [`${PUBLISHED_PORTS.http}:${SERVER_PORTS.http}`, `${PUBLISHED_PORTS.iperf}:${SERVER_PORTS.iperf}`], serverCommand());
    await this.#create('cli', [], undefined);
    const srvNs = await this.sandboxNs('srv');
    const cliNs = await this.sandboxNs('cli');
    spawnServers(lab, lab.external);
    await tuneClient(lab.external);
    await tuneClient(cliNs);
    await waitListening(lab, srvNs, [SERVER_PORTS.http, SERVER_PORTS.iperf]);
    await waitListening(lab, lab.external, [SERVER_PORTS.http, SERVER_PORTS.iperf]);
    const srvIp = await this.sandboxIp('srv');
    this.targets = {
      published: { client: lab.external, address: UPLINK.hostAddress, httpPort: PUBLISHED_PORTS.http, iperfPort: PUBLISHED_PORTS.iperf },
      'same-network': { client: cliNs, address: srvIp, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
      egress: { client: cliNs, address: UPLINK.externalAddress, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
    };
  }

  /** POST /sandboxes/create, timed (ms). */
  async #create(name: string, publish: string[], cmd: string[] | undefined): Promise<number> {
    const t = performance.now();
    await mustCall(this.#socket, 'POST', '/sandboxes/create', {
      Name: name,
      Network: NETWORK,
      ...(publish.length ? { Publish: publish } : {}),
      ...(cmd ? { Cmd: cmd, Start: true } : {}),
    });
    return performance.now() - t;
  }

  async #remove(name: string): Promise<void> {
    await mustCall(this.#socket, 'DELETE', `/sandboxes/${encodeURIComponent(name)}?force=1`);
  }

  async #inspect(name: string): Promise<any> {
    return mustCall(this.#socket, 'GET', `/containers/${encodeURIComponent(name)}/json`);
  }

  async sandboxNs(name: string): Promise<Netns> {
    const key: string = (await this.#inspect(name)).NetworkSettings.SandboxKey;
    if (!key.startsWith('/run/netns/')) throw new Error(`sandbox ${name} has no named namespace (${key})`);
    return netns(key.slice('/run/netns/'.length));
  }

  async sandboxIp(name: string): Promise<string> {
    return (await this.#inspect(name)).NetworkSettings.Networks[NETWORK].IPAddress;
  }

  async publishPorts(n: number, first: number): Promise<PublishedSweep> {
    const k = this.#seq++;
    const last = first + n - 1;
    const baselines: number[] = [];
    for (let i = 0; i < BASELINE_RUNS; i++) {
      baselines.push(await this.#create(`swb${k}x${i}`, [], [HTTPD, String(last)]));
      await this.#remove(`swb${k}x${i}`);
    }
    const baselineMs = median(baselines);
    const spec = n === 1 ? `${first}:${first}` : `${first}-${last}:${first}-${last}`;
    const name = `sw${k}`;
    const createMs = await this.#create(name, [spec], [HTTPD, String(last)]);
    try {
      await waitListening(this.lab, await this.sandboxNs(name), [last]);
    } catch (err) {
      await this.#remove(name);
      throw err;
    }
    const target: Target = { client: this.lab.external, address: UPLINK.hostAddress, httpPort: last, iperfPort: 0 };
    return { target, createMs, baselineMs, remove: () => this.#remove(name) };
  }

  async createSandboxes(n: number): Promise<number[]> {
    const k = this.#seq++;
    const times: number[] = [];
    const made: string[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const name = `cp${k}x${i}`;
        times.push(await this.#create(name, [], undefined));
        made.push(name);
      }
    } finally {
      for (const name of made) await this.#remove(name);
    }
    return times;
  }

  async info(): Promise<Record<string, string>> {
    const version = await mustCall(this.#socket, 'GET', '/version').then((v: { Version?: string }) => v.Version ?? 'unknown', () => 'unknown');
    const info: Record<string, string> = { bpfnet: version };
    if (this.name === 'iptables') info.iptables = (await this.lab.exec(this.lab.host, 'iptables', ['--version'])).trim();
    return info;
  }

  /**
   * Removes every sandbox through the daemon first: their processes run in their own process
   * groups, outlive the daemon by design, and would outlive the lab's namespaces too.
   */
  async destroy(): Promise<void> {
    try {
      const list = (await mustCall(this.#socket, 'GET', '/sandboxes')) as Array<{ Id?: string; Name?: string }>;
      for (const sb of list ?? []) {
        const id = sb.Id ?? sb.Name;
        if (id) await callApi(this.#socket, 'DELETE', `/sandboxes/${encodeURIComponent(id)}?force=1`).catch(() => undefined);
      }
    } catch {
      /* the daemon is gone: the lab's teardown does what it can */
    }
    await this.lab.destroy();
  }
}
