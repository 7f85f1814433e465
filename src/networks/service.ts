/**
 * The network service: Docker's network operations (create, inspect, list, remove, prune,
 * connect, disconnect), each validated first, stored in one transaction, then built in the
 * kernel through the driver and the datapath, and undone if a later step fails.
 */
import type { Datapath } from '../datapath/datapath.js';
import { conflict, forbidden, invalid, notFound } from '../errors.js';
import { validateIpamConfig, type IpamConfigInput, type PoolSpec } from '../ipam/config.js';
import { firstOf, formatIp, formatPrefix, parseIp, parsePrefix, prefixContains, prefixOverlaps, type Family, type IpAddress, type IpPrefix } from '../ipam/ip.js';
import { pickIpSubnet } from '../ipam/pools.js';
import type { NamedTable, Store } from '../store/store.js';
import { newId, nowRfc3339Nano } from '../util/ids.js';
import { failpoint } from '../util/failpoint.js';
import type { Mutex } from '../util/mutex.js';
import { Attachments, noSuchSandbox, notConnected, type AttachOptions } from './attachments.js';
import type { EngineConfig } from './config.js';
import { exclusiveError } from '../drivers/registry.js';
import { matchLabel, matchPattern, parseFilters, parseUntil } from './filters.js';
import { subnets6Of, type EndpointRecord, type NetworkRecord, type SandboxRecord } from './model.js';
import { ForeignEndpoints, foreignOn, type CreateEndpointRequest } from './endpoints.js';
import { validateName } from './names.js';
import { networkSpec } from './spec.js';
import { isNotFound, localRecordOf, type GlobalScope } from './global-scope.js';
import type { GlobalNetwork } from '../cluster/cluster.js';
import { parseVni, OverlayOption } from '../drivers/overlay/vni.js';

export const PREDEFINED = ['bridge', 'host', 'none'] as const;
/** The network a sandbox joins without --network (or with "default"): Docker's default bridge. */
export const DEFAULT_NETWORK = 'bridge';
/** The driver of `network create` without -d (Docker's). */
export const DEFAULT_DRIVER = 'bridge';

export interface CreateNetworkRequest {
  name: string;
  driver?: string;
  internal?: boolean;
  attachable?: boolean;
  ingress?: boolean;
  configOnly?: boolean;
  configFrom?: string;
  enableIPv4?: boolean;
  enableIPv6?: boolean;
  ipamDriver?: string;
  ipamOptions?: Record<string, string> | null;
  ipamConfig?: IpamConfigInput[];
  options?: Record<string, string>;
  labels?: Record<string, string>;
}

const LIST_FILTERS = ['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type'] as const;
const PRUNE_FILTERS = ['until', 'label', 'label!'] as const;

/**
 * Resolves a reference the way moby does: full id, then exact name, then unique id prefix. The
 * table's names are unique, so the id and the name are one lookup each and only a prefix reads
 * the whole table. visible: records a reference may name.
 */
export function resolveIn<T extends { id: string; name: string }>(
  table: NamedTable<T>,
  ref: string,
  kind: string,
  missing: (ref: string) => Error,
  visible: (r: T) => boolean = () => true,
): T {
  const exact = table.get(ref) ?? table.byName(ref);
  if (exact && visible(exact)) return exact;
  return resolvePrefix(table.all().filter(visible), ref, kind, missing);
}

function resolvePrefix<T extends { id: string; name: string }>(all: readonly T[], ref: string, kind: string, missing: (ref: string) => Error): T {
  const byPrefix = ref ? all.filter((r) => r.id.startsWith(ref)) : [];
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length > 1) throw invalid(`${kind} ${ref} is ambiguous (${byPrefix.length} matches found based on ID prefix)`);
  throw missing(ref);
}

export class NetworkService {
  readonly #store: Store;
  readonly #datapath: Datapath;
  readonly #cfg: EngineConfig;
  readonly #mutex: Mutex;
  readonly attachments: Attachments;
  /** Endpoints for namespaces bpfnet does not own (a container engine's), joined by path. */
  readonly foreign: ForeignEndpoints;
  /** Awaited after networks were created or removed (the embedded DNS listens on their gateways). */
  readonly listeners = new Set<() => void | Promise<void>>();
  /** With --cluster-store: global-scope networks are created, removed and addressed through the cluster. */
  global?: GlobalScope;

