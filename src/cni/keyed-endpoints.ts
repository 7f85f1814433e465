/**
 * Endpoints of foreign namespaces under a key the caller chooses (CNI: the container id and the
 * interface name), so a runtime that knows only its own ids can add, check and delete them, and
 * delete twice: attach = create + join + publish, detach = unpublish + leave + delete, each
 * undone in reverse when a later step fails. Published ports (CNI's portMappings) are the
 * foreign endpoint's (networks/endpoints.ts publish): one check against every sandbox's -p and
 * every other engine's ports, stored with the endpoint and replayed by reconcile after a restart.
 *
 * The keys are written to a small file in the daemon's root after every change; at start the
 * daemon adopts the keys whose foreign endpoint it still has, and forgets the others (an
 * endpoint whose namespace died while the daemon was down is dropped by reconcile first).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { conflict, forbidden, invalid, notFound } from '../errors.js';
import { formatIp, parseIp } from '../ipam/ip.js';
import { parseCidr, parseIPv4 } from '../ipam/ipv4.js';
import { subnet6Holding, subnets6Of, type EndpointRecord, type NetworkRecord, type Protocol } from '../networks/model.js';
import { BindingIndex } from '../networks/ports.js';
import type { Attachments } from '../networks/attachments.js';
import type { NetworkService } from '../networks/service.js';
import type { Store } from '../store/store.js';
import { Mutex } from '../util/mutex.js';

/** One published port of a keyed endpoint. */
export interface KeyedPort {
  protocol: Protocol;
  /** '' = every host address. */
  hostIp: string;
  hostPort: number;
  containerPort: number;
}

export interface AttachRequest {
  /** The caller's key: 1-300 of [A-Za-z0-9_.:-], starting alphanumeric. */
  key: string;
  /** Network id or name. */
  network: string;
  netnsPath: string;
  ifname: string;
  ipv4?: string;
  /** A static IPv6 address (the network must have IPv6). */
  ipv6?: string;
  mac?: string;
  ports?: KeyedPort[];
  /** Who made it (e.g. "cni"), for listing and garbage collection by that owner. */
  owner?: string;
}

export interface KeyedEndpoint {
  key: string;
  owner: string;
  network: NetworkRecord;
  endpoint: EndpointRecord;
  netnsPath: string;
  ifname: string;
  ports: KeyedPort[];
}

interface SavedKey {
  key: string;
  owner: string;
  endpointId: string;
  netnsPath: string;
  ifname: string;
  ports: KeyedPort[];
}

export const KEY = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,299}$/;
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

export class KeyedEndpoints {
  readonly #networks: NetworkService;
  readonly #store: Store;
  readonly #att: Attachments;
  // Attach and detach of one key never interleave; the network service serialises the kernel work anyway.
  readonly #mutex = new Mutex();
  readonly #byKey = new Map<string, KeyedEndpoint>();

  readonly #statePath: string | undefined;

  constructor(networks: NetworkService, store: Store, attachments: Attachments, statePath?: string) {
    this.#networks = networks;
    this.#store = store;
    this.#att = attachments;
    this.#statePath = statePath;
  }

