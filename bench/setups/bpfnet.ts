/**
 * bpfnet itself, one setup per datapath: the real daemon in the lab's simulated host, a
 * user-defined bridge network "bench", a server sandbox publishing 8080->80 (HTTP) and
 * 5201->5201 (iperf3), and a client sandbox on the same network. Sandboxes are made through
 * the daemon's API, as the CLI would. The eBPF datapath runs twice: "ebpf" with
 * --ebpf-uplink-shortcut off (replies leave through the uplink as they would through a NIC) and
 * "ebpf-shortcut" with it on (bpf_redirect_peer straight into the uplink veth's peer, which only a
 * veth uplink allows). Each checks after start that the setting took: with the shortcut the
 * uplink's own tx counter does not move for replies, without it it does.
 */
import { addUplink6, Lab, UPLINK, UPLINK6 } from '../../src/lab/lab.js';
import { LabDaemon } from '../../src/lab/daemon.js';
import { netns, type Netns } from '../../src/system/ip.js';
import { callApi, mustCall } from './engine-api.js';
import { HTTPD, PUBLISHED_PORTS, SERVER_PORTS, serverCommand, spawnServers, tuneClient, waitListening } from './servers.js';
import { median } from '../stats.js';
import { WRK_REPORT_SCRIPT, parseWrkReport } from '../workloads/wrk.js';
import { BASELINE_RUNS, hostPort, type PublishedSweep, type Setup, type Target } from './setup.js';

const NETWORK = 'bench';
/** IPv6 of the benchmark network (ULA): the IPv6 rows run beside the IPv4 ones. */
const SUBNET6 = 'fd00:be:1::/64';

export type BpfnetSetupName = 'ebpf' | 'ebpf-shortcut' | 'iptables';

const DESCRIPTIONS: Record<BpfnetSetupName, string> = {
  ebpf: 'bpfnet, eBPF datapath, NIC-like uplink (TC programs, BPF NAT/conntrack, published ports in a hash map; replies leave by bpf_redirect as through a NIC)',
  'ebpf-shortcut': "bpfnet, eBPF datapath with the veth-only uplink shortcut (replies enter the uplink veth's peer by bpf_redirect_peer, which a physical NIC does not allow)",
  iptables: "bpfnet, iptables datapath (Docker 28's rules, userland-proxy=false, one DNAT rule per port)",
};

export class BpfnetSetup implements Setup {
  readonly name: BpfnetSetupName;
  readonly description: string;
  readonly lab: Lab;
  readonly daemon: LabDaemon;
  targets: Setup['targets'] = {};
  #seq = 0;

  #uplinkCheck = '';
  #ipv6 = '';

  private constructor(name: BpfnetSetupName, lab: Lab, daemon: LabDaemon) {
    this.name = name;
    this.lab = lab;
    this.daemon = daemon;
    this.description = DESCRIPTIONS[name];
  }

  static async create(name: BpfnetSetupName): Promise<BpfnetSetup> {
    const lab = await Lab.create();
    try {
      // The uplink's IPv6 (before the daemon starts, which reads its uplink's addresses): the NAT66 source and the published ports' IPv6 address.
      await addUplink6(lab);
      const datapath = name === 'iptables' ? 'iptables' : 'ebpf';
      const extraArgs = datapath === 'ebpf' ? ['--ebpf-uplink-shortcut', name === 'ebpf-shortcut' ? 'on' : 'off'] : [];
      const daemon = await LabDaemon.start(lab, { datapath, extraArgs });
      const s = new BpfnetSetup(name, lab, daemon);
      await s.#build();
      if (datapath === 'ebpf') await s.#checkUplinkShortcut();
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
    // Dual-stack when the daemon makes IPv6 networks (Docker's EnableIPv6 and an IPAM config per family); IPv4 only otherwise, and the IPv6 rows are left out.
    const dual = await callApi(this.#socket, 'POST', '/networks/create', { Name: NETWORK, Driver: 'bridge', EnableIPv6: true, IPAM: { Config: [{ Subnet: SUBNET6 }] } });
    if (dual.status >= 300) await mustCall(this.#socket, 'POST', '/networks/create', { Name: NETWORK, Driver: 'bridge' });
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
    const srvIp6 = (await this.#inspect('srv')).NetworkSettings.Networks[NETWORK].GlobalIPv6Address as string | undefined;
    if (srvIp6) {
      this.#ipv6 = `network ${NETWORK} dual-stack (${SUBNET6}), uplink ${UPLINK6.host}`;
      this.targets['published6'] = { client: lab.external, address: UPLINK6.host, httpPort: PUBLISHED_PORTS.http, iperfPort: PUBLISHED_PORTS.iperf };
      this.targets['same-network6'] = { client: cliNs, address: srvIp6, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf };
      this.targets['egress6'] = { client: cliNs, address: UPLINK6.external, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf };
    } else {
      this.#ipv6 = `none: the daemon made network ${NETWORK} without IPv6 (IPv6 networks come with the model branch), so the IPv6 rows are absent`;
    }
  }

  /**
   * Sends 200 requests to the published port and reads the uplink's tx counter around them:
   * bpf_redirect_peer hands replies to the peer without transmitting on the uplink, so the
   * counter stays still with the shortcut and counts every reply without it.
   */
  async #checkUplinkShortcut(): Promise<void> {
    const txPackets = async () => {
      const links = JSON.parse(await this.lab.exec(this.lab.host, 'ip', ['-j', '-s', 'link', 'show', 'dev', UPLINK.hostIf])) as Array<{ stats64?: { tx?: { packets?: number } } }>;
      return links[0]?.stats64?.tx?.packets ?? NaN;
    };
    const t = this.targets.published!;
    const before = await txPackets();
    const out = await this.lab.exec(t.client, 'wrk', ['-t', '1', '-c', '1', '-d', '1s', '-s', WRK_REPORT_SCRIPT, '-H', 'Connection: close', `http://${hostPort(t.address, t.httpPort)}/`]);
    const moved = (await txPackets()) - before;
    const requests = parseWrkReport(out).requests;
    const shortcut = this.name === 'ebpf-shortcut';
    // Each request's replies (SYN-ACK, response, FIN) leave on the uplink without the shortcut; with it only stray ARP does.
    const ok = requests >= 20 && (shortcut ? moved < requests / 10 : moved >= requests);
    if (!ok)
      throw new Error(`${this.name}: uplink ${UPLINK.hostIf} sent ${moved} packets during ${requests} requests: the uplink shortcut is not ${shortcut ? 'on' : 'off'} as asked (or the probe did too few requests)`);
    this.#uplinkCheck = `${shortcut ? 'on' : 'off'} (uplink tx moved by ${moved} packets during ${requests} probe requests)`;
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
    if (this.#uplinkCheck) info.uplinkShortcut = this.#uplinkCheck;
    if (this.#ipv6) info.ipv6 = this.#ipv6;
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
