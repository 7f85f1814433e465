/**
 * Endpoints of foreign namespaces under a key the caller chooses (CNI: the container id and the
 * interface name), so a runtime that knows only its own ids can add, check and delete them, and
 * delete twice: attach = create + join + publish, detach = unpublish + leave + delete, each
 * undone in reverse when a later step fails. Published ports (CNI's portMappings) go onto the
 * network's datapath aimed at the endpoint, as a sandbox's -p does.
 *
 * The keys are written to a small file in the daemon's root after every change; at start the
 * daemon adopts the keys whose foreign endpoint it still has (networks/endpoints.ts keeps them in
 * memory today, so none survive and a DEL for a key it does not know is success; once foreign
 * endpoints are stored, their keys and published ports come back with them).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { PortSpec } from '../datapath/datapath.js';
import { conflict, forbidden, invalid, notFound } from '../errors.js';
import { parseCidr, parseIPv4 } from '../ipam/ipv4.js';
import type { EndpointRecord, NetworkRecord, Protocol } from '../networks/model.js';
import { BindingIndex } from '../networks/ports.js';
import type { Attachments } from '../networks/attachments.js';
import type { NetworkService } from '../networks/service.js';
import { networkSpec } from '../networks/spec.js';
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
      const entry: KeyedEndpoint = { key: k.key, owner: k.owner ?? '', network, endpoint: fe.endpoint, netnsPath: k.netnsPath, ifname: k.ifname, ports: k.ports ?? [] };
      if (entry.ports.length > 0) await this.#att.datapath.publish(portSpecs(entry));
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
      const ports = req.ports ?? [];
      if (!KEY.test(req.key)) throw invalid(`invalid endpoint key "${req.key.slice(0, 64)}": 1-300 characters of [A-Za-z0-9_.:-], starting with a letter or digit`);
      if (req.mac !== undefined && (!MAC.test(req.mac) || (parseInt(req.mac.slice(0, 2), 16) & 1) === 1))
        throw invalid(`invalid MAC address "${req.mac}": six hex bytes, unicast`);
      for (const p of ports) checkPort(p);
      const existing = this.#byKey.get(req.key);
      if (existing) {
        if (existing.netnsPath !== req.netnsPath || existing.ifname !== req.ifname)
          throw conflict(`endpoint ${req.key} exists, joined to ${existing.netnsPath} as ${existing.ifname}`);
        return { entry: existing, created: false };
      }
      const net = this.#networks.resolve(req.network);
      if (req.ipv4 !== undefined && net.subnet && !inSubnet(req.ipv4, net.subnet)) throw invalid(`invalid endpoint settings:\naddress ${req.ipv4} is not in subnet ${net.subnet} of network ${net.name}`);
      this.#checkPorts(req.key, ports);
      const foreign = this.#networks.foreign;
      const created = await this.#networks.createEndpoint({ network: net.id, ...(req.ipv4 !== undefined ? { ipv4: req.ipv4 } : {}), ...(req.mac !== undefined ? { mac: req.mac } : {}) });
      let joined = false;
      try {
        const endpoint = await foreign.join(created.id, { netnsPath: req.netnsPath, ifname: req.ifname });
        joined = true;
        const entry: KeyedEndpoint = { key: req.key, owner: req.owner ?? '', network: net, endpoint, netnsPath: req.netnsPath, ifname: req.ifname, ports };
        if (ports.length > 0) await this.#att.datapath.publish(portSpecs(entry));
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
      if (ke.ports.length > 0) await this.#att.datapath.unpublish(portSpecs(ke));
      const foreign = this.#networks.foreign;
      const fe = foreign.list().find((f) => f.endpoint.id === ke.endpoint.id);
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

  /** Another holder of a wanted host port: a sandbox's -p or another keyed endpoint. */
  #checkPorts(key: string, ports: readonly KeyedPort[]): void {
    if (ports.length === 0) return;
    const taken = new BindingIndex<KeyedPort & { holder: string }>();
    for (const p of this.#store.ports.all()) taken.add({ ...p, holder: `sandbox ${p.sandboxId.slice(0, 12)}` });
    for (const ke of this.#byKey.values()) if (ke.key !== key) for (const p of ke.ports) taken.add({ ...p, holder: `endpoint ${ke.key}` });
    const mine = new BindingIndex<KeyedPort & { holder: string }>();
    for (const p of ports) {
      const clash = taken.clash(p) ?? mine.clash(p);
      if (clash) throw forbidden(`Bind for ${p.hostIp || '0.0.0.0'}:${p.hostPort}/${p.protocol} failed: port is already allocated (by ${clash.holder})`);
      mine.add({ ...p, holder: 'this request' });
    }
  }
}

function checkPort(p: KeyedPort): void {
  const ok = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;
  if (!ok(p.hostPort) || !ok(p.containerPort)) throw invalid(`invalid port mapping ${p.hostPort}:${p.containerPort}: ports are 1-65535`);
  if (p.protocol !== 'tcp' && p.protocol !== 'udp') throw invalid(`invalid port mapping protocol "${p.protocol}": tcp or udp`);
  if (p.hostIp !== '' && parseIPv4(p.hostIp) === undefined) throw invalid(`invalid port mapping host address "${p.hostIp}": an IPv4 address or empty`);
}

function inSubnet(ipv4: string, subnet: string): boolean {
  const a = parseIPv4(ipv4);
  const c = parseCidr(subnet);
  if (a === undefined || !c) return false;
  const mask = c.bits === 0 ? 0 : (~0 << (32 - c.bits)) >>> 0;
  return ((a & mask) >>> 0) === ((c.addr & mask) >>> 0);
}

function portSpecs(ke: KeyedEndpoint): PortSpec[] {
  const binding = networkSpec(ke.network).hostBinding;
  return ke.ports.map((p) => ({
    protocol: p.protocol,
    hostIp: p.hostIp || binding,
    hostPort: p.hostPort,
    endpointId: ke.endpoint.id,
    networkId: ke.network.id,
    containerIp: ke.endpoint.ipv4!,
    containerPort: p.containerPort,
  }));
}
