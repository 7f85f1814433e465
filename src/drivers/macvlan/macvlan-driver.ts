/**
 * The macvlan driver (moby's `-d macvlan`): each endpoint is a macvlan device on the network's
 * lower device, with its own MAC, straight on the parent's LAN — no bridge, no NAT, the kernel's
 * macvlan does the forwarding. The lower device is:
 *  - the parent (`-o parent=eth0`), shared by any number of networks on different subnets;
 *  - a VLAN of a trunk (`-o parent=eth0.50`): the kernel's VLAN device where the kernel has
 *    8021q (as Docker); otherwise `eth0.50` is one end of a veth pair (the other only keeps it
 *    up), and eBPF tags what leaves it and untags what the trunk receives for it
 *    (bpf/vlan.bpf.c, vlan-programs.ts);
 *  - with --internal: an isolated segment, a veth pair with no address whose far end is a sink
 *    (this kernel has no `dummy`; a bridge without ports would have no carrier, and a macvlan
 *    on a lower without carrier cannot send at all).
 * The embedded DNS cannot listen on the network's gateway (the LAN's router), and the host
 * cannot reach its own macvlan children through the parent (a kernel property), so each
 * network gets a macvlan of the daemon's own on the lower device — the usual remedy for
 * host-to-child traffic — holding the resolver's address (the last of the network's range),
 * with a host route to each child through it. With --ipv6 the same interface holds an IPv6
 * resolver address too (the last of the IPv6 range), each child gets its IPv6 address, an
 * EUI-64 link-local one and a default route via the IPv6 gateway (the LAN's router).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { conflict, invalid } from '../../errors.js';
import { formatIPv4, parseCidr } from '../../ipam/ipv4.js';
import { formatIp, ipBytes, lastOf, parseIp, parsePrefix } from '../../ipam/ip.js';
import { gateway6For, prefix6For, type EndpointRecord, type NetworkRecord } from '../../networks/model.js';
import { CommandError } from '../../system/exec.js';
import { ip, ipBatch, ipJson } from '../../system/ip.js';
import { failpoint } from '../../util/failpoint.js';
import { ensureSysctl, writeSysctls } from '../../system/sysctl.js';
import { macForIPv4, type Driver, type DriverCapabilities, type JoinTarget } from '../driver.js';
import { DAEMON_NETNS, ipBatchAt, linkAt, netnsExists } from '../netns-path.js';
import { KernelFeatures } from './kernel-features.js';
import { MacvlanOption, modeOf, parseVlanParent, validateMacvlanOptions } from './options.js';
import { VlanPrograms } from './vlan-programs.js';
import { enableJoinIPv6 } from '../join-ipv6.js';

/** What `ip -d link show` tells about a device that decides whether it is ours. */
interface Device {
  ifname: string;
  address?: string;
  mtu?: number;
  ifalias?: string;
  linkinfo?: { info_kind?: string };
}

async function device(ifname: string): Promise<Device | undefined> {
  try {
    return (await ipJson<Device[]>(null, ['-d', 'link', 'show', 'dev', ifname]))[0];
  } catch (err) {
    if (err instanceof CommandError && /does not exist|Cannot find device/.test(err.stderr)) return undefined;
    throw new Error(`could not look up interface "${ifname}": ${(err as Error).message}`);
  }
}

/**
 * Docker's MAC for an endpoint: 02:42 + its IPv4 address; on an IPv6-only network 02:42 + the
 * last four bytes of its IPv6 address (as the bridge driver does).
 */
function macOf(ep: Pick<EndpointRecord, 'ipv4' | 'ipv6'>): string | undefined {
  if (ep.ipv4) return macForIPv4(ep.ipv4);
  const a = ep.ipv6 ? parseIp(ep.ipv6) : undefined;
  return a && ['02', '42', ...ipBytes(a).subarray(12).toString('hex').match(/../g)!].join(':');
}

/** The resolver interface's MAC: from its IPv4 address, else its IPv6 one. */
function shimMac(net: NetworkRecord): string | undefined {
  return macOf({ ipv4: net.dnsAddress, ipv6: net.dnsAddress6 });
}

const prefixOf = (net: NetworkRecord): number | undefined => (net.subnet ? Number(net.subnet.split('/')[1]) : undefined);

