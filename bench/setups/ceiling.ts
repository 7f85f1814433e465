/**
 * The references bpfnet is measured against, built with nothing but namespaces and veths:
 * - ceiling: an external client namespace and a server namespace joined by one veth pair — no
 *   host, no bridge, no NAT. Every path (published, same-network, egress) is that one link; no
 *   container network can be faster.
 * - routing: the same server behind a simulated host that only routes (ip_forward, two veth
 *   pairs, no bridge, no NAT, no netfilter rule): what published ports and egress cost
 *   without any translation.
 */
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { ensureAddress, ensureVeth, ip, setUp } from '../../src/system/ip.js';
import { SERVER_PORTS, spawnServers, tuneClient, waitListening } from './servers.js';
import type { Setup } from './setup.js';

const CEILING_NET = { client: '10.201.0.1', server: '10.201.0.2', prefix: 24 } as const;
const ROUTED_NET = { gateway: '10.202.0.1', server: '10.202.0.2', subnet: '10.202.0.0/24', prefix: 24 } as const;

abstract class ReferenceSetup implements Setup {
  abstract readonly name: 'ceiling' | 'routing';
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

export class CeilingSetup extends ReferenceSetup {
  readonly name = 'ceiling' as const;
  readonly description = 'client and server namespaces joined by one veth pair (no host, no bridge, no NAT)';

  static async create(): Promise<CeilingSetup> {
    const lab = await Lab.create({ uplink: false });
    const s = new CeilingSetup(lab);
    try {
      const ext = await lab.addNamespace('ext');
      const srv = await lab.addNamespace('srv');
      await ensureVeth(ext, 'eth0', srv, 'eth0');
      await ensureAddress(ext, 'eth0', `${CEILING_NET.client}/${CEILING_NET.prefix}`);
      await ensureAddress(srv, 'eth0', `${CEILING_NET.server}/${CEILING_NET.prefix}`);
      await setUp(ext, 'eth0');
      await setUp(srv, 'eth0');
      spawnServers(lab, srv);
      spawnServers(lab, ext);
      await tuneClient(ext);
      await tuneClient(srv);
      await waitListening(lab, srv, [SERVER_PORTS.http, SERVER_PORTS.iperf]);
      await waitListening(lab, ext, [SERVER_PORTS.http, SERVER_PORTS.iperf]);
      const toServer = { client: ext, address: CEILING_NET.server, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf };
      s.targets = {
        published: toServer,
        'same-network': toServer,
        egress: { client: srv, address: CEILING_NET.client, httpPort: SERVER_PORTS.http, iperfPort: SERVER_PORTS.iperf },
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
      const srv = await lab.addNamespace('srv');
      await ensureVeth(lab.host, 's0', srv, 'eth0');
      await ensureAddress(lab.host, 's0', `${ROUTED_NET.gateway}/${ROUTED_NET.prefix}`);
      await ensureAddress(srv, 'eth0', `${ROUTED_NET.server}/${ROUTED_NET.prefix}`);
      await setUp(lab.host, 's0');
      await setUp(srv, 'eth0');
      await ip(srv, ['route', 'add', 'default', 'via', ROUTED_NET.gateway]);
      await ip(lab.external, ['route', 'add', ROUTED_NET.subnet, 'via', UPLINK.hostAddress]);
      spawnServers(lab, srv);
      spawnServers(lab, lab.external);
      await tuneClient(lab.external);
      await tuneClient(srv);
      await waitListening(lab, srv, [SERVER_PORTS.http, SERVER_PORTS.iperf]);
      await waitListening(lab, lab.external, [SERVER_PORTS.http, SERVER_PORTS.iperf]);
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
