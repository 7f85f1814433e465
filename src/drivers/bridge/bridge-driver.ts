/**
 * The bridge driver: a Linux bridge per network carrying the gateway address, and a veth
 * pair per endpoint (host side on the bridge, unless the datapath is portless: then the
 * bridge holds only the gateway and no port per sandbox; the other end waits in the daemon's namespace
 * under a temporary name until it joins a namespace, given by path, under the caller's name,
 * with the endpoint's address, a MAC derived from it, and optionally the default route).
 * Forwarding policy on top (iptables rules or BPF programs) is the datapath's.
 */
import { conflict, invalid } from '../../errors.js';
import { ipBytes, parseIp } from '../../ipam/ip.js';
import { parseIPv4 } from '../../ipam/ipv4.js';
import { CommandError } from '../../system/exec.js';
import { ip, ipBatch, ipJson, link, type Netns } from '../../system/ip.js';
import type { EndpointRecord, NetworkRecord } from '../../networks/model.js';
import { BridgeOption, gateway6For, prefix6For, subnets6Of } from '../../networks/model.js';
import { bridgeName, hostIfname } from '../../networks/config.js';
import { macForIPv4, type Driver, type DriverCapabilities, type JoinTarget } from '../driver.js';
import { DAEMON_NETNS, ipBatchAt, linkAt, netnsExists } from '../netns-path.js';
import { enableJoinIPv6 } from '../join-ipv6.js';

/** The daemon's own namespace: `ip` without -n. */
const HOST: Netns | null = null;

function prefixOf(net: NetworkRecord): number {
  return Number(net.subnet!.split('/')[1]);
}

/** An endpoint's IPv6 address with the prefix of the subnet it is in (a network may have several). */
function address6(net: NetworkRecord, ep: EndpointRecord): string {
  return `${ep.ipv6}/${prefix6For(net, ep.ipv6!)}`;
}

/**
 * An endpoint's MAC: 02:42 + its IPv4 address, as Docker derives it; on an IPv6-only network
 * 02:42 + the last four bytes of its IPv6 address (unique inside any subnet up to a /96).
 */
export function macFor(ep: Pick<EndpointRecord, 'ipv4' | 'ipv6'>): string | undefined {
  if (ep.ipv4) return macForIPv4(ep.ipv4);
  const a = ep.ipv6 ? parseIp(ep.ipv6) : undefined;
  if (!a) return undefined;
  return ['02', '42', ...ipBytes(a).subarray(12).toString('hex').match(/../g)!].join(':');
}

/** The bridge's own MAC, from its gateway address of the first family it has. */
function bridgeMac(net: NetworkRecord): string {
  return macFor({ ipv4: net.gateway, ipv6: net.gateway6 })!;
}

/** Docker's link-local address of an IPv6 bridge (the kernel would otherwise make one from the MAC). */
const BRIDGE_LINK_LOCAL = 'fe80::1/64';

/** What `ip -d link show` says about a device that decides whether bpfnet may use it. */
interface DeviceKind {
  ifname: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string };
}

async function device(ifname: string): Promise<DeviceKind | undefined> {
  try {
    return (await ipJson<DeviceKind[]>(HOST, ['-d', 'link', 'show', 'dev', ifname]))[0];
  } catch (err) {
    if (err instanceof CommandError && /does not exist/.test(err.stderr)) return undefined;
    throw new Error(`could not look up interface "${ifname}": ${(err as Error).message}`);
  }
}

export interface BridgeDriverOptions {
  /** The daemon's instance name, so daemons sharing a host never take each other's bridges. */
  instance: string;
  /** Prefix of every link this daemon makes in its namespace (bridges, veths). */
  linkPrefix: string;
  /** The datapath switches ARP, ND and the host's traffic itself (Datapath.portless): host veths are no bridge ports. */
  portless?: boolean;
}

export class BridgeDriver implements Driver {
  readonly name = 'bridge';
  readonly capabilities: DriverCapabilities = {
    datapath: true,
    scope: 'local',
    needsParent: false,
    ownNamespace: true,
    addresses: true,
    userNetworks: true,
    embeddedDns: true,
    disconnect: true,
    severalSubnets6: true,
  };
  /** Every bridge this daemon makes carries `<markerPrefix><network id>` as its alias (ifalias). */
  readonly #markerPrefix: string;
  readonly #linkPrefix: string;
  readonly #portless: boolean;
  /** Endpoints whose container side createEndpoint made in join's namespace already (until join). */
  readonly #inPlace = new Set<string>();

