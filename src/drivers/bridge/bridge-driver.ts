/**
 * The bridge driver: a Linux bridge per network carrying the gateway address, and a veth
 * pair per attachment (host side on the bridge, `ethN` inside the sandbox with the endpoint's
 * address, a MAC derived from it, and the default route via the primary network's gateway).
 * Forwarding policy on top (iptables rules or BPF programs) is the datapath's.
 */
import { CommandError } from '../../system/exec.js';
import { ensureAddress, ip, link, type Netns } from '../../system/ip.js';
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

export class BridgeDriver implements Driver {
  readonly name = 'bridge' as const;
  readonly ownNamespace = true;

  async createNetwork(net: NetworkRecord): Promise<void> {
    const dev = net.device!;
    if (!(await link(HOST, dev))) {
      try {
        await ip(HOST, ['link', 'add', 'name', dev, 'type', 'bridge']);
      } catch (err) {
        if (!(err instanceof CommandError && /File exists/.test(err.stderr))) throw new Error(`could not create bridge "${dev}": ${(err as Error).message}`);
      }
    }
    const mtu = net.options[BridgeOption.mtu];
    if (mtu) await ip(HOST, ['link', 'set', 'dev', dev, 'mtu', mtu]);
    await ensureAddress(HOST, dev, `${net.gateway}/${prefixOf(net)}`);
    // No IPv6 link-local address (IPv4-only networks, as Docker): the bridge stays silent.
    await ip(HOST, ['link', 'set', 'dev', dev, 'addrgenmode', 'none', 'up']);
  }

  async deleteNetwork(net: NetworkRecord): Promise<void> {
    if (await link(HOST, net.device!)) await ip(HOST, ['link', 'delete', net.device!]);
  }

  async join(net: NetworkRecord, ep: EndpointRecord, sb: SandboxTarget): Promise<EndpointRecord> {
    const ns = sandboxNs(sb);
    const hostIf = ep.hostIfname!;
    const mac = ep.mac ?? macForIPv4(ep.ipv4!);
    if (!(await link(HOST, hostIf))) {
      try {
        await ip(HOST, ['link', 'add', 'name', hostIf, 'type', 'veth', 'peer', 'name', ep.ifname, 'netns', ns.name]);
      } catch (err) {
        throw new Error(`could not create veth "${hostIf}" for ${sb.record.name} on ${net.name}: ${(err as Error).message}`);
      }
    }
    const mtu = net.options[BridgeOption.mtu];
    await ip(HOST, ['link', 'set', 'dev', hostIf, ...(mtu ? ['mtu', mtu] : []), 'master', net.device!, 'addrgenmode', 'none', 'up']);
    await ip(ns, ['link', 'set', 'dev', ep.ifname, ...(mtu ? ['mtu', mtu] : []), 'address', mac]);
    await ensureAddress(ns, ep.ifname, `${ep.ipv4}/${prefixOf(net)}`);
    await ip(ns, ['link', 'set', 'dev', ep.ifname, 'up']);
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
