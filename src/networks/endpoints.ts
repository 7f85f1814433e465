/**
 * Endpoints for namespaces bpfnet did not create and does not own (moby's CreateEndpoint /
 * Join / Leave / DeleteEndpoint; CNI's ADD and DEL): a container engine asks for an endpoint
 * on a network, then either joins it into its own namespace by path under the interface name
 * it chooses (bpfnet moves the interface: CNI), or takes the interface and moves it itself
 * (handOff: dockerd, which renames it and sets its address). Leave and delete undo exactly that.
 * The network's datapath forwards for them as for bpfnet's own sandboxes, which are the other
 * client of the same driver verbs (attachments.ts).
 *
 * They are stored (the store's documents, kind "foreign-endpoint", with their addresses held in
 * IPAM like any other), so a restarted daemon re-adopts them: reconcile keeps their devices and
 * replays them and their published ports into the datapath (restore()), while the pinned
 * datapath kept forwarding for them in between.
 */
import type { PortSpec } from '../datapath/datapath.js';
import type { JoinTarget } from '../drivers/driver.js';
import { conflict, invalid, notFound } from '../errors.js';
import { parseIp } from '../ipam/ip.js';
import { parseIPv4 } from '../ipam/ipv4.js';
import type { Store } from '../store/store.js';
import { newId } from '../util/ids.js';
import type { Mutex } from '../util/mutex.js';
import { netnsExists } from '../drivers/netns-path.js';
import { link } from '../system/ip.js';
import { Attachments, foreignOwner } from './attachments.js';
import type { EndpointRecord, NetworkRecord, PortRecord } from './model.js';
import { BindingIndex, type PortBinding } from './ports.js';
import { endpointSpec, networkSpec, portSpecs } from './spec.js';

export interface CreateEndpointRequest {
  /** Network id or name. */
  network: string;
  /** A static address inside the network's subnet; otherwise IPAM picks one. */
  ipv4?: string;
  /** A static IPv6 address inside the network's IPv6 subnet; otherwise IPAM picks one when the network has IPv6. */
  ipv6?: string;
  /** A MAC the caller chose (dockerd's --mac-address); otherwise the driver's. */
  mac?: string;
  /** Who asked, for ps/inspect and for re-adoption: e.g. { kind: 'docker', ref: <Docker's endpoint id> }. */
  client?: EndpointClient;
}

export interface EndpointClient {
  kind: string;
  ref: string;
  /** What the client calls the network and the container, when it says (shown by ps). */
  network?: string;
  container?: string;
}

export interface JoinRequest {
  /** The namespace, by path: /run/netns/NAME, /proc/PID/ns/net, a bind mount of one. */
  netnsPath: string;
  /** The interface name inside it. */
  ifname: string;
  /** The endpoint becomes the namespace's default route (default true, as moby's Join sets the gateway). */
  defaultRoute?: boolean;
}

/** Where an endpoint is joined; handedOff: the caller moved the interface itself (netnsPath is informative only). */
export type ForeignJoin = JoinTarget & { handedOff?: boolean };

/** An endpoint of a foreign namespace, where it is joined if it is, and what it publishes. */
export interface ForeignEndpoint {
  endpoint: EndpointRecord;
  joined?: ForeignJoin;
  client?: EndpointClient;
  /** Published ports (sandboxId ''): the datapath sends them to endpoint.ipv4. */
  ports?: PortBinding[];
}

/** What a restarted daemon must keep and replay for foreign endpoints. */
export interface ForeignRestore {
  /** Host-namespace devices that are theirs (not strays). */
  links: string[];
  endpoints: Array<{ net: NetworkRecord; endpoint: EndpointRecord; netnsPath: string }>;
  ports: PortSpec[];
  /** Endpoints dropped because their namespace died while the daemon was down: one line each, for the log. */
  dropped: string[];
}

