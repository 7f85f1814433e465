/**
 * The floor of an eBPF published port (bpf/floor.bpf.c): the server behind a host veth as in
 * the routing setup, reached through the uplink address's port as in the ebpf setup, with a
 * fixed stateless translation on the same two hooks the datapath uses (tc ingress of the uplink
 * and of the server's host veth, as classic clsact filters at the datapath's priority), the
 * datapath's own parse and rewrite code, and the same deliveries (redirect_peer into the
 * server's namespace; replies out of the uplink by a plain redirect, as through a NIC). No
 * map, no connection table, no check: what host networking ÷ floor reaches, no eBPF datapath on
 * these hooks gets past; ebpf ÷ floor is what the datapath's state and checks cost.
 */
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { BpfObject, interfaceIndex } from '../../src/datapath/libbpf/bpf.js';
import { FILTER_PRIORITY } from '../../src/datapath/ebpf/hooks.js';
import { be16, encode, ipv4, mac, u32 } from '../../src/datapath/libbpf/codec.js';
import { bpfObject } from '../../src/paths.js';
import type { LinkInfo, Netns } from '../../src/system/ip.js';
import { PUBLISHED_PORTS, SERVER_PORTS } from './servers.js';
import { serverBehindHostVeth } from './references.js';
import type { Setup } from './setup.js';

const SERVER_NET = { gateway: '10.203.0.1', server: '10.203.0.2', prefix: 24 } as const;
/** The server's host veth, in the simulated host's namespace (serverBehindHostVeth makes it). */
const SERVER_VETH = 's0';

/** ifname in ns as `ip -j link` shows it, entered by path (a container's namespace has no name). */
export async function linkIn(lab: Lab, ns: Netns, ifname: string): Promise<LinkInfo & { link_index?: number }> {
  const [info] = JSON.parse(await lab.exec(ns, 'ip', ['-j', 'link', 'show', 'dev', ifname])) as Array<LinkInfo & { link_index?: number }>;
  if (!info) throw new Error(`floor: no link ${ifname} in ${ns.name}`);
  return info;
}

/** The MAC of ifname in ns, as `ip -j link` shows it. */
export async function macOf(lab: Lab, ns: Netns, ifname: string): Promise<string> {
  const address = (await linkIn(lab, ns, ifname)).address;
  if (!address) throw new Error(`floor: no MAC for ${ifname} in ${ns.name}`);
  return address;
}

/** A server behind a host veth in the lab's simulated host: its namespace, that veth's name and its address. */
export interface FloorServer {
  ns: Netns;
  hostVeth: string;
  address: string;
}

/**
 * The floor's two filters at `priority` on the uplink's and the server's host veth tc ingress,
 * translating the published ports to the server's: at the datapath's own priority (in its
 * place), or before it (a lower number) where a datapath is attached and is to be passed by.
 */
export async function attachFloor(lab: Lab, server: FloorServer, priority: number): Promise<void> {
  const host = lab.host;
  const consts = {
    floor_host_addr: encode(ipv4, UPLINK.hostAddress),
    floor_server_addr: encode(ipv4, server.address),
    floor_pub_a: encode(be16, PUBLISHED_PORTS.http),
    floor_srv_a: encode(be16, SERVER_PORTS.http),
    floor_pub_b: encode(be16, PUBLISHED_PORTS.iperf),
    floor_srv_b: encode(be16, SERVER_PORTS.iperf),
    floor_server_ifindex: encode(u32, interfaceIndex(host.path, server.hostVeth)),
    floor_uplink_ifindex: encode(u32, interfaceIndex(host.path, UPLINK.hostIf)),
    floor_gw_mac: encode(mac, await macOf(lab, host, server.hostVeth)),
    floor_server_mac: encode(mac, await macOf(lab, server.ns, 'eth0')),
    floor_uplink_mac: encode(mac, await macOf(lab, host, UPLINK.hostIf)),
    floor_client_mac: encode(mac, await macOf(lab, lab.external, UPLINK.externalIf)),
  };
  // The filters hold the programs: the object's descriptors can go once they are attached.
  const obj = BpfObject.load(bpfObject('floor'), { consts });
  try {
    obj.program('floor_from_uplink').attachTcFilter({ netns: host.path, ifname: UPLINK.hostIf }, 'ingress', priority);
    obj.program('floor_from_server').attachTcFilter({ netns: host.path, ifname: server.hostVeth }, 'ingress', priority);
  } finally {
    obj.close();
  }
}

export class FloorSetup implements Setup {
  readonly name = 'floor' as const;
  readonly description =
    'floor: a fixed stateless eBPF translation of the published ports on the datapath\'s own two hooks (its parser and rewrite, redirect_peer in, a plain redirect out of the uplink; no map, no state, no check) — what no eBPF datapath on this path gets past';
  targets: Setup['targets'] = {};

  private constructor(readonly lab: Lab) {}

  static async create(): Promise<FloorSetup> {
    const lab = await Lab.create();
    const s = new FloorSetup(lab);
    try {
      const srv = await serverBehindHostVeth(lab, SERVER_NET);
      await attachFloor(lab, { ns: srv, hostVeth: SERVER_VETH, address: SERVER_NET.server }, FILTER_PRIORITY);
      s.targets = {
        published: { client: lab.external, address: UPLINK.hostAddress, httpPort: PUBLISHED_PORTS.http, iperfPort: PUBLISHED_PORTS.iperf },
      };
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return s;
  }

  async info(): Promise<Record<string, string>> {
    return {};
  }

  async destroy(): Promise<void> {
    await this.lab.destroy();
  }
}
