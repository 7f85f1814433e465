/**
 * Attaching sandboxes to networks: the one place that turns an endpoint record into kernel
 * objects (driver createEndpoint + join by namespace path + datapath) and back, with rollback.
 * bpfnet's sandboxes are one client of the endpoint verbs (their namespace is /run/netns/NAME,
 * their interfaces eth0, eth1...); endpoints.ts is another, for namespaces bpfnet does not own. Each attach is two transactions
 * around the kernel work: the endpoint is stored as 'creating' (its address held) before
 * anything is built and becomes 'active' after; a daemon killed in between finds the
 * 'creating' endpoint at start and undoes it (see daemon/reconcile.ts).
 */
import type { Datapath } from '../datapath/datapath.js';
import type { Driver, JoinTarget } from '../drivers/driver.js';
import { exclusiveError, type DriverRegistry } from '../drivers/registry.js';
import { conflict, forbidden, invalid, notFound, ServiceError } from '../errors.js';
import { IpAllocator, Ipv4Allocator, type IpPool, type Pool } from '../ipam/allocator.js';
import { formatIp, parseIp, parsePrefix, prefixContains, type IpAddress } from '../ipam/ip.js';
import { parseCidr, parseIPv4 } from '../ipam/ipv4.js';
import type { Store } from '../store/store.js';
import { failpoint } from '../util/failpoint.js';
import { newId } from '../util/ids.js';
import type { EngineConfig } from './config.js';
import { subnets6Of, type EndpointRecord, type NetworkRecord, type SandboxRecord } from './model.js';
import { validateHostname } from './names.js';
import { endpointSpec, networkSpec, portSpecs } from './spec.js';
import { isNotFound, type GlobalScope } from './global-scope.js';

export interface AttachOptions {
  ipv4?: string;
  /** A static IPv6 address (--ip6, IPAMConfig.IPv6Address). */
  ipv6?: string;
  aliases?: string[];
}

export class Attachments {
  readonly #store: Store;
  readonly #drivers: DriverRegistry;
  readonly #datapath: Datapath;
  readonly #cfg: EngineConfig;
  readonly #allocator: Ipv4Allocator;
  /** Called after a sandbox's endpoints changed (files and names depend on them). */
  readonly listeners = new Set<(sb: SandboxRecord) => void>();
  /** With --cluster-store: endpoints of global networks take their address from the cluster and are published there. */
  global?: GlobalScope;
  /** Static addresses asked for endpoints of global networks, between reserve() and build(). */
  readonly #asked = new Map<string, Pick<AttachOptions, 'ipv4' | 'ipv6'>>();

  constructor(store: Store, drivers: DriverRegistry, datapath: Datapath, cfg: EngineConfig) {
    this.#store = store;
    this.#drivers = drivers;
    this.#datapath = datapath;
    this.#cfg = cfg;
    // Foreign endpoints' addresses are stored like the others: the endpoints are too (endpoints.ts).
    this.#allocator = new Ipv4Allocator(store.ipam);
  }

  get allocator(): Ipv4Allocator {
    return this.#allocator;
  }

  /** The same allocator for addresses of either family. */
  get ipAllocator(): IpAllocator {
    return this.#allocator.ip;
  }

  get drivers(): DriverRegistry {
    return this.#drivers;
  }

  get datapath(): Datapath {
    return this.#datapath;
  }

  driver(net: NetworkRecord): Driver {
    return this.#drivers.get(net.driver);
  }

  /** Where a sandbox's endpoint joins: its namespace by path (null: the daemon's own) under its ethN name. */
  target(sb: SandboxRecord, ep: EndpointRecord): JoinTarget {
    return { netnsPath: sb.netns ? `/run/netns/${sb.netns}` : null, ifname: ep.ifname };
  }

  /** The namespace path a datapath uses to reach a sandbox. */
  netnsPath(sb: SandboxRecord): string {
    return sb.netns ? `/run/netns/${sb.netns}` : this.#cfg.hostNetnsPath;
  }

  static pool(net: NetworkRecord): Pool {
    return { id: net.id, label: net.name, subnet: parseCidr(net.subnet!)!, range: net.ipRange ? parseCidr(net.ipRange) : undefined };
  }

  /** The network's pools, IPv4 first, then each IPv6 subnet in order (all share the network's IPAM pool id). */
  static pools(net: NetworkRecord): IpPool[] {
    const pool = (subnet: string | undefined, range: string | undefined): IpPool[] =>
      subnet ? [{ id: net.id, label: net.name, subnet: parsePrefix(subnet)!, range: range ? parsePrefix(range) : undefined }] : [];
    return [...pool(net.subnet, net.ipRange), ...subnets6Of(net).flatMap((s) => pool(s.subnet, s.ipRange))];
  }

