/**
 * The overlay driver (`-d overlay`): a network that spans hosts. On each host it is made of
 * what a bridge network is made of — a local bridge carrying the gateway, one veth pair per
 * endpoint (not a port of that bridge when the datapath is portless: more than 1,024 per host) — with an MTU that leaves room for VXLAN (the uplink's minus 50: 1450), and a VNI
 * (vni.ts) the datapath uses to carry frames to endpoints on other hosts through the host's
 * one VXLAN device. Forwarding, isolation, icc and anti-spoofing are the datapath's, as on a
 * bridge network; so is egress, masqueraded through the sandbox's own host (no second
 * interface on a docker_gwbridge: one address per sandbox, one hop, one NAT).
 */
import { invalid } from '../../errors.js';
import { link } from '../../system/ip.js';
import type { EndpointRecord, NetworkRecord } from '../../networks/model.js';
import { BridgeOption } from '../../networks/model.js';
import { BridgeDriver } from '../bridge/bridge-driver.js';
import type { Driver, DriverCapabilities, JoinTarget } from '../driver.js';
import { OverlayOption, parseVni } from './vni.js';

/** What VXLAN over IPv4 adds to every frame (outer IPv4 + UDP + VXLAN + inner Ethernet). */
export const VXLAN_OVERHEAD = 50;

export interface OverlayDriverOptions {
  instance: string;
  linkPrefix: string;
  /** The underlay interface VXLAN leaves by: sandboxes' MTU is its MTU less the encapsulation. */
  uplink: string;
  /** The datapath switches ARP, ND and the host's traffic itself (Datapath.portless): host veths are no ports of the local bridge. */
  portless?: boolean;
}

export class OverlayDriver implements Driver {
  readonly name = 'overlay';
  readonly capabilities: DriverCapabilities = {
    datapath: true,
    scope: 'global',
    needsParent: false,
    ownNamespace: true,
    addresses: true,
    userNetworks: true,
    embeddedDns: true,
    disconnect: true,
  };
  readonly #local: BridgeDriver;
  readonly #uplink: string;
  #uplinkMtu?: number;

  constructor(opts: OverlayDriverOptions) {
    this.#local = new BridgeDriver({ instance: opts.instance, linkPrefix: opts.linkPrefix, portless: opts.portless });
    this.#uplink = opts.uplink;
  }

  validateOptions(options: Readonly<Record<string, string>>): void {
    if (OverlayOption.vxlanIdList in options) parseVni(options[OverlayOption.vxlanIdList]);
    if (BridgeOption.mtu in options) {
      const mtu = Number(options[BridgeOption.mtu]);
      if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw invalid(`invalid value "${options[BridgeOption.mtu]}" for option ${BridgeOption.mtu}: expected 68-65535`);
    }
    for (const key of Object.keys(options))
      if (key.startsWith('com.docker.network.bridge.')) throw invalid(`option ${key} is a bridge driver option: overlay networks do not take it`);
    if (options['encrypted'] !== undefined) throw invalid('encrypted overlay networks are not supported by this kernel (no ESP/IPsec)');
  }

  deviceFor(networkId: string): string {
    return this.#local.deviceFor(networkId, {});
  }

  checkNetwork(net: NetworkRecord): Promise<void> {
    return this.#local.checkNetwork(net);
  }

  /** The uplink's MTU, read once (it is the underlay's, and changing it under live tunnels is the operator's business). */
  async #mtu(): Promise<number> {
    if (this.#uplinkMtu === undefined) this.#uplinkMtu = (await link(null, this.#uplink))?.mtu ?? 1500;
    return this.#uplinkMtu;
  }

  /** The record as the local bridge half sees it: the MTU inside the tunnel (a smaller one asked for is kept). */
  async #asLocal(net: NetworkRecord): Promise<NetworkRecord> {
    const room = (await this.#mtu()) - VXLAN_OVERHEAD;
    const asked = Number(net.options[BridgeOption.mtu] ?? room);
    return { ...net, options: { [BridgeOption.mtu]: String(Math.min(asked, room)) } };
  }

  async createNetwork(net: NetworkRecord): Promise<void> {
    await this.#local.createNetwork(await this.#asLocal(net));
  }

  deleteNetwork(net: NetworkRecord): Promise<void> {
    return this.#local.deleteNetwork(net);
  }

  async createEndpoint(net: NetworkRecord, ep: EndpointRecord, into?: JoinTarget): Promise<EndpointRecord> {
    return this.#local.createEndpoint(await this.#asLocal(net), ep, into);
  }

  async join(net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<EndpointRecord> {
    return this.#local.join(await this.#asLocal(net), ep, target);
  }

  leave(net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<void> {
    return this.#local.leave(net, ep, target);
  }

  deleteEndpoint(net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    return this.#local.deleteEndpoint(net, ep);
  }

  setDefaultRoute(net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<void> {
    return this.#local.setDefaultRoute(net, ep, target);
  }

  joined(net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<boolean> {
    return this.#local.joined(net, ep, target);
  }
}