const KIND = 'foreign-endpoint';
const IFNAME = /^[a-zA-Z0-9_.-]{1,15}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export class ForeignEndpoints {
  readonly #store: Store;
  readonly #att: Attachments;
  readonly #mutex: Mutex;
  readonly #endpoints = new Map<string, ForeignEndpoint>();
  #dropped: ForeignEndpoint[] = [];

  constructor(store: Store, attachments: Attachments, mutex: Mutex) {
    this.#store = store;
    this.#att = attachments;
    this.#mutex = mutex;
    for (const { id, doc } of store.documents.all(KIND)) {
      try {
        this.#endpoints.set(id, JSON.parse(doc) as ForeignEndpoint);
      } catch {
        /* an unreadable document: its devices are swept as strays and its address stays held until the network goes */
      }
    }
  }

  get(id: string): ForeignEndpoint {
    const fe = this.#endpoints.get(id);
    if (!fe) throw notFound(`endpoint ${id} not found`);
    return fe;
  }

  find(id: string): ForeignEndpoint | undefined {
    return this.#endpoints.get(id);
  }

  list(): ForeignEndpoint[] {
    return [...this.#endpoints.values()];
  }

  /** The endpoints restore() dropped at this start (their clients' own bookkeeping, e.g. Docker's IPAM holds, may need the news). */
  get droppedAtStart(): readonly ForeignEndpoint[] {
    return this.#dropped;
  }

  /** Runs fn under the engine's mutex (for callers that compose several steps). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.#mutex.run(fn);
  }

  #save(fe: ForeignEndpoint): void {
    this.#endpoints.set(fe.endpoint.id, fe);
    this.#store.documents.put(KIND, fe.endpoint.id, JSON.stringify(fe));
  }

  #network(fe: ForeignEndpoint): NetworkRecord {
    const net = this.#store.networks.get(fe.endpoint.networkId);
    if (!net) throw notFound(`network ${fe.endpoint.networkId} of endpoint ${fe.endpoint.id} not found`);
    return net;
  }

  /** Reserves an address and makes the endpoint's interfaces (the namespace side waits in the daemon's namespace). */
  create(net: NetworkRecord, req: Omit<CreateEndpointRequest, 'network'>): Promise<EndpointRecord> {
    return this.#mutex.run(async () => {
      const driver = this.#att.driver(net);
      if (!driver.capabilities.ownNamespace || !driver.capabilities.addresses)
        throw invalid(`network ${net.name} (driver "${net.driver}") does not make endpoints for other namespaces`);
      if (req.ipv4 !== undefined && parseIPv4(req.ipv4) === undefined) throw invalid(`invalid endpoint settings:\ninvalid IPv4 address: ${req.ipv4}`);
      if (req.ipv6 !== undefined && parseIp(req.ipv6)?.family !== 6) throw invalid(`invalid endpoint settings:\ninvalid IPv6 address: ${req.ipv6}`);
      if (req.ipv6 !== undefined && !net.subnet6) throw invalid(`invalid endpoint settings:\nuser specified IPv6 address ${req.ipv6} on network ${net.name}, which has IPv6 disabled`);
      if ((req.ipv4 !== undefined || req.ipv6 !== undefined) && net.predefined) throw invalid('invalid endpoint settings:\nuser specified IP address is supported on user defined networks only');
      if (req.mac !== undefined && !MAC.test(req.mac)) throw invalid(`invalid endpoint settings:\ninvalid MAC address: ${req.mac}`);
      const id = newId();
      const owner = foreignOwner(id);
      const planned: EndpointRecord = {
        id,
        networkId: net.id,
        sandboxId: '',
        state: 'creating',
        seq: 0,
        ifname: '',
        aliases: [],
        staticIp: req.ipv4 !== undefined,
        ...(req.mac !== undefined ? { mac: req.mac } : {}),
      };
      // Addresses (one per family the network has) and record in one transaction: a daemon killed
      // later finds both and re-adopts or deletes them together.
      this.#store.transaction(() => {
        Object.assign(planned, this.#att.allocate(net, owner, { ipv4: req.ipv4, ipv6: req.ipv6 }));
        this.#save({ endpoint: planned, ...(req.client ? { client: req.client } : {}) });
      });
      try {
        const endpoint = await driver.createEndpoint(net, planned);
        this.#save({ ...this.#endpoints.get(id)!, endpoint });
        return endpoint;
      } catch (err) {
        await driver.deleteEndpoint(net, planned).catch(() => undefined);
        this.#store.transaction(() => {
          this.#att.release(net, planned);
          this.#store.documents.delete(KIND, id);
        });
        this.#endpoints.delete(id);
        throw err;
      }
    });
  }

  /** Moves the endpoint into the namespace at req.netnsPath as req.ifname; the datapath then forwards for it. */
  join(id: string, req: JoinRequest): Promise<EndpointRecord> {
    return this.#mutex.run(async () => {
      const fe = this.get(id);
      if (fe.joined) throw conflict(`endpoint ${id.slice(0, 12)} is already joined to ${fe.joined.netnsPath} as ${fe.joined.ifname}`);
      // Both go into `ip -batch` lines and argv: no whitespace, no option-looking names.
      if (!IFNAME.test(req.ifname ?? '') || req.ifname === 'lo') throw invalid(`invalid interface name "${req.ifname}": 1-15 characters of [a-zA-Z0-9_.-], not lo`);
      if (typeof req.netnsPath !== 'string' || !req.netnsPath.startsWith('/') || /\s/.test(req.netnsPath)) throw invalid(`invalid namespace path "${req.netnsPath}": an absolute path`);
      if (!netnsExists(req.netnsPath)) throw notFound(`network namespace ${req.netnsPath} not found`);
      const net = this.#network(fe);
      const driver = this.#att.driver(net);
      const target: JoinTarget = { netnsPath: req.netnsPath, ifname: req.ifname, defaultRoute: req.defaultRoute ?? true };
      let joined = fe.endpoint;
      try {
        joined = await driver.join(net, fe.endpoint, target);
        if (driver.capabilities.datapath) await this.#att.datapath.ensureEndpoint(networkSpec(net), endpointSpec(joined, req.netnsPath));
      } catch (err) {
        await driver.leave(net, joined, target).catch(() => undefined);
        throw err;
      }
      this.#save({ ...fe, endpoint: { ...joined, state: 'active' }, joined: target });
      return this.#endpoints.get(id)!.endpoint;
    });
  }

  /**
   * Join for a caller that moves the interface into its namespace itself (dockerd): the driver
   * readies it in the daemon's namespace (MAC, MTU) and names it; the datapath forwards for the
   * endpoint from now on. netnsPath is where the caller says it goes (shown, never entered).
   */
  handOff(id: string, netnsPath: string): Promise<{ endpoint: EndpointRecord; srcName: string }> {
    return this.#mutex.run(async () => {
      const fe = this.get(id);
      if (fe.joined) throw conflict(`endpoint ${id.slice(0, 12)} is already joined to ${fe.joined.netnsPath}`);
      const net = this.#network(fe);
      const driver = this.#att.driver(net);
      if (!driver.handOff) throw invalid(`network ${net.name} (driver "${net.driver}") cannot hand its interfaces to the caller`);
      const { endpoint, ifname } = await driver.handOff(net, fe.endpoint);
      // The path is the caller's (it may be in another mount namespace, and the interface is not there yet): the datapath gets none.
      if (driver.capabilities.datapath) await this.#att.datapath.ensureEndpoint(networkSpec(net), endpointSpec(endpoint, ''));
      this.#save({ ...fe, endpoint: { ...endpoint, state: 'active' }, joined: { netnsPath, ifname, handedOff: true } });
      return { endpoint: this.#endpoints.get(id)!.endpoint, srcName: ifname };
    });
  }

  /** Takes the endpoint out of the namespace (nothing of bpfnet stays there); it can join again. */
  leave(id: string): Promise<void> {
    return this.#mutex.run(async () => {
      const fe = this.get(id);
      if (!fe.joined) throw conflict(`endpoint ${id.slice(0, 12)} is not joined`);
      const net = this.#network(fe);
      const driver = this.#att.driver(net);
      if (fe.ports?.length) await this.#att.datapath.unpublish(portSpecs(fe.ports.map(asRecord), fe.endpoint, net));
      if (driver.capabilities.datapath) await this.#att.datapath.removeEndpoint(networkSpec(net), endpointSpec(fe.endpoint, datapathNetns(fe.joined)));
      // Handed off: the caller takes the interface back itself (dockerd moves it out when it leaves).
      if (!fe.joined.handedOff) await driver.leave(net, fe.endpoint, fe.joined);
      const { joined: _gone, ports: _ports, ...rest } = fe;
      this.#save({ ...rest, endpoint: { ...fe.endpoint, state: 'creating' } });
    });
  }

  /** Removes the endpoint's interfaces and frees its address; a joined endpoint must leave first, as in moby. */
  delete(id: string): Promise<void> {
    return this.#mutex.run(async () => {
      const fe = this.get(id);
      if (fe.joined) throw forbiddenJoined(id);
      const net = this.#network(fe);
      await this.#att.driver(net).deleteEndpoint(net, fe.endpoint);
      this.#store.transaction(() => {
        this.#att.release(net, fe.endpoint);
        this.#store.documents.delete(KIND, id);
      });
      this.#endpoints.delete(id);
    });
  }

  /**
   * Publishes host ports to a joined endpoint, replacing what it published. `choose` picks
   * host ports (ephemeral, or one of a range) given what is taken; the bindings it returns are
   * checked against every other sandbox's and endpoint's.
   */
  publish(id: string, plan: (isFree: (b: { protocol: 'tcp' | 'udp'; hostIp: string; hostPort: number }) => boolean) => PortBinding[]): Promise<PortBinding[]> {
    return this.#mutex.run(async () => {
      const fe = this.get(id);
      if (!fe.joined) throw conflict(`endpoint ${id.slice(0, 12)} is not joined`);
      const net = this.#network(fe);
      const taken = new BindingIndex<{ protocol: 'tcp' | 'udp'; hostIp: string; hostPort: number; holder: string }>();
      for (const p of this.#store.ports.all()) taken.add({ ...p, holder: `bpfnet sandbox ${this.#store.sandboxes.get(p.sandboxId)?.name ?? p.sandboxId}` });
      for (const other of this.#endpoints.values()) if (other !== fe) for (const p of other.ports ?? []) taken.add({ ...p, holder: describeForeign(other) });
      const wanted = plan((b) => taken.clash(b) === undefined);
      const mine = new BindingIndex<PortBinding & { holder: string }>();
      for (const b of wanted) {
        const holder = taken.clash(b) ?? mine.clash(b);
        if (holder) throw conflict(`Bind for ${b.hostIp || '0.0.0.0'}:${b.hostPort}/${b.protocol} failed: port is already allocated (by ${holder.holder})`);
        mine.add({ ...b, holder: 'another port of the same request' });
      }
      if (fe.ports?.length) await this.#att.datapath.unpublish(portSpecs(fe.ports.map(asRecord), fe.endpoint, net));
      this.#save({ ...fe, ports: wanted });
      if (wanted.length > 0) await this.#att.datapath.publish(portSpecs(wanted.map(asRecord), fe.endpoint, net));
      return wanted;
    });
  }

  /** Withdraws every port the endpoint published (idempotent). */
  unpublish(id: string): Promise<void> {
    return this.#mutex.run(async () => {
      const fe = this.get(id);
      if (!fe.ports?.length) return;
      await this.#att.datapath.unpublish(portSpecs(fe.ports.map(asRecord), fe.endpoint, this.#network(fe)));
      const { ports: _gone, ...rest } = fe;
      this.#save(rest);
    });
  }

  /**
   * At start (reconcile): what stays and what the datapath replays. A joined endpoint whose
   * host device is gone had its namespace die while the daemon was down (the veth went with
   * it), and a handed-off one whose interface is back in the daemon's namespace had its
   * container's namespace destroyed by dockerd (which moves it back first): its client can no longer tell us (dockerd gave up retrying, the runtime's DEL failed),
   * so it is dropped here — record and addresses; the datapath, not given it, withdraws its
   * entries and ports. The client's later leave, delete or DEL finds nothing and succeeds.
   */
  async restore(): Promise<ForeignRestore> {
    const out: ForeignRestore = { links: [], endpoints: [], ports: [], dropped: [] };
    const stale: Array<{ fe: ForeignEndpoint; net: NetworkRecord }> = [];
    for (const fe of this.#endpoints.values()) {
      const net = this.#store.networks.get(fe.endpoint.networkId);
      if (!net) continue;
      const driver = this.#att.driver(net);
      if (!fe.joined || !fe.endpoint.hostIfname || !driver.capabilities.datapath) {
        out.links.push(...(driver.endpointDevices?.(fe.endpoint) ?? (fe.endpoint.hostIfname ? [fe.endpoint.hostIfname] : [])));
        continue;
      }
      // Gone with its namespace (CNI: the pair died with it), or given back: dockerd moves a handed-off
      // interface back under the name it got when it destroys the container's namespace.
      if (!(await link(null, fe.endpoint.hostIfname)) || (fe.joined.handedOff && (await link(null, fe.joined.ifname)))) {
        stale.push({ fe, net });
        continue;
      }
      out.links.push(...(driver.endpointDevices?.(fe.endpoint) ?? [fe.endpoint.hostIfname]));
      out.endpoints.push({ net, endpoint: fe.endpoint, netnsPath: datapathNetns(fe.joined) });
      if (fe.ports?.length) out.ports.push(...portSpecs(fe.ports.map(asRecord), fe.endpoint, net));
    }
    for (const { fe, net } of stale) {
      // The pair, if it came back (the stray sweep would take it too).
      await this.#att.driver(net).deleteEndpoint(net, fe.endpoint).catch(() => undefined);
      this.#store.transaction(() => {
        this.#att.release(net, fe.endpoint);
        this.#store.documents.delete(KIND, fe.endpoint.id);
      });
      this.#endpoints.delete(fe.endpoint.id);
      this.#dropped.push(fe);
      const addresses = [fe.endpoint.ipv4, fe.endpoint.ipv6].filter(Boolean).join(' and ');
      const ports = (fe.ports ?? []).map((p) => `${p.hostPort}/${p.protocol}`).join(', ');
      out.dropped.push(
        `${describeForeign(fe)} on network ${net.name} (${fe.endpoint.id.slice(0, 12)}): its namespace ${fe.joined?.netnsPath ?? ''} is gone (${fe.joined?.handedOff ? `interface ${fe.joined.ifname} given back` : `device ${fe.endpoint.hostIfname} missing`}); freed ${addresses || 'no address'}${ports ? `, withdrew ports ${ports}` : ''}`,
      );
    }
    return out;
  }
}