  constructor(store: Store, attachments: Attachments, datapath: Datapath, cfg: EngineConfig, mutex: Mutex) {
    this.#store = store;
    this.attachments = attachments;
    this.#datapath = datapath;
    this.#cfg = cfg;
    this.#mutex = mutex;
    this.foreign = new ForeignEndpoints(store, attachments, mutex);
  }

  /** CreateEndpoint for a namespace bpfnet does not own: join it with foreign.join(id, { netnsPath, ifname }). */
  createEndpoint(req: CreateEndpointRequest): Promise<EndpointRecord> {
    return this.foreign.create(this.resolve(req.network), req);
  }

  resolve(ref: string): NetworkRecord {
    return resolveIn(this.#store.networks, ref, 'network', (r) => notFound(`network ${r} not found`));
  }

  resolveSandbox(ref: string): SandboxRecord {
    const name = ref.startsWith('/') ? ref.slice(1) : ref;
    return resolveIn(this.#store.sandboxes, name, 'sandbox', () => noSuchSandbox(ref), (s) => s.state !== 'creating');
  }

  inspect(ref: string): NetworkRecord {
    return this.resolve(ref);
  }

  list(filtersText?: string | null): NetworkRecord[] {
    const filters = parseFilters(filtersText, LIST_FILTERS);
    const withEndpoints = new Set(this.#store.endpoints.all().map((e) => e.networkId));
    return this.#store.networks.all().filter((n) => {
      for (const [key, values] of filters) {
        const ok = values.some((v) => {
          switch (key) {
            case 'driver':
              return n.driver === v;
            case 'scope':
              return n.scope === v;
            case 'name':
              return matchPattern(n.name, v);
            case 'id':
              return matchPattern(n.id, v);
            case 'label':
              return matchLabel(n.labels, v);
            case 'type':
              if (v !== 'custom' && v !== 'builtin') throw invalid(`invalid filter 'type=${v}'`);
              return v === 'builtin' ? n.predefined : !n.predefined;
            case 'dangling': {
              if (!['true', 'false', '1', '0'].includes(v)) throw invalid(`invalid filter 'dangling=${v}'`);
              const dangling = !n.predefined && !withEndpoints.has(n.id);
              return (v === 'true' || v === '1') === dangling;
            }
            default:
              return false;
          }
        });
        if (!ok) return false;
      }
      return true;
    });
  }

  /** Validates a create request and returns the record to store (no side effects). */
  #plan(req: CreateNetworkRequest): NetworkRecord {
    const name = req.name ?? '';
    if ((PREDEFINED as readonly string[]).includes(name) || name === 'default')
      throw forbidden(`operation is not permitted on predefined ${name} network `);
    validateName('network', name);
    if (this.#store.networks.byName(name)) throw conflict(`network with name ${name} already exists`);
    const driverName = req.driver || DEFAULT_DRIVER;
    const driver = this.attachments.drivers.forNewNetwork(driverName);
    const caps = driver.capabilities;
    if (req.ingress) throw invalid('ingress networks are a swarm feature and are not supported');
    if (req.configOnly || req.configFrom) throw invalid('config-only networks (--config-only, --config-from) are not supported');
    if (req.ipamDriver && req.ipamDriver !== 'default') throw invalid(`IPAM driver "${req.ipamDriver}" is not supported (only "default")`);
    const enableIPv6 = req.enableIPv6 ?? false;
    const enableIPv4 = req.enableIPv4 ?? true;
    if (!enableIPv4 && !enableIPv6) throw invalid('IPv4 or IPv6 must be enabled');
    const configs = req.ipamConfig ?? [];
    const pools = validateIpamConfig(configs, enableIPv6);
    const pools4 = pools.filter((p) => p.family === 4);
    const pools6 = pools.filter((p) => p.family === 6);
    if (pools4.length > 1) throw invalid('bpfnet supports one IPv4 subnet per network');
    if (!enableIPv4 && pools4.length > 0) throw invalid(`invalid network config:\nIPv4 is disabled but an IPv4 subnet is given: ${formatPrefix(pools4[0].subnet)}`);
    if (configs.some((c) => !c.Subnet && (c.IPRange || c.Gateway || c.AuxiliaryAddresses)))
      throw invalid('invalid network config:\nip-range, gateway and auxiliary addresses need a subnet');

    const options = { ...(req.options ?? {}) };
    // The driver owns its -o options (com.docker.network.bridge.* for bridge) and refuses bad values.
    driver.validateOptions?.(options);
    // moby: an internal network of a parent driver gets an isolated segment instead of a parent.
    if (caps.needsParent && !options.parent && !req.internal) throw invalid(`network driver "${driverName}" needs a parent interface: -o parent=IFACE`);
    const id = newId();
    const device = driver.deviceFor?.(id, options);
    if (device !== undefined) {
      const taken = this.#store.networks.all().find((n) => n.device === device);
      if (taken) throw conflict(`${driverName} name ${device} is already used by network ${taken.name}`);
    }
    if (!caps.addresses) throw invalid(`network driver "${driverName}" gives no addresses, and bpfnet networks need them`);

    const ipamConfig: IpamConfigInput[] = [];
    const four = enableIPv4 ? this.#pickPool(4, pools4[0]) : undefined;
    // Several IPv6 subnets (moby's IPAM.Config list): drivers that route per subnet; none may overlap another.
    if (pools6.length > 1 && enableIPv6 && !caps.severalSubnets6) throw invalid(`network driver "${driverName}" takes one IPv6 subnet per network`);
    for (const [i, p] of pools6.entries())
      if (pools6.slice(0, i).some((q) => prefixOverlaps(q.subnet, p.subnet))) throw forbidden('invalid pool request: Pool overlaps with other one on this address space');
    const sixes = enableIPv6 ? (pools6.length > 0 ? pools6.map((p) => this.#pickPool(6, p)) : [this.#pickPool(6, undefined)]) : [];
    const six = sixes[0];
    // Inspect shows the user's blocks as given, and auto-allocated ones as {Subnet, Gateway}, IPv4 first (moby).
    const v6Configs = configs.filter((c) => parsePrefix(c.Subnet ?? '')?.family === 6);
    for (const [picked, given, config] of [[four, pools4[0], configs.find((c) => parsePrefix(c.Subnet ?? '')?.family === 4)] as const, ...sixes.map((p, i) => [p, pools6[i], v6Configs[i]] as const)]) {
      if (!picked) continue;
      if (given) ipamConfig.push({ ...config! });
      else ipamConfig.push({ Subnet: formatPrefix(picked.subnet), Gateway: formatIp(picked.gateway) });
    }
    const net: NetworkRecord = {
      id,
      name,
      created: nowRfc3339Nano(),
      driver: driverName,
      scope: caps.scope,
      internal: req.internal ?? false,
      attachable: req.attachable ?? false,
      ingress: false,
      configOnly: false,
      enableIPv4,
      enableIPv6,
      ipamDriver: 'default',
      ipamOptions: req.ipamOptions ?? {},
      ipamConfig,
      options,
      labels: { ...(req.labels ?? {}) },
      predefined: false,
      ...(four ? { subnet: formatPrefix(four.subnet), ipRange: four.range && formatPrefix(four.range), gateway: formatIp(four.gateway) } : {}),
      device,
      ...(six ? { subnet6: formatPrefix(six.subnet), ipRange6: six.range && formatPrefix(six.range), gateway6: formatIp(six.gateway) } : {}),
      ...(sixes.length > 1
        ? { moreSubnets6: sixes.slice(1).map((p) => ({ subnet: formatPrefix(p.subnet), ...(p.range ? { ipRange: formatPrefix(p.range) } : {}), gateway: formatIp(p.gateway) })) }
        : {}),
    };
    const dnsAddress = driver.resolverAddress?.(net);
    const dnsAddress6 = driver.resolverAddress6?.(net);
    return { ...net, ...(dnsAddress ? { dnsAddress } : {}), ...(dnsAddress6 ? { dnsAddress6 } : {}) };
  }

  /** The subnet, range and gateway of one family: the user's block, or the next free one of the default pools. */
  #pickPool(family: Family, given: PoolSpec | undefined): { subnet: IpPrefix; range?: IpPrefix; gateway: IpAddress } {
    const existing = this.#store.networks
      .all()
      .flatMap((n) => [n.subnet, ...subnets6Of(n).map((s) => s.subnet)])
      .map((t) => (t ? parsePrefix(t) : undefined))
      .filter((p): p is IpPrefix => p !== undefined && p.family === family);
    const firstHost = (p: IpPrefix): IpAddress => ({ family, value: firstOf(p) + 1n });
    if (given) {
      if (existing.some((c) => prefixOverlaps(c, given.subnet))) throw forbidden('invalid pool request: Pool overlaps with other one on this address space');
      return { subnet: given.subnet, range: given.range, gateway: given.gateway ?? firstHost(given.subnet) };
    }
    const defaults = family === 4 ? this.#cfg.pools.map((p) => ({ base: { family: 4 as const, addr: BigInt(p.base.addr), bits: p.base.bits }, size: p.size })) : this.#cfg.pools6;
    const picked = pickIpSubnet(defaults, existing);
    if (!picked) throw forbidden(`could not find an available, non-overlapping ${family === 4 ? 'IPv4' : 'IPv6'} address pool among the defaults to assign to the network`);
    return { subnet: picked, gateway: firstHost(picked) };
  }

  /** Stores a network with its reserved addresses (gateway, aux of both families) in one transaction. */
  insert(net: NetworkRecord, aux: Record<string, IpAddress> = {}): void {
    this.#store.transaction(() => {
      this.#store.networks.insert(net);
      if (!this.attachments.driver(net).capabilities.addresses) return;
      for (const pool of Attachments.pools(net)) {
        // Each IPv6 subnet has its own gateway; addresses are held in the subnet that contains them.
        const gateway = parseIp(pool.subnet.family === 4 ? net.gateway! : subnets6Of(net).find((s) => parsePrefix(s.subnet)!.addr === pool.subnet.addr)!.gateway)!;
        this.attachments.ipAllocator.reserve(pool, gateway, 'the gateway');
        for (const [name, address] of Object.entries(aux)) {
          if (address.family === pool.subnet.family && prefixContains(pool.subnet, address)) this.attachments.ipAllocator.reserve(pool, address, `auxiliary address ${name}`);
        }
        const dnsText = pool.subnet.family === 4 ? net.dnsAddress : net.dnsAddress6;
        const dns = dnsText ? parseIp(dnsText) : undefined;
        if (dns && prefixContains(pool.subnet, dns)) this.attachments.ipAllocator.reserve(pool, dns, 'the embedded DNS');
      }
    });
  }