  /** Daemon start: takes back the keys of the foreign endpoints that still exist and re-publishes their ports; forgets the rest. */
  async adopt(): Promise<{ adopted: string[]; forgotten: string[] }> {
    const adopted: string[] = [];
    const forgotten: string[] = [];
    if (!this.#statePath || !existsSync(this.#statePath)) return { adopted, forgotten };
    let saved: SavedKey[] = [];
    try {
      saved = JSON.parse(readFileSync(this.#statePath, 'utf8')) as SavedKey[];
    } catch {
      saved = [];
    }
    for (const k of Array.isArray(saved) ? saved : []) {
      const fe = this.#networks.foreign.list().find((f) => f.endpoint.id === k.endpointId);
      const network = fe && this.#store.networks.get(fe.endpoint.networkId);
      if (!fe || !network || typeof k.key !== 'string') {
        forgotten.push(String(k.key));
        continue;
      }
      // Reconcile replayed the endpoint's ports; a file of an older daemon kept them here only.
      let ports: KeyedPort[] = fe.ports ?? [];
      if (ports.length === 0 && (k.ports ?? []).length > 0 && fe.joined) ports = await this.#networks.foreign.publish(fe.endpoint.id, () => k.ports);
      const entry: KeyedEndpoint = { key: k.key, owner: k.owner ?? '', network, endpoint: fe.endpoint, netnsPath: k.netnsPath, ifname: k.ifname, ports };
      this.#byKey.set(k.key, entry);
      adopted.push(k.key);
    }
    this.#save();
    return { adopted, forgotten };
  }

  #save(): void {
    if (!this.#statePath) return;
    const rows: SavedKey[] = [...this.#byKey.values()].map((ke) => ({ key: ke.key, owner: ke.owner, endpointId: ke.endpoint.id, netnsPath: ke.netnsPath, ifname: ke.ifname, ports: ke.ports }));
    // Written whole and renamed: a daemon killed mid-write leaves the previous file.
    writeFileSync(`${this.#statePath}.tmp`, JSON.stringify(rows));
    renameSync(`${this.#statePath}.tmp`, this.#statePath);
  }

  get(key: string): KeyedEndpoint {
    const ke = this.#byKey.get(key);
    if (!ke) throw notFound(`endpoint ${key} not found`);
    return ke;
  }

  list(): KeyedEndpoint[] {
    return [...this.#byKey.values()];
  }

  /** Creates, joins and publishes; the same request again returns what exists (created false). */
  attach(req: AttachRequest): Promise<{ entry: KeyedEndpoint; created: boolean }> {
    return this.#mutex.run(async () => {
      let ports = req.ports ?? [];
      if (!KEY.test(req.key)) throw invalid(`invalid endpoint key "${req.key.slice(0, 64)}": 1-300 characters of [A-Za-z0-9_.:-], starting with a letter or digit`);
      if (req.mac !== undefined && (!MAC.test(req.mac) || (parseInt(req.mac.slice(0, 2), 16) & 1) === 1))
        throw invalid(`invalid MAC address "${req.mac}": six hex bytes, unicast`);
      for (const p of ports) checkPort(p);
      ports = ports.map((p) => ({ ...p, hostIp: p.hostIp === '' ? '' : formatIp(parseIp(p.hostIp)!) }));
      const existing = this.#byKey.get(req.key);
      if (existing) {
        if (existing.netnsPath !== req.netnsPath || existing.ifname !== req.ifname)
          throw conflict(`endpoint ${req.key} exists, joined to ${existing.netnsPath} as ${existing.ifname}`);
        return { entry: existing, created: false };
      }
      const net = this.#networks.resolve(req.network);
      if (req.ipv4 !== undefined && net.subnet && !inSubnet(req.ipv4, net.subnet)) throw invalid(`invalid endpoint settings:\naddress ${req.ipv4} is not in subnet ${net.subnet} of network ${net.name}`);
      // Any of the network's IPv6 subnets (a bridge network may have several).
      if (req.ipv6 !== undefined && !subnet6Holding(net, req.ipv6))
        throw invalid(`invalid endpoint settings:\naddress ${req.ipv6} is not in an IPv6 subnet of network ${net.name} (${subnets6Of(net).map((x) => x.subnet).join(', ') || 'none'})`);
      this.#checkPorts(ports);
      const foreign = this.#networks.foreign;
      const created = await this.#networks.createEndpoint({
        network: net.id,
        ...(req.ipv4 !== undefined ? { ipv4: req.ipv4 } : {}),
        ...(req.ipv6 !== undefined ? { ipv6: req.ipv6 } : {}),
        ...(req.mac !== undefined ? { mac: req.mac } : {}),
        client: { kind: 'cni', ref: req.key, ...(req.owner ? { network: req.owner } : {}) },
      });
      let joined = false;
      try {
        const endpoint = await foreign.join(created.id, { netnsPath: req.netnsPath, ifname: req.ifname });
        joined = true;
        // Checked there against every sandbox's and every other engine's published ports, under the engine's lock.
        if (ports.length > 0) await foreign.publish(created.id, () => ports);
        const entry: KeyedEndpoint = { key: req.key, owner: req.owner ?? '', network: net, endpoint, netnsPath: req.netnsPath, ifname: req.ifname, ports };
        this.#byKey.set(req.key, entry);
        this.#save();
        return { entry, created: true };
      } catch (err) {
        if (joined) await foreign.leave(created.id).catch(() => undefined);
        await foreign.delete(created.id).catch(() => undefined);
        throw err;
      }
    });
  }

  /** Unpublishes, leaves and deletes; false when the key is unknown (already detached). */
  detach(key: string): Promise<boolean> {
    return this.#mutex.run(async () => {
      const ke = this.#byKey.get(key);
      if (!ke) return false;
      const foreign = this.#networks.foreign;
      const fe = foreign.find(ke.endpoint.id);
      // Leave withdraws the ports too.
      if (fe?.ports?.length) await foreign.unpublish(ke.endpoint.id);
      if (fe?.joined) await foreign.leave(ke.endpoint.id);
      if (fe) await foreign.delete(ke.endpoint.id);
      this.#byKey.delete(key);
      this.#save();
      return true;
    });
  }

