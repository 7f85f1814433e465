/**
 * The references bpfnet is measured against, built with nothing but namespaces and veths:
 * - host: host networking (`--network host`): the server runs in the simulated host's own
 *   namespace and the same external client reaches it over the same uplink. The ceiling for
 *   published ports: a container network adds to this path, never removes from it.
 * - veth: an external client namespace and a server namespace joined by one veth pair — no
 *   host, no bridge, no NAT ("direct veth"). Not a ceiling: it has no uplink hop, and the
 *   eBPF datapath's veth-only shortcut can beat it.
 * - routing: the same server behind a simulated host that only routes (ip_forward, two veth
 *   pairs, no bridge, no NAT, no netfilter rule): what published ports and egress cost
 *   without any translation.
 */
import { addUplink6, Lab, UPLINK, UPLINK6 } from '../../src/lab/lab.js';
import { ensureAddress, ensureVeth, ip, setUp, type Netns } from '../../src/system/ip.js';
import { SERVER_PORTS, startServers } from './servers.js';
import type { Setup } from './setup.js';

const VETH_NET = { client: '10.201.0.1', server: '10.201.0.2', prefix: 24 } as const;
const ROUTED_NET = { gateway: '10.202.0.1', server: '10.202.0.2', subnet: '10.202.0.0/24', prefix: 24 } as const;

/**
 * The server in namespace srv behind a host veth (s0 in the simulated host, at net.gateway),
 * both servers also in the external namespace, the client side tuned: the routing setup's
 * topology, which the floor setup shares. Resolves with the server's namespace once both listen.
 */
export async function serverBehindHostVeth(lab: Lab, net: { gateway: string; server: string; prefix: number }): Promise<Netns> {
  const srv = await lab.addNamespace('srv');
  await ensureVeth(lab.host, 's0', srv, 'eth0');
  await ensureAddress(lab.host, 's0', `${net.gateway}/${net.prefix}`);
  await ensureAddress(srv, 'eth0', `${net.server}/${net.prefix}`);
  await setUp(lab.host, 's0');
  await setUp(srv, 'eth0');
  await ip(srv, ['route', 'add', 'default', 'via', net.gateway]);
  await startServers(lab, { server: srv, client: srv });
  return srv;
}

abstract class ReferenceSetup implements Setup {
  abstract readonly name: 'host' | 'veth' | 'routing';
  abstract readonly description: string;
  readonly lab: Lab;
  targets: Setup['targets'] = {};

  protected constructor(lab: Lab) {
    this.lab = lab;
  }

  async info(): Promise<Record<string, string>> {
    return {};
  }

  async destroy(): Promise<void> {
    await this.lab.destroy();
  }
}

export class HostNetworkSetup extends ReferenceSetup {
  readonly name = 'host' as const;
  readonly description = 'host networking: the server in the simulated host\'s own namespace, reached over the uplink from the same external client (no bridge, no NAT)';

  static async create(): Promise<HostNetworkSetup> {
    const lab = await Lab.create();
    const s = new HostNetworkSetup(lab);
    try {
      await startServers(lab, { server: lab.host, client: lab.host });
      // IPv6 on the same uplink: host networking's IPv6 ÷ IPv4 is the kernel's own IPv6 cost, the bound for the datapaths'.
      await addUplink6(lab);
      s.targets = {
        published: { client: lab.external, address: UPLINK.hostAddress, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
        egress: { client: lab.host, address: UPLINK.externalAddress, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
        published6: { client: lab.external, address: UPLINK6.host, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
        egress6: { client: lab.host, address: UPLINK6.external, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
      };
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return s;
  }
}

export class DirectVethSetup extends ReferenceSetup {
  readonly name = 'veth' as const;
  readonly description = 'direct veth: client and server namespaces joined by one veth pair (no host, no bridge, no NAT)';

  static async create(): Promise<DirectVethSetup> {
    const lab = await Lab.create({ uplink: false });
    const s = new DirectVethSetup(lab);
    try {
      const ext = await lab.addNamespace('ext');
      const srv = await lab.addNamespace('srv');
      await ensureVeth(ext, 'eth0', srv, 'eth0');
      await ensureAddress(ext, 'eth0', `${VETH_NET.client}/${VETH_NET.prefix}`);
      await ensureAddress(srv, 'eth0', `${VETH_NET.server}/${VETH_NET.prefix}`);
      await setUp(ext, 'eth0');
      await setUp(srv, 'eth0');
      await startServers(lab, { server: srv, client: srv, external: ext });
      const toServer = { client: ext, address: VETH_NET.server, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf };
      s.targets = {
        published: toServer,
        'same-network': toServer,
        egress: { client: srv, address: VETH_NET.client, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
      };
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return s;
  }
}

export class RoutingSetup extends ReferenceSetup {
  readonly name = 'routing' as const;
  readonly description = 'the server behind a host that only routes (two veth pairs, ip_forward, no bridge, no NAT)';

  static async create(): Promise<RoutingSetup> {
    const lab = await Lab.create();
    const s = new RoutingSetup(lab);
    try {
      const srv = await serverBehindHostVeth(lab, ROUTED_NET);
      await ip(lab.external, ['route', 'add', ROUTED_NET.subnet, 'via', UPLINK.hostAddress]);
      s.targets = {
        published: { client: lab.external, address: ROUTED_NET.server, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
        egress: { client: srv, address: UPLINK.externalAddress, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
      };
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return s;
  }
}
