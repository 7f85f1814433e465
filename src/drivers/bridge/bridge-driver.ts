/**
 * The bridge driver: a Linux bridge per network carrying the gateway address, and a veth
 * pair per attachment (host side on the bridge, `ethN` inside the sandbox with the endpoint's
 * address, a MAC derived from it, and the default route via the primary network's gateway).
 * Forwarding policy on top (iptables rules or BPF programs) is the datapath's.
 */
import { conflict } from '../../errors.js';
import { CommandError } from '../../system/exec.js';
import { ip, ipBatch, ipJson, link, type Netns } from '../../system/ip.js';
import type { EndpointRecord, NetworkRecord } from '../../networks/model.js';
import { BridgeOption } from '../../networks/model.js';
import { macForIPv4, type Driver, type SandboxTarget } from '../driver.js';

/** The daemon's own namespace: `ip` without -n. */
const HOST: Netns | null = null;

function sandboxNs(sb: SandboxTarget): Netns {
  if (!sb.record.netns || !sb.netnsPath) throw new Error(`sandbox ${sb.record.name} has no namespace of its own`);
  return { name: sb.record.netns, path: sb.netnsPath };
}

function prefixOf(net: NetworkRecord): number {
  return Number(net.subnet!.split('/')[1]);
}

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

export class BridgeDriver implements Driver {
  readonly name = 'bridge' as const;
  readonly ownNamespace = true;
  /** Every bridge this daemon makes carries `<markerPrefix><network id>` as its alias (ifalias). */
  readonly #markerPrefix: string;

  /** instance: the daemon's instance name, so daemons sharing a host never take each other's bridges. */
  constructor(instance = 'bpfnet') {
    this.#markerPrefix = `bpfnet:${instance}:`;
  }

  #marker(net: NetworkRecord): string {
    return `${this.#markerPrefix}${net.id}`;
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
        ['link', 'set', 'dev', dev, 'addrgenmode', 'none', 'address', macForIPv4(net.gateway!), ...(mtu ? ['mtu', mtu] : [])],
        ['addr', 'replace', `${net.gateway}/${prefixOf(net)}`, 'dev', dev],
        ['link', 'set', 'dev', dev, 'up'],
      ]);
    } catch (err) {
      throw new Error(`could not set up bridge "${dev}" for network ${net.name}: ${(err as Error).message}`);
    }
  }

  async deleteNetwork(net: NetworkRecord): Promise<void> {
    if (await link(HOST, net.device!)) await ip(HOST, ['link', 'delete', net.device!]);
  }

  async join(net: NetworkRecord, ep: EndpointRecord, sb: SandboxTarget, opts: { defaultRoute?: boolean } = {}): Promise<EndpointRecord> {
    const ns = sandboxNs(sb);
    const hostIf = ep.hostIfname!;
    const mac = ep.mac ?? macForIPv4(ep.ipv4!);
    const mtu = net.options[BridgeOption.mtu] ? ['mtu', net.options[BridgeOption.mtu]] : [];
    // Two processes in all: one batch per side. addrgenmode goes off while the devices are
    // still down (an IPv6 link-local address is made at up time), so nothing but IPv4 flows.
    const hostSide = [
      ['link', 'set', 'dev', hostIf, 'addrgenmode', 'none', ...mtu],
      ['link', 'set', 'dev', hostIf, 'master', net.device!, 'up'],
    ];
    try {
      await ipBatch(HOST, [['link', 'add', 'name', hostIf, 'type', 'veth', 'peer', 'name', ep.ifname, 'netns', ns.name], ...hostSide]);
    } catch (err) {
      // Rebuilding an endpoint whose veth survived (reconcile): configure what is there.
      if (!/File exists/.test((err as Error).message)) throw new Error(`could not create veth "${hostIf}" for ${sb.record.name} on ${net.name}: ${(err as Error).message}`);
      await ipBatch(HOST, hostSide);
    }
    await ipBatch(ns, [
      ['link', 'set', 'dev', 'lo', 'up'],
      ['link', 'set', 'dev', ep.ifname, 'addrgenmode', 'none', ...mtu, 'address', mac],
      ['addr', 'replace', `${ep.ipv4}/${prefixOf(net)}`, 'dev', ep.ifname],
      ['link', 'set', 'dev', ep.ifname, 'up'],
      ...(opts.defaultRoute ? [['route', 'replace', 'default', 'via', net.gateway!, 'dev', ep.ifname]] : []),
    ]);
    return { ...ep, mac, prefixLength: prefixOf(net) };
  }

  async setDefaultRoute(net: NetworkRecord, ep: EndpointRecord, sb: SandboxTarget): Promise<void> {
    await ip(sandboxNs(sb), ['route', 'replace', 'default', 'via', net.gateway!, 'dev', ep.ifname]);
  }

  async leave(_net: NetworkRecord, ep: EndpointRecord, sb: SandboxTarget): Promise<void> {
    // Deleting either end removes the pair; the host end is always reachable, even if the sandbox is gone.
    if (ep.hostIfname && (await link(HOST, ep.hostIfname))) await ip(HOST, ['link', 'delete', ep.hostIfname]);
    else if (sb.netnsPath && sb.record.netns && (await link(sandboxNs(sb), ep.ifname))) await ip(sandboxNs(sb), ['link', 'delete', ep.ifname]);
  }

  async joined(net: NetworkRecord, ep: EndpointRecord, sb: SandboxTarget): Promise<boolean> {
    const host = ep.hostIfname ? await link(HOST, ep.hostIfname) : undefined;
    if (!host || host.master !== net.device) return false;
    if (!sb.record.netns) return false;
    return (await link(sandboxNs(sb), ep.ifname)) !== undefined;
  }
}