  /** What is wrong with a keyed endpoint's kernel objects (empty: all as built). */
  async check(key: string): Promise<string[]> {
    const ke = this.get(key);
    const problems: string[] = [];
    const net = this.#store.networks.get(ke.network.id);
    if (!net) return [`network ${ke.network.name} no longer exists`];
    const fe = this.#networks.foreign.list().find((f) => f.endpoint.id === ke.endpoint.id);
    if (!fe?.joined) return [`endpoint ${key} is not joined`];
    const joined = this.#att.driver(net).joined;
    if (joined && !(await joined.call(this.#att.driver(net), net, fe.endpoint, fe.joined)))
      problems.push(`interface ${ke.ifname} of endpoint ${key} is missing in ${ke.netnsPath}, or its host end is not on network ${net.name}`);
    return problems;
  }

  /** A request that publishes one host port twice is refused before anything is built (other holders: foreign.publish). */
  #checkPorts(ports: readonly KeyedPort[]): void {
    const mine = new BindingIndex<KeyedPort>();
    for (const p of ports) {
      if (mine.clash(p)) throw forbidden(`Bind for ${p.hostIp || '0.0.0.0'}:${p.hostPort}/${p.protocol} failed: the request publishes it twice`);
      mine.add(p);
    }
  }
}

function checkPort(p: KeyedPort): void {
  const ok = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;
  if (!ok(p.hostPort) || !ok(p.containerPort)) throw invalid(`invalid port mapping ${p.hostPort}:${p.containerPort}: ports are 1-65535`);
  if (p.protocol !== 'tcp' && p.protocol !== 'udp') throw invalid(`invalid port mapping protocol "${p.protocol}": tcp or udp`);
  if (p.hostIp !== '' && parseIp(p.hostIp) === undefined) throw invalid(`invalid port mapping host address "${p.hostIp}": an IPv4 or IPv6 address, or empty`);
}

function inSubnet(ipv4: string, subnet: string): boolean {
  const a = parseIPv4(ipv4);
  const c = parseCidr(subnet);
  if (a === undefined || !c) return false;
  const mask = c.bits === 0 ? 0 : (~0 << (32 - c.bits)) >>> 0;
  return ((a & mask) >>> 0) === ((c.addr & mask) >>> 0);
}

