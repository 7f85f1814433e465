/**
 * The CNI reference plugins (Debian's containernetworking-plugins) as a peer nobody here
 * wrote: bridge (isGateway, ipMasq) with host-local IPAM, then portmap for published ports —
 * podman's classic network — driven through the CNI protocol by bench's small runtime, inside
 * the lab's simulated host. Servers and clients are plain namespaces, as a runtime's
 * containers are.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { run, stop } from '../../src/system/exec.js';
import { removeNetns, type Netns } from '../../src/system/ip.js';
import { CniRuntime, type CniAttachment, type CniNetworkList, type CniPortMapping } from './cni-runtime.js';
import { HTTPD, PUBLISHED_PORTS, SERVER_PORTS, startServers, waitListening } from './servers.js';
import { median } from '../stats.js';
import { BASELINE_RUNS, type PublishedSweep, type Setup, type Target } from './setup.js';

export const CNI_PLUGIN_DIR = '/usr/lib/cni';
export const CNI_SUBNET = '10.88.0.0/16';

/** The network configuration list: bridge + host-local + portmap, as podman's default network was. */
export function cniNetworkList(name: string, ipamDataDir: string): CniNetworkList {
  return {
    cniVersion: '1.0.0',
    name,
    plugins: [
      {
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: 'host-local', subnet: CNI_SUBNET, routes: [{ dst: '0.0.0.0/0' }], dataDir: ipamDataDir },
      },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  };
}

/** A container attached through CNI: its namespace and the address it got. */
export interface CniContainer {
  ns: Netns;
  attachment: CniAttachment;
  ip: string;
}

export class CniSetup implements Setup {
  readonly name = 'cni' as const;
  readonly description = 'CNI reference plugins 1.1.1 (bridge + host-local + portmap, ipMasq), run through the CNI protocol';
  readonly lab: Lab;
  readonly runtime: CniRuntime;
  targets: Setup['targets'] = {};
  #seq = 0;

  private constructor(lab: Lab) {
    this.lab = lab;
    const tmp = lab.tmpDir();
    this.runtime = new CniRuntime(cniNetworkList(`${lab.prefix}-cni`, join(tmp, 'cni-ipam')), {
      pluginDir: CNI_PLUGIN_DIR,
      hostNetns: lab.host.path,
      cacheDir: join(tmp, 'cni-cache'),
    });
  }

  /** A lab with the CNI network only (no servers): what the kernel test drives. */
  static async bare(): Promise<CniSetup> {
    return new CniSetup(await Lab.create());
  }

  static async create(): Promise<CniSetup> {
    const s = new CniSetup(await Lab.create());
    try {
      await s.#build();
    } catch (err) {
      await s.destroy();
      throw err;
    }
    return s;
  }

  async #build(): Promise<void> {
    const lab = this.lab;
    const srv = await this.attach('srv', [
      { hostPort: PUBLISHED_PORTS.http, containerPort: SERVER_PORTS.http, protocol: 'tcp' },
      { hostPort: PUBLISHED_PORTS.iperf, containerPort: SERVER_PORTS.iperf, protocol: 'tcp' },
    ]);
    const cli = await this.attach('cli');
    await startServers(lab, { server: srv.ns, client: cli.ns });
    this.targets = {
      published: { client: lab.external, address: UPLINK.hostAddress, httpPort: PUBLISHED_PORTS.http, iperfPort: PUBLISHED_PORTS.iperf },
      'same-network': { client: cli.ns, address: srv.ip, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
      egress: { client: cli.ns, address: UPLINK.externalAddress, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
    };
  }

  /** A new namespace NAME attached to the network with ADD (and the given port mappings). */
  async attach(name: string, portMappings: readonly CniPortMapping[] = []): Promise<CniContainer> {
    const ns = await this.lab.addNamespace(name);
    const attachment: CniAttachment = { containerId: `${this.lab.prefix}-${name}`, netns: ns.path, ifname: 'eth0', portMappings };
    try {
      const result = await this.runtime.add(attachment);
      const ip = result.ips?.[0]?.address.split('/')[0];
      if (!ip) throw new Error(`CNI ADD for ${name} returned no address: ${JSON.stringify(result)}`);
      return { ns, attachment, ip };
    } catch (err) {
      await removeNetns(ns.name).catch(() => undefined);
      throw err;
    }
  }

  /** DEL, then the namespace goes (as a runtime removes a container). */
  async detach(c: CniContainer): Promise<void> {
    try {
      await this.runtime.del(c.attachment);
    } finally {
      await removeNetns(c.ns.name);
    }
  }

  async publishPorts(n: number, first: number): Promise<PublishedSweep> {
    const k = this.#seq++;
    const last = first + n - 1;
    const baselines: number[] = [];
    for (let i = 0; i < BASELINE_RUNS; i++) {
      const t0 = performance.now();
      const base = await this.attach(`swb${k}x${i}`);
      baselines.push(performance.now() - t0);
      await this.detach(base);
    }
    const baselineMs = median(baselines);
    const mappings: CniPortMapping[] = Array.from({ length: n }, (_, i) => ({ hostPort: first + i, containerPort: first + i, protocol: 'tcp' }));
    const t = performance.now();
    const c = await this.attach(`sw${k}`, mappings);
    const createMs = performance.now() - t;
    let server: ChildProcess | undefined;
    try {
      server = this.lab.spawn(c.ns, HTTPD, [String(last)]);
      await waitListening(this.lab, c.ns, [last]);
    } catch (err) {
      if (server) await stop(server);
      await this.detach(c);
      throw err;
    }
    const target: Target = { client: this.lab.external, address: UPLINK.hostAddress, httpPort: last, iperfPort: 0 };
    return {
      target,
      createMs,
      baselineMs,
      remove: async () => {
        if (server) await stop(server);
        await this.detach(c);
      },
    };
  }

  async createSandboxes(n: number): Promise<number[]> {
    const k = this.#seq++;
    const times: number[] = [];
    const made: CniContainer[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        made.push(await this.attach(`cp${k}x${i}`));
        times.push(performance.now() - t);
      }
    } finally {
      for (const c of made) await this.detach(c);
    }
    return times;
  }

  async info(): Promise<Record<string, string>> {
    const ipt = (await this.lab.exec(this.lab.host, 'iptables', ['--version'])).trim();
    return { plugins: `containernetworking-plugins ${await debVersion('containernetworking-plugins')}`, iptables: ipt };
  }

  async destroy(): Promise<void> {
    await this.lab.destroy();
  }
}

/** The installed version of a Debian package. */
export async function debVersion(pkg: string): Promise<string> {
  try {
    return (await run('dpkg-query', ['-W', '-f=${Version}', pkg])).trim();
  } catch {
    return 'unknown';
  }
}
