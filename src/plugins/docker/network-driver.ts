/**
 * Docker's network driver verbs on bpfnet's services: a Docker network is a bpfnet bridge
 * network (named docker-<id>, labelled with Docker's id), a Docker endpoint a foreign endpoint
 * (networks/endpoints.ts) whose interface dockerd moves into the container itself (handOff),
 * and Docker's published ports the endpoint's ports on bpfnet's datapath. Every verb is
 * idempotent: dockerd replays and retries after either side restarts.
 */
import { EPHEMERAL, PortCursor, type PortBinding } from '../../networks/ports.js';
import type { ForeignEndpoint } from '../../networks/endpoints.js';
import { gateway6For, type NetworkRecord } from '../../networks/model.js';
import type { NetworkService } from '../../networks/service.js';
import { ServiceError } from '../../errors.js';
import { canonicalIp, parsePrefix, type Family } from '../../ipam/ip.js';
import type { IpamConfigInput } from '../../ipam/config.js';
import { parseIPv4 } from '../../ipam/ipv4.js';
import type { Store } from '../../store/store.js';
import { Label, PluginError, body, flag, id, ipamData, optArray, optObject, optString, portBindings, stringMap, type IpamData, type JoinResponse } from './protocol.js';

/** The label that ties a bpfnet network to Docker's network id. */
export const DOCKER_NETWORK_LABEL = 'bpfnet.docker.network-id';
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

export class DockerNetworkDriver {
  readonly #networks: NetworkService;
  readonly #store: Store;
  readonly #cursor = new PortCursor();

  constructor(networks: NetworkService, store: Store) {
    this.#networks = networks;
    this.#store = store;
  }

  getCapabilities(): object {
    return { Scope: 'local', ConnectivityScope: 'local' };
  }

  /** The bpfnet network of a Docker network id, if it exists. */
  network(dockerId: string): NetworkRecord | undefined {
    return this.#store.networks.all().find((n) => n.labels[DOCKER_NETWORK_LABEL] === dockerId);
  }

