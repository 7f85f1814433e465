/**
 * GET /foreign-endpoints[/{id}]: the endpoints of namespaces bpfnet does not own (Docker's
 * containers on the plugin, CNI's), with their client's ids, addresses and published ports —
 * what `docker ps`/`docker port` cannot show for a remote driver, shown by `bpfnet ps` and
 * `bpfnet inspect`. An id is bpfnet's endpoint id, the client's (Docker's endpoint id), or a
 * unique prefix of either.
 */
import { notFound } from '../../errors.js';
import type { ForeignEndpoint } from '../../networks/endpoints.js';
import type { NetworkService } from '../../networks/service.js';
import { sendJson, type Router } from '../../api/router.js';

/** One foreign endpoint as the API shows it. */
export interface ForeignEndpointJson {
  Id: string;
  Client: string;
  /** The client's id of the endpoint (Docker's EndpointID). */
  ClientId: string;
  /** The client's id of the network (Docker's network id), when it gave one. */
  ClientNetwork: string;
  Network: string;
  NetworkId: string;
  /** Where the client put it: its namespace path (in the client's mount namespace for dockerd). */
  Sandbox: string;
  State: 'created' | 'joined';
  IPv4Address: string;
  /** CIDR, '' on a network without IPv6. */
  IPv6Address: string;
  MacAddress: string;
  HostInterface: string;
  Ports: Array<{ IP: string; PrivatePort: number; PublicPort: number; Type: string }>;
}

export function foreignEndpointJson(fe: ForeignEndpoint, networkName: (id: string) => string): ForeignEndpointJson {
  const ep = fe.endpoint;
  return {
    Id: ep.id,
    Client: fe.client?.kind ?? '',
    ClientId: fe.client?.ref ?? '',
    ClientNetwork: fe.client?.network ?? '',
    Network: networkName(ep.networkId),
    NetworkId: ep.networkId,
    Sandbox: fe.joined?.netnsPath ?? '',
    State: fe.joined ? 'joined' : 'created',
    IPv4Address: ep.ipv4 ? `${ep.ipv4}/${ep.prefixLength ?? 32}` : '',
    IPv6Address: ep.ipv6 ? `${ep.ipv6}/${ep.prefixLength6 ?? 128}` : '',
    MacAddress: ep.mac ?? '',
    HostInterface: ep.hostIfname ?? '',
    Ports: (fe.ports ?? []).map((p) => ({ IP: p.hostIp || '0.0.0.0', PrivatePort: p.containerPort, PublicPort: p.hostPort, Type: p.protocol })),
  };
}

export function foreignEndpointRoutes(router: Router, networks: NetworkService): void {
  const name = (id: string) => {
    try {
      return networks.resolve(id).name;
    } catch {
      return id.slice(0, 12);
    }
  };
  router.on('GET', '/foreign-endpoints', (_req, res) => {
    sendJson(res, 200, networks.foreign.list().map((fe) => foreignEndpointJson(fe, name)));
  });
  router.on('GET', '/foreign-endpoints/{id}', (req, res) => {
    const ref = req.params.id;
    const all = networks.foreign.list();
    const exact = all.find((fe) => fe.endpoint.id === ref || fe.client?.ref === ref);
    const byPrefix = ref.length > 0 ? all.filter((fe) => fe.endpoint.id.startsWith(ref) || fe.client?.ref.startsWith(ref)) : [];
    const fe = exact ?? (byPrefix.length === 1 ? byPrefix[0] : undefined);
    if (!fe) throw notFound(`No such endpoint: ${ref}`);
    sendJson(res, 200, foreignEndpointJson(fe, name));
  });
}