const gone = (err: unknown) => /Cannot find device|does not exist|No such process|No such file or directory|Cannot assign/.test((err as Error).message);

/** How a network's lower device came to be (decides what network rm takes away). */
type LowerKind = 'parent' | 'segment' | 'kernel-vlan' | 'ebpf-vlan';

export interface MacvlanDriverOptions {
  /** The daemon's instance: markers on the devices it makes, and its bpffs directory. */
  instance: string;
  /** The daemon's link prefix (bnXXXX); macvlan objects use mvXXXX, which reconcile's sweep of bn* strays never takes. */
  linkPrefix: string;
  features?: KernelFeatures;
  /** The programs' pin directory (default /sys/fs/bpf/<instance>/macvlan). */
  pinDir?: string;
}

export class MacvlanDriver implements Driver {
  readonly name = 'macvlan';
  readonly capabilities: DriverCapabilities = {
    datapath: false,
    scope: 'local',
    needsParent: true,
    ownNamespace: true,
    addresses: true,
    userNetworks: true,
    embeddedDns: true,
    disconnect: true,
    // Each endpoint gets its own subnet's prefix and default route: the LAN routes the subnets.
    severalSubnets6: true,
    // moby publishes nothing on macvlan (the sandbox is on the LAN itself) and says nothing.
    publishRefusal: '',
  };
  readonly #prefix: string;
  readonly #marker: string;
  readonly #features: KernelFeatures;
  readonly #pinDir: string;
  #programs?: VlanPrograms;
  /** Networks built in this process (createNetwork runs for every stored one at start). */
  readonly #nets = new Map<string, NetworkRecord>();

  constructor(opts: MacvlanDriverOptions) {
    this.#prefix = `mv${opts.linkPrefix.slice(2)}`;
    this.#marker = `bpfnet:${opts.instance}:macvlan`;
    this.#features = opts.features ?? new KernelFeatures();
    this.#pinDir = opts.pinDir ?? join('/sys/fs/bpf', opts.instance, 'macvlan');
  }

  /** Loaded on first use: a daemon without macvlan networks never loads them. */
  get programs(): VlanPrograms {
    this.#programs ??= new VlanPrograms(this.#pinDir);
    return this.#programs;
  }