  #requireNetwork(dockerId: string): NetworkRecord {
    const net = this.network(dockerId);
    if (!net) throw new PluginError(`network ${dockerId.slice(0, 12)} is not a bpfnet network (create it with -d bpfnet)`);
    return net;
  }

  /** The foreign endpoint of a Docker endpoint id, if it exists. */
  endpoint(dockerId: string): ForeignEndpoint | undefined {
    return this.#networks.foreign.list().find((fe) => fe.client?.kind === 'docker' && fe.client.ref === dockerId);
  }

  async createNetwork(raw: unknown): Promise<object> {
    const b = body(raw);
    const networkId = id(b, 'NetworkID');
    const options = optObject(b, 'Options');
    const v4 = ipamData(b.IPv4Data, 'IPv4Data');
    const v6 = ipamData(b.IPv6Data, 'IPv6Data');
    const enableIPv6 = flag(options[Label.enableIPv6]) || v6.length > 0;
    // dockerd 20.10 always asks the IPAM driver for an IPv4 pool; IPv6 ones come with --ipv6, one
    // per --subnet (the bridge driver routes each, with its own gateway on the bridge).
    if (v4.length !== 1) throw new PluginError(`bpfnet networks have exactly one IPv4 subnet, not ${v4.length}`);
    if (enableIPv6 && v6.length === 0) throw new PluginError('--ipv6 needs an IPv6 pool from the IPAM driver (--ipam-driver bpfnet gives one)');
    const generic = stringMap(options[Label.generic], `Options["${Label.generic}"]`);
    if (this.network(networkId)) return {};
    const blocks = [...v4.map((d) => ipamBlock(d, 4)), ...v6.map((d) => ipamBlock(d, 6))];
    await this.#networks.create({
      name: `docker-${networkId.slice(0, 12)}`,
      driver: 'bridge',
      internal: flag(options[Label.internal]),
      enableIPv6,
      options: generic,
      labels: { [DOCKER_NETWORK_LABEL]: networkId },
      ipamConfig: blocks,
    });
    return {};
  }

  async deleteNetwork(raw: unknown): Promise<object> {
    const b = body(raw);
    const net = this.network(id(b, 'NetworkID'));
    if (net) await this.#networks.remove(net.id);
    return {};
  }

  async createEndpoint(raw: unknown): Promise<object> {
    const b = body(raw);
    const networkId = id(b, 'NetworkID');
    const endpointId = id(b, 'EndpointID');
    const iface = optObject(b, 'Interface');
    const address = optString(iface, 'Address', 64);
    const address6 = optString(iface, 'AddressIPv6', 64);
    const mac = optString(iface, 'MacAddress', 64);
    if (!address) throw new PluginError('bpfnet endpoints need an IPv4 address (Interface.Address)');
    const ipv4 = address.split('/')[0];
    if (parseIPv4(ipv4) === undefined) throw new PluginError(`invalid Interface.Address "${address}"`);
    const ipv6 = address6 === undefined ? undefined : canonicalIp(address6.split('/')[0]);
    if (address6 !== undefined && (ipv6 === undefined || !ipv6.includes(':'))) throw new PluginError(`invalid Interface.AddressIPv6 "${address6}"`);
    if (mac !== undefined && !MAC.test(mac)) throw new PluginError(`invalid Interface.MacAddress "${mac}"`);
    const net = this.#requireNetwork(networkId);
    if (ipv6 !== undefined && !net.subnet6) throw new PluginError(`network ${networkId.slice(0, 12)} has no IPv6 subnet: Interface.AddressIPv6 "${address6}" cannot be given`);
    const existing = this.endpoint(endpointId);
    const ep =
      existing?.endpoint ??
      (await this.#networks.foreign.create(net, { ipv4, ...(ipv6 ? { ipv6 } : {}), ...(mac ? { mac: mac.toLowerCase() } : {}), client: { kind: 'docker', ref: endpointId, network: networkId } }));
    // dockerd gives the addresses (its IPAM is ours); an IPv6 one it did not give (a network
    // whose IPv6 came another way) goes back so dockerd sets it on the interface.
    const out: Record<string, string> = {};
    if (!mac) out.MacAddress = ep.mac!;
    if (!address6 && ep.ipv6) out.AddressIPv6 = `${ep.ipv6}/${ep.prefixLength6}`;
    // The MAC goes back only when bpfnet chose it (dockerd refuses a driver that changes one it gave).
    return Object.keys(out).length > 0 ? { Interface: out } : {};
  }

  async deleteEndpoint(raw: unknown): Promise<object> {
    const b = body(raw);
    id(b, 'NetworkID');
    const fe = this.endpoint(id(b, 'EndpointID'));
    if (!fe) return {};
    // A leave lost to a restart of either side: finish it first.
    if (fe.joined) await this.#networks.foreign.leave(fe.endpoint.id);
    await this.#networks.foreign.delete(fe.endpoint.id);
    return {};
  }

  endpointOperInfo(raw: unknown): object {
    const b = body(raw);
    id(b, 'NetworkID');
    const fe = this.endpoint(id(b, 'EndpointID'));
    if (!fe) throw new PluginError(`endpoint ${String(b.EndpointID).slice(0, 12)} not found`);
    return {
      Value: {
        id: fe.endpoint.id,
        ipv4: fe.endpoint.ipv4,
        ...(fe.endpoint.ipv6 ? { ipv6: fe.endpoint.ipv6 } : {}),
        mac: fe.endpoint.mac,
        hostInterface: fe.endpoint.hostIfname,
        ports: (fe.ports ?? []).map((p) => `${p.hostIp || '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`),
      },
    };
  }

  async join(raw: unknown): Promise<JoinResponse> {
    const b = body(raw);
    const net = this.#requireNetwork(id(b, 'NetworkID'));
    const endpointId = id(b, 'EndpointID');
    const sandboxKey = optString(b, 'SandboxKey', 4096);
    if (!sandboxKey || !sandboxKey.startsWith('/') || /[\s\0]/.test(sandboxKey)) throw new PluginError('SandboxKey must be an absolute path');
    optObject(b, 'Options');
    const fe = this.endpoint(endpointId);
    if (!fe) throw new PluginError(`endpoint ${endpointId.slice(0, 12)} not found: CreateEndpoint first`);
    let srcName: string;
    if (fe.joined?.handedOff) srcName = fe.joined.ifname;
    else srcName = (await this.#networks.foreign.handOff(fe.endpoint.id, sandboxKey)).srcName;
    const gateway6 = gateway6For(net, fe.endpoint.ipv6);
    // Internal networks have no way out, and so no default route (Docker's bridge driver does the same).
    return {
      InterfaceName: { SrcName: srcName, DstPrefix: 'eth' },
      ...(net.internal ? {} : { Gateway: net.gateway, ...(gateway6 ? { GatewayIPv6: gateway6 } : {}) }),
      StaticRoutes: [],
      DisableGatewayService: false,
    };
  }

  async leave(raw: unknown): Promise<object> {
    const b = body(raw);
    id(b, 'NetworkID');
    const fe = this.endpoint(id(b, 'EndpointID'));
    if (fe?.joined) await this.#networks.foreign.leave(fe.endpoint.id);
    return {};
  }

  async programExternalConnectivity(raw: unknown): Promise<object> {
    const b = body(raw);
    const net = this.#requireNetwork(id(b, 'NetworkID'));
    const endpointId = id(b, 'EndpointID');
    const options = optObject(b, 'Options');
    const wanted = portBindings(options[Label.portMap], `Options["${Label.portMap}"]`);
    // Exposed ports only matter to -P, which dockerd already turned into port-map entries with HostPort 0.
    optArray(options[Label.exposedPorts], `Options["${Label.exposedPorts}"]`);
    const fe = this.endpoint(endpointId);
    if (!fe) throw new PluginError(`endpoint ${endpointId.slice(0, 12)} not found`);
    // An internal network has no way in from outside either.
    if (net.internal || wanted.length === 0) return {};
    const requests = wanted.map((p) => {
      const protocol = p.Proto === 6 ? 'tcp' : p.Proto === 17 ? 'udp' : undefined;
      if (!protocol) throw new PluginError(`protocol ${p.Proto} is not supported for published ports (tcp and udp are)`);
      const hostIp = p.HostIP === undefined || p.HostIP === '' ? '' : p.HostIP;
      const canonical = hostIp === '' ? '' : canonicalIp(hostIp);
      if (canonical === undefined) throw new PluginError(`invalid host IP "${hostIp.slice(0, 64)}" for published port ${p.Port}`);
      // 0.0.0.0 is every IPv4 address and :: every IPv6 one (dockerd passes each when both are asked); '' is both.
      if (canonical.includes(':') && !fe.endpoint.ipv6) throw new PluginError(`host IP ${canonical} is IPv6, and endpoint ${endpointId.slice(0, 12)} has no IPv6 address`);
      const first = p.HostPort ?? 0;
      const last = Math.max(first, p.HostPortEnd ?? 0);
      return { protocol, hostIp: canonical, first, last, containerPort: p.Port } as const;
    });
    try {
      await this.#networks.foreign.publish(fe.endpoint.id, (isFree) => {
        const out: PortBinding[] = [];
        const mine = (protocol: 'tcp' | 'udp', hostIp: string, port: number) =>
          isFree({ protocol, hostIp, hostPort: port }) && !out.some((o) => o.protocol === protocol && o.hostPort === port && (o.hostIp === '' || hostIp === '' || o.hostIp === hostIp));
        for (const r of requests) {
          let hostPort = r.first;
          if (r.first === 0 || r.last > r.first) {
            const [lo, hi] = r.first === 0 ? [EPHEMERAL.first, EPHEMERAL.last] : [r.first, r.last];
            const p = this.#cursor.take(r.protocol, r.hostIp, lo, hi, (port) => mine(r.protocol, r.hostIp, port));
            if (p === undefined) throw new PluginError(`no free host port in ${lo}-${hi} for ${r.containerPort}/${r.protocol}`);
            hostPort = p;
          }
          out.push({ protocol: r.protocol, hostIp: r.hostIp, hostPort, containerPort: r.containerPort });
        }
        return out;
      });
    } catch (err) {
      if (err instanceof ServiceError) throw new PluginError(err.message);
      throw err;
    }
    return {};
  }

  async revokeExternalConnectivity(raw: unknown): Promise<object> {
    const b = body(raw);
    id(b, 'NetworkID');
    const fe = this.endpoint(id(b, 'EndpointID'));
    if (fe) await this.#networks.foreign.unpublish(fe.endpoint.id);
    return {};
  }
}

/** One pool of CreateNetwork's IPv4Data or IPv6Data as a bpfnet IPAM block (dockerd sends the gateway and aux addresses as CIDRs). */
function ipamBlock(data: IpamData, family: Family): IpamConfigInput {
  const pool = parsePrefix(data.Pool);
  if (!pool || pool.family !== family) throw new PluginError(`invalid ${family === 4 ? 'IPv4' : 'IPv6'} pool "${data.Pool}"`);
  const gateway = data.Gateway?.split('/')[0];
  if (gateway !== undefined && canonicalIp(gateway) === undefined) throw new PluginError(`invalid gateway "${data.Gateway}"`);
  const aux: Record<string, string> = {};
  for (const [name, cidr] of Object.entries(data.AuxAddresses ?? {})) aux[name] = cidr.split('/')[0];
  return { Subnet: data.Pool, ...(gateway ? { Gateway: gateway } : {}), ...(Object.keys(aux).length ? { AuxiliaryAddresses: aux } : {}) };
}
