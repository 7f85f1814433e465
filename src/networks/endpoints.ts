/**
 * Endpoints for namespaces bpfnet did not create and does not own (moby's CreateEndpoint /
 * Join / Leave / DeleteEndpoint; CNI's ADD and DEL): a container engine asks for an endpoint
 * on a network, then joins it into its own namespace by path under the interface name it
 * chooses; leave and delete undo exactly that. The network's datapath forwards for them as for
 * bpfnet's own sandboxes, which are the other client of the same driver verbs (attachments.ts).
 * They live as long as the daemon: not stored, their addresses held in memory (volatile-holds.ts),
 * their devices swept as strays by a restarted daemon.
 */
import type { JoinTarget } from '../drivers/driver.js';
import { conflict, invalid, notFound } from '../errors.js';
import { parseIPv4 } from '../ipam/ipv4.js';
import type { Store } from '../store/store.js';
import { newId } from '../util/ids.js';
import type { Mutex } from '../util/mutex.js';
import { netnsExists } from '../drivers/netns-path.js';
import { Attachments, foreignOwner } from './attachments.js';
import type { EndpointRecord, NetworkRecord } from './model.js';
import { endpointSpec, networkSpec } from './spec.js';

export interface CreateEndpointRequest {
  /** Network id or name. */
  network: string;
  /** A static address inside the network's subnet; otherwise IPAM picks one. */
  ipv4?: string;
  /** A MAC for the namespace side (CNI's mac capability); otherwise the driver derives one from the address. */
  mac?: string;
}

export interface JoinRequest {
  /** The namespace, by path: /run/netns/NAME, /proc/PID/ns/net, a bind mount of one. */
  netnsPath: string;
  /** The interface name inside it. */
  ifname: string;
  /** The endpoint becomes the namespace's default route (default true, as moby's Join sets the gateway). */
  defaultRoute?: boolean;
}

/** An endpoint of a foreign namespace and where it is joined, if it is. */
export interface ForeignEndpoint {
  endpoint: EndpointRecord;
  joined?: JoinTarget;
}

const IFNAME = /^[a-zA-Z0-9_.-]{1,15}$/;

export class ForeignEndpoints {
  readonly #store: Store;
  readonly #att: Attachments;
  readonly #mutex: Mutex;
  readonly #endpoints = new Map<string, ForeignEndpoint>();

  constructor(store: Store, attachments: Attachments, mutex: Mutex) {
    this.#store = store;
    this.#att = attachments;
    this.#mutex = mutex;
  }

  get(id: string): ForeignEndpoint {
    const fe = this.#endpoints.get(id);
    if (!fe) throw notFound(`endpoint ${id} not found`);
    return fe;
  }

  list(): ForeignEndpoint[] {
    return [...this.#endpoints.values()];
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
      if (req.ipv4 !== undefined && net.predefined) throw invalid('invalid endpoint settings:\nuser specified IP address is supported on user defined networks only');
      const id = newId();
      const owner = foreignOwner(id);
      // An address of each family the network has, as for bpfnet's own sandboxes.
      const addresses = this.#store.transaction(() => this.#att.allocate(net, owner, { ipv4: req.ipv4 }));
      const planned: EndpointRecord = {
        id,
        networkId: net.id,
        sandboxId: '',
        state: 'creating',
        seq: 0,
        ifname: '',
        aliases: [],
        staticIp: req.ipv4 !== undefined,
        ...addresses,
        ...(req.mac !== undefined ? { mac: req.mac } : {}),
      };
      try {
        const endpoint = await driver.createEndpoint(net, planned);
        this.#endpoints.set(id, { endpoint });
        return endpoint;
      } catch (err) {
        await driver.deleteEndpoint(net, planned).catch(() => undefined);
        this.#store.transaction(() => this.#att.release(net, planned));
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
      fe.endpoint = { ...joined, state: 'active' };
      fe.joined = target;
      return fe.endpoint;
    });
  }

  /** Takes the endpoint out of the namespace (nothing of bpfnet stays there); it can join again. */
  leave(id: string): Promise<void> {
    return this.#mutex.run(async () => {
      const fe = this.get(id);
      if (!fe.joined) throw conflict(`endpoint ${id.slice(0, 12)} is not joined`);
      const net = this.#network(fe);
      const driver = this.#att.driver(net);
      if (driver.capabilities.datapath) await this.#att.datapath.removeEndpoint(networkSpec(net), endpointSpec(fe.endpoint, fe.joined.netnsPath!));
      await driver.leave(net, fe.endpoint, fe.joined);
      fe.endpoint = { ...fe.endpoint, state: 'creating' };
      fe.joined = undefined;
    });
  }

  /** Removes the endpoint's interfaces and frees its address; a joined endpoint must leave first, as in moby. */
  delete(id: string): Promise<void> {
    return this.#mutex.run(async () => {
      const fe = this.get(id);
      if (fe.joined) throw forbiddenJoined(id);
      const net = this.#network(fe);
      await this.#att.driver(net).deleteEndpoint(net, fe.endpoint);
      this.#store.transaction(() => this.#att.release(net, fe.endpoint));
      this.#endpoints.delete(id);
    });
  }
}

function forbiddenJoined(id: string): Error {
  return conflict(`endpoint ${id.slice(0, 12)} is still joined to a namespace: leave it first`);
}

/** Whether a network still has endpoints of foreign namespaces (it cannot be removed then). */
export function foreignOn(foreign: ForeignEndpoints, networkId: string): EndpointRecord[] {
  return foreign.list().filter((fe) => fe.endpoint.networkId === networkId).map((fe) => fe.endpoint);
}