  constructor(opts: BridgeDriverOptions) {
    this.#markerPrefix = `bpfnet:${opts.instance}:`;
    this.#linkPrefix = opts.linkPrefix;
    this.#portless = opts.portless ?? false;
  }

  #marker(net: NetworkRecord): string {
    return `${this.#markerPrefix}${net.id}`;
  }

  /** The bridge device of a new network: -o com.docker.network.bridge.name, or one named after the network id. */
  deviceFor(networkId: string, options: Readonly<Record<string, string>>): string {
    return options[BridgeOption.name] ?? bridgeName({ linkPrefix: this.#linkPrefix }, networkId);
  }

  /** Host side of an endpoint's veth: prefix + endpoint id (hex), within IFNAMSIZ (15). */
  hostDevice(endpointId: string): string {
    return hostIfname({ linkPrefix: this.#linkPrefix }, endpointId);
  }

  /** The other end while it waits in the daemon's namespace: 'p' never occurs in a hex id, so no clash with hostDevice. */
  parkedName(endpointId: string): string {
    return `${this.#linkPrefix}p${endpointId.slice(0, 14 - this.#linkPrefix.length)}`;
  }

  validateOptions(options: Readonly<Record<string, string>>): void {
    for (const key of [BridgeOption.icc, BridgeOption.masquerade]) {
      if (key in options && !['true', 'false'].includes(options[key])) throw invalid(`invalid value "${options[key]}" for option ${key}: expected true or false`);
    }
    if (BridgeOption.hostBinding in options && !['', '0.0.0.0'].includes(options[BridgeOption.hostBinding]) && parseIPv4(options[BridgeOption.hostBinding]) === undefined)
      throw invalid(`invalid value "${options[BridgeOption.hostBinding]}" for option ${BridgeOption.hostBinding}: expected an IPv4 address`);
    if (BridgeOption.mtu in options) {
      const mtu = Number(options[BridgeOption.mtu]);
      if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw invalid(`invalid value "${options[BridgeOption.mtu]}" for option ${BridgeOption.mtu}: expected 68-65535`);
    }
    if (BridgeOption.name in options && !/^[a-zA-Z0-9_.-]{1,15}$/.test(options[BridgeOption.name]))
      throw invalid(`invalid bridge name "${options[BridgeOption.name]}": 1-15 characters of [a-zA-Z0-9_.-]`);
  }

  /**
   * Before a new network is stored: its device name may be taken only by a bridge this daemon
   * made (a stray one, left by an interrupted operation). Any other interface is refused, as
   * moby refuses a non-bridge, so that `network rm` never deletes a device bpfnet does not own.
   */
  async checkNetwork(net: NetworkRecord): Promise<void> {
    const dev = await device(net.device!);
    if (!dev) return;
    if (dev.linkinfo?.info_kind !== 'bridge') throw conflict(`existing interface ${dev.ifname} is not a bridge`);
    // The alias survives a daemon restart with the device, so a bridge we made is still ours afterwards.
    if (!dev.ifalias?.startsWith(this.#markerPrefix)) throw conflict(`existing interface ${dev.ifname} is a bridge that bpfnet did not create`);
  }

  async createNetwork(net: NetworkRecord): Promise<void> {
    const dev = net.device!;
    const mtu = net.options[BridgeOption.mtu];
    const exists = await link(HOST, dev);
    try {
      await ipBatch(HOST, [
        ...(exists ? [] : [['link', 'add', 'name', dev, 'type', 'bridge']]),
        ['link', 'set', 'dev', dev, 'alias', this.#marker(net)],
        // Before it goes up, or it gets an IPv6 link-local address and chatters (IPv4-only networks, as Docker).
        // A MAC of its own, as Docker sets: a bridge without one takes the lowest MAC of its ports and
        // changes it when a port joins, and sandboxes' cached gateway MAC goes stale (the embedded
        // DNS on the gateway stops answering them until their neighbour entry is re-learnt).
        ['link', 'set', 'dev', dev, 'addrgenmode', 'none', 'address', bridgeMac(net), ...(mtu ? ['mtu', mtu] : [])],
        ...(net.gateway ? [['addr', 'replace', `${net.gateway}/${prefixOf(net)}`, 'dev', dev]] : []),
        // IPv6: the gateway and fe80::1 without duplicate address detection, usable at once (as Docker).
        ...(net.gateway6
          ? [
              ['addr', 'replace', BRIDGE_LINK_LOCAL, 'dev', dev, 'nodad'],
              // One gateway address per IPv6 subnet.
              ...subnets6Of(net).map((s) => ['addr', 'replace', `${s.gateway}/${s.subnet.split('/')[1]}`, 'dev', dev, 'nodad']),
            ]
          : []),
        ['link', 'set', 'dev', dev, 'up'],
      ]);
    } catch (err) {
      throw new Error(`could not set up bridge "${dev}" for network ${net.name}: ${(err as Error).message}`);
    }
  }

  async deleteNetwork(net: NetworkRecord): Promise<void> {
    if (await link(HOST, net.device!)) await ip(HOST, ['link', 'delete', net.device!]);
  }

  #mtu(net: NetworkRecord): string[] {
    return net.options[BridgeOption.mtu] ? ['mtu', net.options[BridgeOption.mtu]] : [];
  }

  async createEndpoint(net: NetworkRecord, ep: EndpointRecord, into?: JoinTarget): Promise<EndpointRecord> {
    const hostIf = this.hostDevice(ep.id);
    // The container side straight into its namespace under its name when join's target is known
    // (no move later: that waits for an RCU grace period); else parked here until join.
    const peer = into?.netnsPath ? ['name', into.ifname, 'netns', into.netnsPath] : ['name', this.parkedName(ep.id)];
    const mtu = this.#mtu(net);
    // addrgenmode goes off while the devices are still down (an IPv6 link-local address is
    // made at up time), so nothing but IPv4 flows. One process for the whole host side.
    const hostSide = [
      ['link', 'set', 'dev', hostIf, 'addrgenmode', 'none', ...mtu],
      // Portless: a bridge takes 1,024 ports at most, and the datapath needs none.
      this.#portless ? ['link', 'set', 'dev', hostIf, 'up'] : ['link', 'set', 'dev', hostIf, 'master', net.device!, 'up'],
    ];
    try {
      await ipBatch(HOST, [['link', 'add', 'name', hostIf, 'type', 'veth', 'peer', ...peer], ...hostSide]);
      if (into?.netnsPath) this.#inPlace.add(ep.id);
    } catch (err) {
      // Rebuilding an endpoint whose veth survived (reconcile): configure what is there.
      if (!/File exists/.test((err as Error).message)) throw new Error(`could not create veth "${hostIf}" for endpoint ${ep.id.slice(0, 12)} on ${net.name}: ${(err as Error).message}`);
      // Either side may be what exists: the parked way sorts out which, as before.
      if (into?.netnsPath) return this.createEndpoint(net, ep);
      await ipBatch(HOST, hostSide);
    }
    return { ...ep, hostIfname: hostIf, mac: ep.mac ?? macFor(ep), ...(net.subnet ? { prefixLength: prefixOf(net) } : {}) };
  }

  async join(net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<EndpointRecord> {
    if (!target.netnsPath) throw new Error(`endpoint ${ep.id.slice(0, 12)} on ${net.name} needs a namespace of its own to join`);
    const parked = this.parkedName(ep.id);
    // The kernel moves and renames in one request; the name may clash only inside the target namespace.
    try {
      // Made there by createEndpoint: nothing to move.
      if (!this.#inPlace.delete(ep.id)) await ip(HOST, ['link', 'set', 'dev', parked, 'netns', target.netnsPath, 'name', target.ifname]);
    } catch (err) {
      const gone = /Cannot find device|does not exist/.test((err as Error).message);
      // Joined before (reconcile re-asserting): the interface is already there under its name.
      if (!gone || !(await linkAt(target.netnsPath, target.ifname)))
        throw new Error(`could not move endpoint ${ep.id.slice(0, 12)} (${parked}) into ${target.netnsPath} as ${target.ifname}: ${(err as Error).message}`);
    }
    const mac = ep.mac ?? macFor(ep)!;
    if (ep.ipv6) await enableJoinIPv6(ep.id, target.netnsPath);
    await ipBatchAt(target.netnsPath, [
      ['link', 'set', 'dev', 'lo', 'up'],
      // eui64 on an IPv6 endpoint: the kernel makes its fe80:: address from the MAC when it goes up, as in Docker.
      ['link', 'set', 'dev', target.ifname, 'addrgenmode', ep.ipv6 ? 'eui64' : 'none', ...this.#mtu(net), 'address', mac],
      ...(ep.ipv4 ? [['addr', 'replace', `${ep.ipv4}/${prefixOf(net)}`, 'dev', target.ifname]] : []),
      ...(ep.ipv6 ? [['addr', 'replace', address6(net, ep), 'dev', target.ifname, 'nodad']] : []),
      ['link', 'set', 'dev', target.ifname, 'up'],
      ...(target.defaultRoute ? this.#defaultRoutes(net, ep, target.ifname) : []),
    ]);
    return { ...ep, ifname: target.ifname, mac, ...(net.subnet ? { prefixLength: prefixOf(net) } : {}) };
  }



  /** A default route per family the endpoint has an address of, via that family's gateway. */
  #defaultRoutes(net: NetworkRecord, ep: EndpointRecord, ifname: string): string[][] {
    return [
      ...(ep.ipv4 && net.gateway ? [['route', 'replace', 'default', 'via', net.gateway, 'dev', ifname]] : []),
      // The address first: the gateway is reachable only through its prefix route (idempotent when it is there).
      // Via the gateway of the endpoint's own IPv6 subnet.
      ...(ep.ipv6 && net.gateway6
        ? [
            ['addr', 'replace', address6(net, ep), 'dev', ifname, 'nodad'],
            ['route', 'replace', 'default', 'via', gateway6For(net, ep.ipv6)!, 'dev', ifname],
          ]
        : []),
    ];
  }

  async handOff(net: NetworkRecord, ep: EndpointRecord): Promise<{ endpoint: EndpointRecord; ifname: string }> {
    const parked = this.parkedName(ep.id);
    const mac = ep.mac ?? macForIPv4(ep.ipv4!);
    try {
      await ip(HOST, ['link', 'set', 'dev', parked, 'addrgenmode', 'none', ...this.#mtu(net), 'address', mac]);
    } catch (err) {
      throw new Error(`could not ready ${parked} of endpoint ${ep.id.slice(0, 12)} on ${net.name}: ${(err as Error).message}`);
    }
    return { endpoint: { ...ep, mac, prefixLength: prefixOf(net) }, ifname: parked };
  }

  endpointDevices(ep: EndpointRecord): string[] {
    return [ep.hostIfname ?? this.hostDevice(ep.id), this.parkedName(ep.id)];
  }

  async setDefaultRoute(net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<void> {
    const routes = this.#defaultRoutes(net, ep, target.ifname);
    if (routes.length === 0 || !target.netnsPath) return;
    if (ep.ipv6) await enableJoinIPv6(ep.id, target.netnsPath);
    await ipBatchAt(target.netnsPath, routes);
  }

  async leave(_net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<void> {
    // A namespace that is gone took the interface with it (and so the whole pair).
    if (!target.netnsPath || !netnsExists(target.netnsPath)) return;
    // Back to the daemon's namespace under the parked name, down and without its address, as before join.
    try {
      await ipBatchAt(target.netnsPath, [
        ['link', 'set', 'dev', target.ifname, 'down'],
        ['addr', 'flush', 'dev', target.ifname],
        ['link', 'set', 'dev', target.ifname, 'netns', DAEMON_NETNS, 'name', this.parkedName(ep.id)],
      ]);
    } catch (err) {
      // Never joined, or already left: nothing of ours is in that namespace.
      if (!/Cannot find device|does not exist/.test((err as Error).message)) throw new Error(`could not take ${target.ifname} of endpoint ${ep.id.slice(0, 12)} out of ${target.netnsPath}: ${(err as Error).message}`);
    }
  }

  async deleteEndpoint(_net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    this.#inPlace.delete(ep.id);
    // Deleting either end removes the pair; one that is not there is already undone.
    for (const dev of [ep.hostIfname ?? this.hostDevice(ep.id), this.parkedName(ep.id)]) {
      try {
        await ip(HOST, ['link', 'delete', dev]);
        return;
      } catch (err) {
        if (!/Cannot find device|does not exist/.test((err as Error).message)) throw new Error(`could not delete ${dev} of endpoint ${ep.id.slice(0, 12)}: ${(err as Error).message}`);
      }
    }
  }

  async joined(net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<boolean> {
    const host = ep.hostIfname ? await link(HOST, ep.hostIfname) : undefined;
    // Portless: a veth an older daemon enslaved stays a port and keeps working (the programs never use the bridge to switch).
    if (!host || (host.master !== net.device && !(this.#portless && host.master === undefined))) return false;
    if (!target.netnsPath) return false;
    return (await linkAt(target.netnsPath, target.ifname)) !== undefined;
  }
}