  /** Builds a stored network in the kernel (idempotent). */
  async build(net: NetworkRecord): Promise<void> {
    await this.attachments.driver(net).createNetwork(net);
    await failpoint('network:create:after-device');
    if (this.attachments.driver(net).capabilities.datapath) await this.#datapath.ensureNetwork(networkSpec(net));
  }

  async #unbuild(net: NetworkRecord): Promise<void> {
    if (this.attachments.driver(net).capabilities.datapath) await this.#datapath.removeNetwork(networkSpec(net));
    await this.attachments.driver(net).deleteNetwork(net);
  }

  create(req: CreateNetworkRequest): Promise<{ id: string; warning: string }> {
    return this.#mutex.run(async () => {
      let net = this.#plan(req);
      await this.attachments.driver(net).checkNetwork?.(net);
      const aux = Object.assign({}, ...validateIpamConfig(req.ipamConfig ?? [], net.enableIPv6).map((p) => p.aux));
      const global = this.#globalFor(net);
      if (global) net = await this.#recordGlobal(global, net, aux);
      try {
        this.insert(net, aux);
      } catch (err) {
        if (global) await global.deleteNetwork(net.id).catch(() => undefined);
        throw err;
      }
      try {
        await this.build(net);
      } catch (err) {
        await this.#unbuild(net).catch(() => undefined);
        this.#store.transaction(() => {
          this.#store.networks.delete(net.id);
          this.#store.ipam.dropPool(net.id);
        });
        if (global) await global.deleteNetwork(net.id).catch(() => undefined);
        throw err;
      }
      await this.#changed();
      return { id: net.id, warning: '' };
    });
  }

  /** The cluster, when this network's addresses and identity are the cluster's (global scope with --cluster-store). */
  #globalFor(net: NetworkRecord): GlobalScope | undefined {
    return net.scope === 'global' ? this.global : undefined;
  }

  /** Records a planned global network in the cluster first: the cluster decides the VNI (and refuses a taken name or VNI). */
  async #recordGlobal(global: GlobalScope, net: NetworkRecord, aux: Record<string, IpAddress>): Promise<NetworkRecord> {
    if (net.ipRange || net.ipRange6 || Object.keys(aux).length > 0) throw invalid(`network ${net.name}: --ip-range and --aux-address are not supported on overlay networks across hosts (the cluster allocates from the whole subnet)`);
    // Every host derives the gateways from the subnets: each family's first address.
    for (const [subnet, gateway] of [[net.subnet, net.gateway], [net.subnet6, net.gateway6]]) {
      if (!subnet) continue;
      const p = parsePrefix(subnet)!;
      const first = formatIp({ family: p.family, value: firstOf(p) + 1n });
      if (gateway !== first) throw invalid(`network ${net.name}: the gateway of an overlay network across hosts is its subnet's first address (${first}), not ${gateway}`);
    }
    const given = net.options[OverlayOption.vxlanIdList];
    const g = await global.createNetwork({
      id: net.id,
      name: net.name,
      ...(net.subnet ? { subnet: net.subnet } : {}),
      ...(net.subnet6 ? { subnet6: net.subnet6 } : {}),
      vni: given === undefined ? undefined : parseVni(given),
      internal: net.internal,
      labels: net.labels,
    });
    return { ...net, options: { ...net.options, [OverlayOption.vxlanIdList]: String(g.vni) } };
  }

  /**
   * Makes this host's global networks the cluster's (at join, after a re-list, on every network
   * change another host made): missing ones are built with the cluster's id, name, subnet and
   * VNI; ones the cluster no longer has are removed when no local endpoint is on them.
   */
  syncGlobal(networks: readonly GlobalNetwork[], log: { warn(msg: string): void }): Promise<void> {
    return this.#mutex.run(async () => {
      const wanted = new Map(networks.map((g) => [g.id, g]));
      let changed = false;
      for (const g of networks) {
        if (this.#store.networks.get(g.id)) continue;
        const clash = this.#store.networks.byName(g.name);
        if (clash) {
          log.warn(`cluster network ${g.name} (${g.id.slice(0, 12)}) not built here: this host has a network of that name (${clash.id.slice(0, 12)})`);
          continue;
        }
        const driver = this.attachments.drivers.get(g.driver);
        const net = localRecordOf(g, driver.deviceFor?.(g.id, {}));
        try {
          this.insert(net);
          await this.build(net);
          changed = true;
        } catch (err) {
          log.warn(`cluster network ${g.name} (${g.id.slice(0, 12)}) could not be built here: ${(err as Error).message}`);
          await this.#unbuild(net).catch(() => undefined);
          this.#store.transaction(() => {
            this.#store.networks.delete(net.id);
            this.#store.ipam.dropPool(net.id);
          });
        }
      }
      for (const net of this.#store.networks.all()) {
        if (net.scope !== 'global' || wanted.has(net.id)) continue;
        if ([...this.#store.endpoints.forNetwork(net.id), ...foreignOn(this.foreign, net.id)].length > 0) {
          log.warn(`network ${net.name} left the cluster but has endpoints on this host: kept until they leave`);
          continue;
        }
        await this.#unbuild(net);
        this.#store.transaction(() => {
          this.#store.networks.delete(net.id);
          this.#store.ipam.dropPool(net.id);
        });
        changed = true;
      }
      if (changed) await this.#changed();
    });
  }

  remove(ref: string): Promise<void> {
    return this.#mutex.run(async () => {
      const net = this.resolve(ref);
      if (net.predefined) throw forbidden(`${net.name} is a pre-defined network and cannot be removed`);
      const endpoints = [...this.#store.endpoints.forNetwork(net.id), ...foreignOn(this.foreign, net.id)];
      if (endpoints.length > 0) {
        const who = endpoints.map((e) => `name:"${this.#store.sandboxes.get(e.sandboxId)?.name ?? '?'}" id:"${e.id.slice(0, 12)}"`).join(', ');
        throw forbidden(`error while removing network: network ${net.name} has active endpoints (${who})`);
      }
      // The cluster first: it refuses while endpoints on other hosts are on the network.
      await this.#globalFor(net)
        ?.deleteNetwork(net.id)
        .catch((err: unknown) => {
          if (!isNotFound(err)) throw err; // already gone from the cluster: remove the local half
        });
      await this.#unbuild(net);
      await failpoint('network:remove:after-unbuild');
      this.#store.transaction(() => {
        this.#store.networks.delete(net.id);
        this.#store.ipam.dropPool(net.id);
      });
      await this.#changed();
    });
  }

  async #changed(): Promise<void> {
    for (const listener of this.listeners) await listener();
  }

  prune(filtersText?: string | null): Promise<string[]> {
    const filters = parseFilters(filtersText, PRUNE_FILTERS);
    // Checked before anything is pruned, not only when a candidate is reached.
    for (const u of filters.get('until') ?? []) parseUntil(u);
    return this.#mutex.run(async () => {
      const deleted: string[] = [];
      const used = new Set([...this.#store.endpoints.all(), ...this.foreign.list().map((fe) => fe.endpoint)].map((e) => e.networkId));
      for (const net of this.#store.networks.all()) {
        if (net.predefined || used.has(net.id)) continue;
        const until = filters.get('until');
        if (until && !until.every((u) => Date.parse(net.created) < parseUntil(u))) continue;
        if (!(filters.get('label') ?? []).every((l) => matchLabel(net.labels, l))) continue;
        if ((filters.get('label!') ?? []).some((l) => matchLabel(net.labels, l))) continue;
        // A global network in use on another host (or a cluster out of reach) is not pruned.
        const global = this.#globalFor(net);
        if (global && !(await global.deleteNetwork(net.id).then(() => true, (err: unknown) => isNotFound(err)))) continue;
        await this.#unbuild(net);
        this.#store.transaction(() => {
          this.#store.networks.delete(net.id);
          this.#store.ipam.dropPool(net.id);
        });
        deleted.push(net.name);
      }
      if (deleted.length > 0) await this.#changed();
      return deleted;
    });
  }

  connect(netRef: string, sandboxRef: string, opts: AttachOptions): Promise<void> {
    return this.#mutex.run(async () => {
      const net = this.resolve(netRef);
      const sb = this.resolveSandbox(sandboxRef);
      this.attachments.checkAttach(sb, net, opts);
      const ep = this.#store.transaction(() => this.attachments.reserve(sb, net, opts));
      await this.attachments.build(sb, ep);
    });
  }

  disconnect(netRef: string, sandboxRef: string, force: boolean): Promise<void> {
    return this.#mutex.run(async () => {
      const net = this.resolve(netRef);
      let sb: SandboxRecord;
      try {
        sb = this.resolveSandbox(sandboxRef);
      } catch (err) {
        if (force) return; // docker: -f removes a stale endpoint; nothing is stale here
        throw err;
      }
      const ep = this.#store.endpoints.forSandbox(sb.id).find((e) => e.networkId === net.id);
      if (!ep) throw notConnected(sb, net);
      const driver = this.attachments.driver(net);
      if (!driver.capabilities.disconnect) throw exclusiveError(driver) ?? forbidden(`container cannot be disconnected from network ${net.name}`);
      await this.attachments.detach(sb, ep);
    });
  }
}