  #name(kind: string, id: string): string {
    return `${this.#prefix}${kind}${id.slice(0, 14 - this.#prefix.length)}`;
  }
  /** The daemon's resolver interface of a network. */
  shimName(networkId: string): string {
    return this.#name('d', networkId);
  }
  /** An endpoint's macvlan while it waits in the daemon's namespace. */
  parkedName(endpointId: string): string {
    return this.#name('c', endpointId);
  }
  #segmentName(networkId: string): string {
    return this.#name('i', networkId);
  }
  #sinkName(networkId: string): string {
    return this.#name('s', networkId);
  }
  /** passthru: the other end of the resolver's veth pair (the resolver interface is the one end). */
  #passthruPeer(networkId: string): string {
    return this.#name('e', networkId);
  }
  #isPassthru(net: NetworkRecord): boolean {
    return modeOf(net.options) === 'passthru' && !net.internal;
  }
  /** The other end of a VLAN stand-in (it only gives the stand-in a carrier), named from the stand-in's own name. */
  #standInPeer(standIn: string): string {
    return this.#name('t', createHash('sha1').update(standIn).digest('hex'));
  }

  validateOptions(options: Readonly<Record<string, string>>): void {
    validateMacvlanOptions(options);
  }

  /** The device that is this network's own (its parent is shared): the resolver interface. */
  deviceFor(networkId: string): string {
    return this.shimName(networkId);
  }

  /**
   * The embedded DNS's address on this network: the last address of its range (or subnet) that
   * is neither the gateway nor an auxiliary address, so sandboxes keep Docker's addresses from
   * the bottom. In passthru mode too, though the kernel refuses any second macvlan on a passthru
   * lower (EINVAL, whatever its mode) and the host cannot reach the child through the parent (in
   * passthru every unicast frame the parent receives goes to the child, and what the host sends
   * out of the parent goes to the wire): there the resolver interface is one end of a veth pair
   * and eBPF joins the pair to the parent (ensurePassthru in vlan-programs.ts).
   */
  resolverAddress(net: NetworkRecord): string | undefined {
    if (!net.subnet) return undefined;
    const pool = parseCidr(net.ipRange ?? net.subnet)!;
    const taken = new Set([net.gateway, ...net.ipamConfig.flatMap((c) => Object.values(c.AuxiliaryAddresses ?? {}))]);
    const last = pool.addr + 2 ** (32 - pool.bits) - 2;
    for (let a = last; a > pool.addr; a--) if (!taken.has(formatIPv4(a))) return formatIPv4(a);
    return undefined;
  }

  /** The same on the IPv6 subnet: the last address of its range (or subnet) nothing else holds. */
  resolverAddress6(net: NetworkRecord): string | undefined {
    if (!net.subnet6) return undefined;
    const pool = parsePrefix(net.ipRange6 ?? net.subnet6)!;
    const taken = new Set([net.gateway6, ...net.ipamConfig.flatMap((c) => Object.values(c.AuxiliaryAddresses ?? {}))].map((a) => a && formatIp(parseIp(a) ?? { family: 4, value: 0n })));
    // The last but one, as on IPv4 (the all-ones address is valid on IPv6, but some LANs' routers take it).
    for (let v = lastOf(pool) - 1n; v > lastOf(pool) - 256n; v--) {
      const a = formatIp({ family: 6, value: v });
      if (!taken.has(a)) return a;
    }
    return undefined;
  }

  async checkNetwork(net: NetworkRecord): Promise<void> {
    if (net.internal) return; // moby: --internal ignores the parent and makes an isolated segment
    const parent = net.options[MacvlanOption.parent];
    const mode = modeOf(net.options);
    for (const other of this.#nets.values()) {
      if (other.internal || other.options[MacvlanOption.parent] !== parent) continue;
      if (mode === 'passthru') throw conflict(`cannot use mode passthru, macvlan network ${other.id.slice(0, 12)} is already using parent interface ${parent}`);
      if (modeOf(other.options) === 'passthru') throw conflict(`macvlan network ${other.id.slice(0, 12)} is already using parent interface ${parent} in mode passthru`);
    }
    if (await device(parent)) return;
    if (!parent.includes('.')) throw invalid(`invalid subinterface vlan name ${parent}, example formatting is eth0.10`);
    const { trunk, vid } = parseVlanParent(parent);
    if (!(await device(trunk))) throw invalid(`-o parent interface was not found on the host: ${trunk}`);
    if (vid < 1 || vid > 4094) throw invalid(`vlan id must be between 1-4094, received: ${vid}`);
  }

  #needsHairpin(net: NetworkRecord): boolean {
    const mode = modeOf(net.options);
    return !net.internal && (mode === 'private' || mode === 'vepa');
  }

  /** The device a network's children hang on. */
  lowerOf(net: NetworkRecord): string {
    return net.internal ? this.#segmentName(net.id) : net.options[MacvlanOption.parent];
  }

  async createNetwork(net: NetworkRecord): Promise<void> {
    const lower = await this.#ensureLower(net);
    this.#nets.set(net.id, net);
    const mac = shimMac(net);
    if (!mac) return;
    const shim = this.shimName(net.id);
    const passthru = this.#isPassthru(net);
    const peer = this.#passthruPeer(net.id);
    try {
      if (!(await device(shim)))
        await ip(null, passthru ? ['link', 'add', 'name', shim, 'type', 'veth', 'peer', 'name', peer] : ['link', 'add', 'link', lower, 'name', shim, 'type', 'macvlan', 'mode', 'bridge']);
      await ipBatch(null, [
        ['link', 'set', 'dev', shim, 'alias', this.#marker, 'addrgenmode', 'none', 'address', mac],
        ...(passthru ? [['link', 'set', 'dev', peer, 'addrgenmode', 'none', 'up']] : []),
      ]);
      // IPv6 on the shim alone (the daemon's namespace may have it off by default); no router advertisements taken.
      if (net.dnsAddress6) await writeSysctls({}, { [`net.ipv6.conf.${shim}.disable_ipv6`]: '0', [`net.ipv6.conf.${shim}.accept_ra`]: '0', [`net.ipv6.conf.${shim}.forwarding`]: '0' });
      await ipBatch(null, [
        ...(net.dnsAddress ? [['addr', 'replace', `${net.dnsAddress}/32`, 'dev', shim]] : []),
        // nodad: usable at once, and the address is reserved in IPAM so nothing else on the LAN of ours holds it.
        ...(net.dnsAddress6 ? [['addr', 'replace', `${net.dnsAddress6}/128`, 'dev', shim, 'nodad']] : []),
        ['link', 'set', 'dev', shim, 'up'],
      ]);
      // The host is never a router for its macvlan children (nor a way out of an internal network).
      await ensureSysctl({}, `net/ipv4/conf/${shim}/forwarding`, '0');
    } catch (err) {
      throw new Error(`could not set up the resolver interface "${shim}" of network ${net.name} on ${lower}: ${(err as Error).message}`);
    }
    // Only private and vepa children need it (bridge-mode ones meet the resolver inside the
    // kernel), and every frame leaving the lower would pay for the check.
    if (this.#needsHairpin(net)) this.programs.ensureHairpin(null, lower, mac);
    if (passthru) {
      try {
        this.programs.ensurePassthru(null, lower, peer, mac);
      } catch (err) {
        throw new Error(`could not join the resolver interface "${shim}" of passthru network ${net.name} to ${lower}: ${(err as Error).message}`);
      }
    }
  }

  async #ensureLower(net: NetworkRecord): Promise<string> {
    const lower = this.lowerOf(net);
    if (net.internal) {
      const sink = this.#sinkName(net.id);
      // Both ends up (a macvlan on a lower without carrier cannot send), no address on either:
      // what reaches the sink has nowhere to go.
      const setup = [
        ['link', 'set', 'dev', lower, 'alias', this.#marker, 'addrgenmode', 'none', 'up'],
        ['link', 'set', 'dev', sink, 'addrgenmode', 'none', 'up'],
      ];
      try {
        await ipBatch(null, [...((await device(lower)) ? [] : [['link', 'add', 'name', lower, 'type', 'veth', 'peer', 'name', sink]]), ...setup]);
        await ensureSysctl({}, `net/ipv4/conf/${sink}/forwarding`, '0');
      } catch (err) {
        throw new Error(`could not set up the isolated segment "${lower}" of network ${net.name}: ${(err as Error).message}`);
      }
      return lower;
    }
    const existing = await device(lower);
    if (existing && existing.ifalias !== this.#marker) return lower; // the user's device: used as it is
    if (!lower.includes('.')) throw invalid(`invalid subinterface vlan name ${lower}, example formatting is eth0.10`);
    const { trunk, vid } = parseVlanParent(lower);
    const trunkDev = await device(trunk);
    if (!trunkDev) throw invalid(`-o parent interface was not found on the host: ${trunk}`);
    const kind = existing?.linkinfo?.info_kind;
    if (kind === 'vlan' || (!existing && (await this.#features.probe('vlan')).available)) {
      try {
        await ipBatch(null, [
          ...(existing ? [] : [['link', 'add', 'link', trunk, 'name', lower, 'type', 'vlan', 'id', String(vid)]]),
          ['link', 'set', 'dev', lower, 'alias', this.#marker, 'up'],
        ]);
      } catch (err) {
        throw new Error(`failed to create ${lower} vlan link: ${(err as Error).message}`);
      }
      return lower;
    }
    // No 8021q: the stand-in veth carries the VLAN's children; eBPF tags between it and the trunk.
    const peer = this.#standInPeer(lower);
    try {
      await ipBatch(null, [
        ...(existing ? [] : [['link', 'add', 'name', lower, 'type', 'veth', 'peer', 'name', peer]]),
        ['link', 'set', 'dev', lower, 'alias', this.#marker, 'addrgenmode', 'none', 'mtu', String(trunkDev.mtu ?? 1500)],
        ['link', 'set', 'dev', peer, 'addrgenmode', 'none', 'mtu', String(trunkDev.mtu ?? 1500), 'up'],
        ['link', 'set', 'dev', lower, 'up'],
      ]);
      this.programs.ensureTrunkPort({ netns: null, trunk, standIn: lower, vid });
    } catch (err) {
      throw new Error(`could not set up VLAN ${vid} of ${trunk} as "${lower}" for network ${net.name}: ${(err as Error).message}`);
    }
    return lower;
  }

  async deleteNetwork(net: NetworkRecord): Promise<void> {
    this.#nets.delete(net.id);
    const lower = this.lowerOf(net);
    const stillUsed = [...this.#nets.values()].some((n) => this.lowerOf(n) === lower);
    const hairpinUsed = [...this.#nets.values()].some((n) => this.lowerOf(n) === lower && this.#needsHairpin(n));
    const shim = this.shimName(net.id);
    if (this.#isPassthru(net) && shimMac(net) && (this.#programs || this.#pinned())) this.programs.removePassthru(null, lower, shimMac(net)!);
    const shimDev = await device(shim);
    if (shimDev) await ip(null, ['link', 'delete', shim]);
    await failpoint('macvlan:remove:after-shim');
    if (shimMac(net) && this.#needsHairpin(net)) this.programs.removeHairpin(null, hairpinUsed ? undefined : lower, shimMac(net)!);
    if (stillUsed) return;
    const dev = await device(lower);
    if (!dev || dev.ifalias !== this.#marker) return; // gone, or the user's: never ours to delete
    if (dev.linkinfo?.info_kind === 'veth' && !net.internal) {
      const { trunk, vid } = parseVlanParent(lower);
      this.programs.removeTrunkPort({ netns: null, trunk, standIn: lower, vid });
    }
    // Deleting one end of a veth takes the pair.
    await ip(null, ['link', 'delete', lower]).catch((err: unknown) => {
      if (!gone(err)) throw new Error(`could not delete ${lower} of network ${net.name}: ${(err as Error).message}`);
    });
  }

  async createEndpoint(net: NetworkRecord, ep: EndpointRecord): Promise<EndpointRecord> {
    const parked = this.parkedName(ep.id);
    const mode = net.internal ? 'bridge' : modeOf(net.options);
    if (!(await device(parked))) {
      try {
        await ip(null, ['link', 'add', 'link', this.lowerOf(net), 'name', parked, 'type', 'macvlan', 'mode', mode]);
      } catch (err) {
        throw new Error(`failed to create the macvlan port: could not add "${parked}" on ${this.lowerOf(net)} for endpoint ${ep.id.slice(0, 12)}: ${(err as Error).message}`);
      }
    }
    await ip(null, ['link', 'set', 'dev', parked, 'addrgenmode', 'none']);
    // passthru: the child takes the parent's MAC and the parent keeps it (setting another would change the parent's).
    const mac = mode === 'passthru' ? (await device(parked))?.address : (ep.mac ?? macOf(ep));
    return { ...ep, mac, ...(net.subnet ? { prefixLength: prefixOf(net) } : {}), ...(net.subnet6 ? { prefixLength6: prefix6For(net, ep.ipv6) } : {}) };
  }

  async join(net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<EndpointRecord> {
    if (!target.netnsPath) throw new Error(`endpoint ${ep.id.slice(0, 12)} on ${net.name} needs a namespace of its own to join`);
    const parked = this.parkedName(ep.id);
    try {
      await ip(null, ['link', 'set', 'dev', parked, 'netns', target.netnsPath, 'name', target.ifname]);
    } catch (err) {
      if (!gone(err) || !(await linkAt(target.netnsPath, target.ifname)))
        throw new Error(`could not move endpoint ${ep.id.slice(0, 12)} (${parked}) into ${target.netnsPath} as ${target.ifname}: ${(err as Error).message}`);
    }
    const mac = ep.mac!;
    const passthru = modeOf(net.options) === 'passthru' && !net.internal;
    if (ep.ipv6) await enableJoinIPv6(ep.id, target.netnsPath);
    const resolverMac = shimMac(net);
    await ipBatchAt(target.netnsPath, [
      ['link', 'set', 'dev', 'lo', 'up'],
      // eui64 on an IPv6 endpoint: its fe80:: address from its MAC, the only link-local one the guard lets out.
      // None on IPv4-only networks (Docker's; the guard would drop it).
      ['link', 'set', 'dev', target.ifname, 'addrgenmode', ep.ipv6 ? 'eui64' : 'none', ...(passthru ? [] : ['address', mac])],
      ...(ep.ipv4 ? [['addr', 'replace', `${ep.ipv4}/${prefixOf(net)}`, 'dev', target.ifname]] : []),
      ...(ep.ipv6 ? [['addr', 'replace', `${ep.ipv6}/${prefix6For(net, ep.ipv6)}`, 'dev', target.ifname, 'nodad']] : []),
      ['link', 'set', 'dev', target.ifname, 'up'],
      // The resolver never answers ARP or NDP to a private- or vepa-mode child (their multicasts leave the host): known in advance.
      ...(net.dnsAddress && resolverMac ? [['neigh', 'replace', net.dnsAddress, 'lladdr', resolverMac, 'dev', target.ifname, 'nud', 'permanent']] : []),
      ...(net.dnsAddress6 && ep.ipv6 && resolverMac ? [['neigh', 'replace', net.dnsAddress6, 'lladdr', resolverMac, 'dev', target.ifname, 'nud', 'permanent']] : []),
      ...(target.defaultRoute ? this.#defaultRoutes(net, ep, target.ifname) : []),
    ]);
    await this.#hostRoute(net, ep, mac, 'replace');
    this.programs.guard(target.netnsPath, target.ifname, { mac, ipv4: ep.ipv4, ipv6: ep.ipv6 ? ipBytes(parseIp(ep.ipv6)!) : undefined });
    return { ...ep, ifname: target.ifname, mac, ...(net.subnet ? { prefixLength: prefixOf(net) } : {}), ...(net.subnet6 ? { prefixLength6: prefix6For(net, ep.ipv6) } : {}) };
  }



  /** A default route per family the endpoint has an address of, via that family's gateway (none on an internal network). */
  #defaultRoutes(net: NetworkRecord, ep: EndpointRecord, ifname: string): string[][] {
    if (net.internal) return []; // moby: no gateway on an internal macvlan network
    return [
      ...(ep.ipv4 && net.gateway ? [['route', 'replace', 'default', 'via', net.gateway, 'dev', ifname]] : []),
      ...(ep.ipv6 && net.gateway6 ? [['route', 'replace', 'default', 'via', gateway6For(net, ep.ipv6)!, 'dev', ifname]] : []),
    ];
  }

  /** The host's way to a child: through the resolver interface, never the parent (which cannot reach it). */
  async #hostRoute(net: NetworkRecord, ep: EndpointRecord, mac: string, op: 'replace' | 'delete'): Promise<void> {
    const shim = this.shimName(net.id);
    const families = [
      { addr: ep.ipv4, bits: 32, src: net.dnsAddress },
      { addr: ep.ipv6, bits: 128, src: net.dnsAddress6 },
    ].filter((f): f is { addr: string; bits: number; src: string } => f.addr !== undefined && f.src !== undefined);
    for (const f of families) {
      const cmds =
        op === 'replace'
          ? [
              ['route', 'replace', `${f.addr}/${f.bits}`, 'dev', shim, 'src', f.src],
              ['neigh', 'replace', f.addr, 'lladdr', mac, 'dev', shim, 'nud', 'permanent'],
            ]
          : [
              ['route', 'delete', `${f.addr}/${f.bits}`, 'dev', shim],
              ['neigh', 'delete', f.addr, 'dev', shim],
            ];
      for (const c of cmds) {
        await ip(null, c).catch((err: unknown) => {
          if (op === 'replace' || !gone(err)) throw new Error(`could not ${op} the host's route to ${f.addr} through ${shim}: ${(err as Error).message}`);
        });
      }
    }
  }

  async setDefaultRoute(net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<void> {
    const routes = this.#defaultRoutes(net, ep, target.ifname);
    if (routes.length === 0 || !target.netnsPath) return;
    if (ep.ipv6) await enableJoinIPv6(ep.id, target.netnsPath);
    await ipBatchAt(target.netnsPath, routes);
  }

  async leave(net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<void> {
    if (ep.mac) await this.#hostRoute(net, ep, ep.mac, 'delete');
    if (!target.netnsPath || !netnsExists(target.netnsPath)) return;
    try {
      await ipBatchAt(target.netnsPath, [
        ['link', 'set', 'dev', target.ifname, 'down'],
        ['addr', 'flush', 'dev', target.ifname],
        ['link', 'set', 'dev', target.ifname, 'netns', DAEMON_NETNS, 'name', this.parkedName(ep.id)],
      ]);
    } catch (err) {
      if (!gone(err)) throw new Error(`could not take ${target.ifname} of endpoint ${ep.id.slice(0, 12)} out of ${target.netnsPath}: ${(err as Error).message}`);
    }
  }

  async deleteEndpoint(net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    if (ep.mac) await this.#hostRoute(net, ep, ep.mac, 'delete');
    // Also when this process has not loaded the programs yet (a restarted daemon undoing a half-made endpoint).
    if (ep.mac && (this.#programs || this.#pinned())) this.programs.forget(ep.mac);
    await ip(null, ['link', 'delete', this.parkedName(ep.id)]).catch((err: unknown) => {
      if (!gone(err)) throw new Error(`could not delete ${this.parkedName(ep.id)} of endpoint ${ep.id.slice(0, 12)}: ${(err as Error).message}`);
    });
  }

  /** Every device name these networks and endpoints may have in the daemon's namespace. */
  knownDevices(networks: readonly NetworkRecord[], endpoints: readonly EndpointRecord[]): Set<string> {
    const known = new Set<string>();
    for (const net of networks) {
      const lower = this.lowerOf(net);
      known.add(this.shimName(net.id)).add(lower);
      if (net.internal) known.add(this.#sinkName(net.id));
      if (this.#isPassthru(net)) known.add(this.#passthruPeer(net.id));
      else if (lower.includes('.')) known.add(this.#standInPeer(lower));
    }
    for (const ep of endpoints) known.add(this.parkedName(ep.id));
    return known;
  }

  /** A device this daemon's macvlan driver made: under its prefix, or carrying its marker. */
  isOurs(dev: { ifname: string; ifalias?: string }): boolean {
    return dev.ifname.startsWith(this.#prefix) || dev.ifalias === this.#marker;
  }

  /** Whether an earlier daemon of this instance pinned the programs' maps. */
  #pinned(): boolean {
    return existsSync(join(this.#pinDir, 'mvg_owners'));
  }

  /**
   * What a daemon killed in the middle of an operation may leave that no stored network or
   * endpoint accounts for (reconcile calls this after rebuilding the stored ones): devices under
   * the macvlan prefix or with our marker (children, resolver interfaces, VLAN stand-ins and
   * their peers, isolated segments and their sinks), a removed stand-in's trunk entries, and the
   * guard's and hairpin's entries of MACs nobody holds. The bn* sweep never sees mv* names, and
   * a parent that is the user's (no marker) is never touched. Returns the devices removed.
   */
  async sweep(networks: readonly NetworkRecord[], endpoints: readonly EndpointRecord[]): Promise<string[]> {
    const known = this.knownDevices(networks, endpoints);
    const removed: string[] = [];
    for (const dev of await ipJson<Device[]>(null, ['-d', 'link', 'show'])) {
      if (!this.isOurs(dev) || known.has(dev.ifname)) continue;
      if (dev.ifalias === this.#marker && dev.linkinfo?.info_kind === 'veth' && dev.ifname.includes('.')) {
        const { trunk, vid } = parseVlanParent(dev.ifname);
        this.programs.removeTrunkPort({ netns: null, trunk, standIn: dev.ifname, vid });
      }
      // One end of a veth takes its peer: the peer, met later in the list, is already gone.
      try {
        await ip(null, ['link', 'delete', dev.ifname]);
        removed.push(dev.ifname);
      } catch (err) {
        if (!gone(err)) throw new Error(`could not remove the stray macvlan device "${dev.ifname}": ${(err as Error).message}`);
      }
    }
    if (this.#programs || this.#pinned()) {
      const resolvers = new Set(networks.map(shimMac).filter((m): m is string => m !== undefined));
      this.programs.sweepEntries(new Set(endpoints.map((e) => e.mac).filter((m): m is string => m !== undefined)), resolvers);
    }
    return removed;
  }

  async joined(_net: NetworkRecord, _ep: EndpointRecord, target: JoinTarget): Promise<boolean> {
    return target.netnsPath !== null && (await linkAt(target.netnsPath, target.ifname)) !== undefined;
  }
}

