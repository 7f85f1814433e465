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
import { bpfObject } from '../../src/paths.js';
import type { Netns } from '../../src/system/ip.js';
import { PUBLISHED_PORTS, SERVER_PORTS } from './servers.js';
import { serverBehindHostVeth } from './references.js';
import type { Setup } from './setup.js';

const SERVER_NET = { gateway: '10.203.0.1', server: '10.203.0.2', prefix: 24 } as const;
/** The server's host veth, in the simulated host's namespace (serverBehindHostVeth makes it). */
const SERVER_VETH = 's0';

const be32 = (dotted: string): Buffer => Buffer.from(dotted.split('.').map(Number));
const be16 = (port: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(port);
  return b;
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const mac = (text: string): Buffer => Buffer.from(text.split(':').map((h) => parseInt(h, 16)));

async function macOf(lab: Lab, ns: Netns, ifname: string): Promise<string> {
  const links = JSON.parse(await lab.exec(ns, 'ip', ['-j', 'link', 'show', 'dev', ifname])) as Array<{ address: string }>;
  return links[0].address;
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
      await s.#attach(await serverBehindHostVeth(lab, SERVER_NET));
      s.targets = {
        published: { client: lab.external, address: UPLINK.hostAddress, httpPort: PUBLISHED_PORTS.http, iperfPort: PUBLISHED_PORTS.iperf },
      };
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return s;
  }

  async #attach(srv: Netns): Promise<void> {
    const host = this.lab.host;
    const consts = {
      floor_host_addr: be32(UPLINK.hostAddress),
      floor_server_addr: be32(SERVER_NET.server),
      floor_pub_a: be16(PUBLISHED_PORTS.http),
      floor_srv_a: be16(SERVER_PORTS.http),
      floor_pub_b: be16(PUBLISHED_PORTS.iperf),
      floor_srv_b: be16(SERVER_PORTS.iperf),
      floor_server_ifindex: u32(interfaceIndex(host.path, SERVER_VETH)),
      floor_uplink_ifindex: u32(interfaceIndex(host.path, UPLINK.hostIf)),
      floor_gw_mac: mac(await macOf(this.lab, host, SERVER_VETH)),
      floor_server_mac: mac(await macOf(this.lab, srv, 'eth0')),
      floor_uplink_mac: mac(await macOf(this.lab, host, UPLINK.hostIf)),
      floor_client_mac: mac(await macOf(this.lab, this.lab.external, UPLINK.externalIf)),
    };
    // The filters hold the programs: the object's descriptors can go once they are attached.
    const obj = BpfObject.load(bpfObject('floor'), { consts });
    try {
      obj.program('floor_from_uplink').attachTcFilter({ netns: host.path, ifname: UPLINK.hostIf }, 'ingress', FILTER_PRIORITY);
      obj.program('floor_from_server').attachTcFilter({ netns: host.path, ifname: SERVER_VETH }, 'ingress', FILTER_PRIORITY);
    } finally {
      obj.close();
    }
  }

  async info(): Promise<Record<string, string>> {
    return {};
  }

  async destroy(): Promise<void> {
    await this.lab.destroy();
  }
}