/** Who holds a foreign endpoint, for messages: "Docker endpoint 3f2a9c01b2d4", "cni endpoint CONTAINERID:eth0". */
export function describeForeign(fe: ForeignEndpoint): string {
  if (!fe.client) return `endpoint ${fe.endpoint.id.slice(0, 12)}`;
  const kind = fe.client.kind === 'docker' ? 'Docker' : fe.client.kind;
  return `${kind} endpoint ${fe.client.kind === 'docker' ? fe.client.ref.slice(0, 12) : fe.client.ref}`;
}

/** The namespace path the datapath may enter for a joined endpoint: none when the caller moved the interface itself. */
function datapathNetns(joined: ForeignJoin): string {
  return joined.handedOff ? '' : (joined.netnsPath ?? '');
}

function asRecord(b: PortBinding): PortRecord {
  return { sandboxId: '', ...b };
}

function forbiddenJoined(id: string): Error {
  return conflict(`endpoint ${id.slice(0, 12)} is still joined to a namespace: leave it first`);
}

/** Whether a network still has endpoints of foreign namespaces (it cannot be removed then). */
export function foreignOn(foreign: ForeignEndpoints, networkId: string): EndpointRecord[] {
  return foreign.list().filter((fe) => fe.endpoint.networkId === networkId).map((fe) => fe.endpoint);
}