  /** The sandbox's first active endpoint with an address (of either family): default route and published ports go there. */
  primary(sandboxId: string): EndpointRecord | undefined {
    return this.#store.endpoints.forSandbox(sandboxId).find((e) => e.state === 'active' && (e.ipv4 !== undefined || e.ipv6 !== undefined));
  }

  /**
   * Checks an attach against Docker's rules; throws the error moby would. `creating`: the
   * sandbox's first network, given at creation, which decides its mode (host and none are
   * allowed there and only there: the connect-time rules below are about changing a mode).
   */
  checkAttach(sb: SandboxRecord, net: NetworkRecord, opts: AttachOptions, creating = false): void {
    const existing = this.#store.endpoints.forSandbox(sb.id);
    if (existing.some((e) => e.networkId === net.id)) throw conflict(`${sb.name} is already attached to network ${net.name}`);
    // Exclusive modes (host, none): only at creation, and alone. The joined network's rule is checked first, as moby does.
    const drivers = [...existing.map((e) => this.driver(this.#store.networks.get(e.networkId)!)), this.driver(net)];
    const refusal = [...(creating ? [] : [this.driver(net)]), ...drivers.slice(0, -1)]
      .sort((a, b) => rank(a) - rank(b))
      .map(exclusiveError)
      .find((e) => e !== undefined);
    if (refusal) throw refusal;
    const problems: string[] = [];
    if (net.predefined && (opts.ipv4 || opts.ipv6)) problems.push('user specified IP address is supported on user defined networks only');
    if (net.predefined && opts.aliases && opts.aliases.length > 0) problems.push('network-scoped alias is supported only for containers in user defined networks');
    if (problems.length > 0) throw invalid(`invalid endpoint settings:\n${problems.join('\n')}`);
    if (opts.ipv4 !== undefined && parseIPv4(opts.ipv4) === undefined) throw invalid(`invalid endpoint settings:\ninvalid IPv4 address: ${opts.ipv4}`);
    if (opts.ipv6 !== undefined && !isUsableIPv6(opts.ipv6)) throw invalid(`invalid endpoint settings:\ninvalid IPv6 address: ${opts.ipv6}`);
    if (opts.ipv4 !== undefined && !net.subnet) throw invalid(`invalid endpoint settings:\nuser specified IPv4 address ${opts.ipv4} on network ${net.name}, which has IPv4 disabled`);
    if (opts.ipv6 !== undefined && !net.subnet6) throw invalid(`invalid endpoint settings:\nuser specified IPv6 address ${opts.ipv6} on network ${net.name}, which has IPv6 disabled`);
    for (const a of opts.aliases ?? []) validateHostname('alias', a);
  }

  /** Stores a 'creating' endpoint holding its address (inside the caller's transaction). */
  reserve(sb: SandboxRecord, net: NetworkRecord, opts: AttachOptions): EndpointRecord {
    const existing = this.#store.endpoints.forSandbox(sb.id);
    const used = new Set(existing.map((e) => e.ifname));
    let n = 0;
    while (used.has(`eth${n}`)) n++;
    const id = newId();
    const ep: EndpointRecord = {
      id,
      networkId: net.id,
      sandboxId: sb.id,
      state: 'creating',
      seq: existing.reduce((m, e) => Math.max(m, e.seq + 1), 0),
      ifname: `eth${n}`,
      aliases: [...new Set(opts.aliases ?? [])],
      staticIp: opts.ipv4 !== undefined,
    };
    if (this.#globalFor(net)) {
      // The cluster allocates in build(); a static address is only remembered until then (not stored: nothing local holds it yet).
      if (opts.ipv4 !== undefined || opts.ipv6 !== undefined) this.#asked.set(id, { ipv4: opts.ipv4, ipv6: opts.ipv6 });
    } else if (this.driver(net).capabilities.addresses) Object.assign(ep, this.allocate(net, `sandbox ${sb.name}`, opts));
    this.#store.endpoints.insert(ep);
    return ep;
  }

  #globalFor(net: NetworkRecord): GlobalScope | undefined {
    return net.scope === 'global' ? this.global : undefined;
  }

  /** The cluster half of an attach: the address by compare-and-swap in the cluster, then held locally too. */
  async #claimGlobal(global: GlobalScope, sb: SandboxRecord, net: NetworkRecord, ep: EndpointRecord): Promise<EndpointRecord> {
    const asked = this.#asked.get(ep.id);
    this.#asked.delete(ep.id);
    const { ipv4, ipv6 } = await global.connect({
      network: net.id,
      endpointId: ep.id,
      name: sb.name,
      aliases: ep.aliases,
      ...(asked?.ipv4 !== undefined ? { ipv4: asked.ipv4 } : {}),
      ...(asked?.ipv6 !== undefined ? { ipv6: asked.ipv6 } : {}),
    });
    if ((net.subnet && !ipv4) || (net.subnet6 && !ipv6)) throw new ServiceError('system', `cluster gave endpoint ${ep.id.slice(0, 12)} on network ${net.name} no address of each of its families`);
    const claimed: EndpointRecord = {
      ...ep,
      ...(ipv4 ? { ipv4, prefixLength: parsePrefix(net.subnet!)!.bits } : {}),
      ...(ipv6 ? { ipv6, prefixLength6: parsePrefix(net.subnet6!)!.bits, ...(asked?.ipv6 !== undefined ? { staticIp6: true } : {}) } : {}),
    };
    this.#store.transaction(() => {
      for (const pool of Attachments.pools(net)) {
        const address = pool.subnet.family === 4 ? ipv4 : ipv6;
        if (address) this.#allocator.ip.reserve(pool, parseIp(address)!, `sandbox ${sb.name}`);
      }
      this.#store.endpoints.update(claimed);
    });
    return claimed;
  }

  /** Holds an address of each family the network has (the static one given, else the next free) for owner. */
  allocate(net: NetworkRecord, owner: string, opts: Pick<AttachOptions, 'ipv4' | 'ipv6'>): Partial<EndpointRecord> {
    const out: Partial<EndpointRecord> = { staticIp: opts.ipv4 !== undefined };
    const pools = Attachments.pools(net);
    const six = pools.filter((p) => p.subnet.family === 6);
    const asked6 = opts.ipv6 !== undefined ? parseIp(opts.ipv6) : undefined;
    // One pool per family: IPv6 from the subnet holding a static --ip6, else the first subnet with room.
    const chosen = [...pools.filter((p) => p.subnet.family === 4), ...(six.length > 0 ? [asked6 ? (six.find((p) => prefixContains(p.subnet, asked6)) ?? six[0]!) : six[0]!] : [])];
    for (const pool of chosen) {
      const wanted = pool.subnet.family === 4 ? opts.ipv4 : opts.ipv6;
      let address;
      if (wanted !== undefined) {
        address = parseIp(wanted)!;
        this.#allocator.ip.reserve(pool, address, owner);
      } else if (pool.subnet.family === 6) {
        address = this.#allocateFirstWithRoom(six, owner);
      } else {
        address = this.#allocator.ip.allocate(pool, owner);
      }
      if (pool.subnet.family === 4) Object.assign(out, { ipv4: formatIp(address), prefixLength: pool.subnet.bits });
      else {
        const holding = six.find((p) => prefixContains(p.subnet, address)) ?? pool;
        Object.assign(out, { ipv6: formatIp(address), prefixLength6: holding.subnet.bits, ...(wanted !== undefined ? { staticIp6: true } : {}) });
      }
    }
    return out;
  }

  /** The next free address of the first IPv6 subnet that has one (moby: the next pool when one is full). */
  #allocateFirstWithRoom(pools: IpPool[], owner: string): IpAddress {
    for (const [i, pool] of pools.entries()) {
      try {
        return this.#allocator.ip.allocate(pool, owner);
      } catch (err) {
        if (i === pools.length - 1 || !(err instanceof ServiceError) || !/no available/.test(err.message)) throw err;
      }
    }
    throw new ServiceError('system', 'no IPv6 subnet to allocate from');
  }

  /** Builds the kernel side of a reserved endpoint and marks it active; undoes its own work on failure. */
  async build(sb: SandboxRecord, ep: EndpointRecord): Promise<EndpointRecord> {
    const net = this.#store.networks.get(ep.networkId)!;
    const driver = this.driver(net);
    let built = ep;
    // The first endpoint with an address is the primary: the default route and published ports go there.
    const becomesPrimary = driver.capabilities.addresses && !this.primary(sb.id);
    try {
      const global = this.#globalFor(net);
      if (global) built = await this.#claimGlobal(global, sb, net, built);
      const target = { ...this.target(sb, built), defaultRoute: becomesPrimary };
      built = await driver.createEndpoint(net, built, target);
      // Stored at once: a daemon killed before join still knows the host-side device to remove.
      this.#store.endpoints.update(built);
      built = await driver.join(net, built, target);
      await failpoint('attach:after-join');
      if (driver.capabilities.datapath) await this.#datapath.ensureEndpoint(networkSpec(net), endpointSpec(built, this.netnsPath(sb)));
      await failpoint('attach:after-datapath');
      built = { ...built, state: 'active' };
      this.#store.endpoints.update(built);
      if (becomesPrimary) await this.#publish(sb, built, net);
      await failpoint('attach:after-publish');
      this.#changed(sb);
      return built;
    } catch (err) {
      await this.teardown(sb, built).catch(() => undefined);
      this.#store.transaction(() => this.forget(built));
      throw err;
    }
  }

  /** Removes an endpoint's kernel side (idempotent; also for half-built endpoints). */
  async teardown(sb: SandboxRecord, ep: EndpointRecord): Promise<void> {
    const net = this.#store.networks.get(ep.networkId);
    if (!net) return;
    const driver = this.driver(net);
    if (driver.capabilities.datapath && ep.hostIfname && (ep.ipv4 || ep.ipv6) && ep.mac)
      await this.#datapath.removeEndpoint(networkSpec(net), endpointSpec(ep, this.netnsPath(sb)));
    await driver.leave(net, ep, this.target(sb, ep));
    await driver.deleteEndpoint(net, ep);
    // Last: the kernel is clean even when the cluster is out of reach (its journal withdraws the endpoint at the next join).
    await this.#globalFor(net)
      ?.disconnect(net.id, ep.id)
      .catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
  }

  /** Frees the endpoint's addresses of both families. */
  release(net: NetworkRecord, ep: EndpointRecord): void {
    for (const pool of Attachments.pools(net)) {
      const text = pool.subnet.family === 4 ? ep.ipv4 : ep.ipv6;
      const address = text ? parseIp(text) : undefined;
      // The IPv6 address is held in the one subnet that contains it.
      if (address && (pool.subnet.family === 4 || prefixContains(pool.subnet, address))) this.#allocator.ip.release(pool, address);
    }
  }

  /** Deletes an endpoint record and frees its addresses (inside the caller's transaction). */
  forget(ep: EndpointRecord): void {
    const net = this.#store.networks.get(ep.networkId);
    if (net) this.release(net, ep);
    this.#store.endpoints.delete(ep.id);
  }

  /** Detaches an active endpoint: kernel first, then the record; the primary role moves on. */
  async detach(sb: SandboxRecord, ep: EndpointRecord): Promise<void> {
    const wasPrimary = this.primary(sb.id)?.id === ep.id;
    if (wasPrimary) await this.#unpublish(sb, ep);
    await failpoint('detach:after-unpublish');
    await this.teardown(sb, ep);
    await failpoint('detach:after-teardown');
    this.#store.transaction(() => this.forget(ep));
    if (wasPrimary) await this.refreshPrimary(sb);
    this.#changed(sb);
  }

  #changed(sb: SandboxRecord): void {
    for (const listener of this.listeners) listener(sb);
  }

  /**
   * After the set of endpoints changed: the primary endpoint carries the default route and the
   * published ports. Both steps are idempotent, so this simply re-asserts them.
   */
  async refreshPrimary(sb: SandboxRecord): Promise<void> {
    const primary = this.primary(sb.id);
    if (!primary) return;
    const net = this.#store.networks.get(primary.networkId)!;
    await this.driver(net).setDefaultRoute?.(net, primary, this.target(sb, primary));
    await this.#publish(sb, primary, net);
  }

  async #publish(sb: SandboxRecord, primary: EndpointRecord, net: NetworkRecord): Promise<void> {
    const ports = this.#store.ports.runsForSandbox(sb.id);
    if (ports.length > 0) await this.#datapath.publish(portSpecs(ports, primary, net));
  }

  async #unpublish(sb: SandboxRecord, primary: EndpointRecord): Promise<void> {
    const ports = this.#store.ports.runsForSandbox(sb.id);
    if (ports.length === 0) return;
    const net = this.#store.networks.get(primary.networkId)!;
    await this.#datapath.unpublish(portSpecs(ports, primary, net));
  }

  /** Unpublishes every port of a sandbox (before removal). */
  async unpublishAll(sb: SandboxRecord): Promise<void> {
    const primary = this.primary(sb.id);
    if (primary) await this.#unpublish(sb, primary);
  }
}

export function notConnected(sb: SandboxRecord, net: NetworkRecord): ServiceError {
  return new ServiceError('system', `container ${sb.id} is not connected to network ${net.name}`);
}

export function noSuchSandbox(ref: string): ServiceError {
  return notFound(`No such container: ${ref}`);
}

/** moby's check of IPAMConfig.IPv6Address: an IPv6 address, not unspecified, not an IPv4-mapped one. */
function isUsableIPv6(text: string): boolean {
  const a = parseIp(text);
  return a !== undefined && a.family === 6 && a.value !== 0n && a.value >> 32n !== 0xffffn;
}

/** Which exclusive rule wins when several apply: host's (forbidden) before none's (invalid), as moby checks them. */
function rank(d: Driver): number {
  return d.capabilities.exclusive?.status === 'forbidden' ? 0 : 1;
}

/** The IPAM owner of an endpoint of a namespace bpfnet does not own. */
export const foreignOwner = (endpointId: string): string => `foreign endpoint ${endpointId.slice(0, 12)}`;
