/**
 * The /endpoints routes: the endpoints of namespaces bpfnet does not own, whoever made them —
 * Docker's containers through the plugin (client "docker", ref Docker's endpoint id) and CNI's
 * (client "cni", ref the key "CONTAINERID:IFNAME" the runtime attaches under) — in one shape,
 * found by one lookup. `bpfnet ps`/`inspect` show them (docker ps cannot show a remote driver's
 * ports); bpfnet-cni attaches, checks and detaches its own through the keyed verbs.
 *
 *   GET    /endpoints              ?owner=&network=&client= -> EndpointView[]
 *   GET    /endpoints/{ref}        -> EndpointView: ref is the client's key or id, bpfnet's id, or a unique hex prefix of either id
 *   PUT    /endpoints/{key}        body EndpointAttachRequest -> 201 EndpointView (made), 200 (the same key and target existed)
 *   GET    /endpoints/{key}/check  -> {"Problems": [...]} (empty: its interfaces are as built)
 *   DELETE /endpoints/{key}        -> 204 (404 unknown: already deleted; 409 an endpoint another engine manages)
 * Errors are moby's {"message"} with 400 invalid, 403/409 port taken, 404 unknown, 409 key joined elsewhere.
 */
import { KEY, type KeyedEndpoint, type KeyedEndpoints } from '../../cni/keyed-endpoints.js';
import { conflict, invalid, notFound } from '../../errors.js';
import type { ForeignEndpoint } from '../../networks/endpoints.js';
import { gateway6For } from '../../networks/model.js';
import type { NetworkService } from '../../networks/service.js';
import { sendEmpty, sendJson, type Router } from '../router.js';
import { int, list, obj, opt, str, type Infer } from '../validate.js';
import { checkBody, checkQuery } from '../validate.js';

export const endpointAttachSchema = obj({
  Network: str({ min: 1, max: 256 }),
  Netns: str({ min: 1, max: 4096 }),
  Ifname: str({ min: 1, max: 15 }),
  IPv4Address: opt(str({ max: 64 })),
  IPv6Address: opt(str({ max: 64 })),
  MacAddress: opt(str({ max: 64 })),
  Owner: opt(str({ max: 64 })),
  Ports: opt(
    list(
      obj({
        Protocol: opt(str({ oneOf: ['tcp', 'udp'] })),
        HostIp: opt(str({ max: 64 })),
        HostPort: int(1, 65535),
        ContainerPort: int(1, 65535),
      }),
      1024,
    ),
  ),
});

export type EndpointAttachRequest = Infer<typeof endpointAttachSchema>;

/** One endpoint of a namespace bpfnet does not own, as the API shows it. */
export interface EndpointView {
  /** The client's reference: the CNI key, Docker's endpoint id ('' when the client gave none). */
  Key: string;
  /** Who made it: "docker", "cni" ('' when unknown). */
  Client: string;
  /** The client's owner tag (CNI: "cni:<network name>"; GC lists by it). */
  Owner: string;
  /** The client's id of the network (Docker's network id), when it gave one. */
  ClientNetwork: string;
  Id: string;
  Network: string;
  NetworkId: string;
  /** Where the client put it: its namespace path (in the client's mount namespace for dockerd). */
  Netns: string;
  /** The interface name in that namespace ('' while not joined; dockerd's own choice is not known). */
  Ifname: string;
  State: 'created' | 'joined';
  HostIfname: string;
  MacAddress: string;
  /** CIDR, '' when the endpoint has no IPv4 address. */
  IPv4Address: string;
  Gateway: string;
  /** CIDR and gateway of IPv6, '' on a network without IPv6. */
  IPv6Address: string;
  Gateway6: string;
  Ports: Array<{ Protocol: string; HostIp: string; HostPort: number; ContainerPort: number }>;
}

/** `keyed`: the CNI attachment of the endpoint, when it has one (its key and owner; records of older daemons carry no client). */
export function endpointView(fe: ForeignEndpoint, networks: NetworkService, keyed?: KeyedEndpoint): EndpointView {
  const ep = fe.endpoint;
  const net = safeNetwork(networks, ep.networkId);
  const cni = fe.client?.kind === 'cni';
  return {
    Key: fe.client?.ref ?? keyed?.key ?? '',
    Client: fe.client?.kind ?? (keyed ? 'cni' : ''),
    Owner: keyed?.owner ?? (cni ? (fe.client?.network ?? '') : ''),
    ClientNetwork: cni ? '' : (fe.client?.network ?? ''),
    Id: ep.id,
    Network: net?.name ?? ep.networkId.slice(0, 12),
    NetworkId: ep.networkId,
    Netns: fe.joined?.netnsPath ?? '',
    // A handed-off interface is named by the client inside (dockerd: eth0...); ours is the parked name.
    Ifname: fe.joined && !fe.joined.handedOff ? fe.joined.ifname : '',
    State: fe.joined ? 'joined' : 'created',
    HostIfname: ep.hostIfname ?? '',
    MacAddress: ep.mac ?? '',
    IPv4Address: ep.ipv4 ? `${ep.ipv4}/${ep.prefixLength ?? 32}` : '',
    Gateway: net?.gateway ?? '',
    IPv6Address: ep.ipv6 ? `${ep.ipv6}/${ep.prefixLength6 ?? 128}` : '',
    // The gateway of the IPv6 subnet holding the address (a network may have several).
    Gateway6: (net ? gateway6For(net, ep.ipv6) : undefined) ?? '',
    Ports: (fe.ports ?? []).map((p) => ({ Protocol: p.protocol, HostIp: p.hostIp, HostPort: p.hostPort, ContainerPort: p.containerPort })),
  };
}

function safeNetwork(networks: NetworkService, id: string) {
  try {
    return networks.resolve(id);
  } catch {
    return undefined;
  }
}

/** The one check of a reference in a path: a client key (CNI's), or an id or id prefix. */
function checkRef(ref: string): string {
  if (!KEY.test(ref)) throw invalid(`invalid endpoint reference "${ref.slice(0, 64)}": 1-300 characters of [A-Za-z0-9_.:-], starting with a letter or digit`);
  return ref;
}

/** The endpoint a reference names: exactly by key or id, else by a unique prefix of a hex id (never of a key). */
export function findEndpoint(all: readonly ForeignEndpoint[], ref: string): ForeignEndpoint {
  const exact = all.find((fe) => fe.endpoint.id === ref || fe.client?.ref === ref);
  if (exact) return exact;
  if (/^[0-9a-f]{1,64}$/.test(ref)) {
    const byPrefix = all.filter((fe) => fe.endpoint.id.startsWith(ref) || (fe.client?.kind !== 'cni' && fe.client?.ref.startsWith(ref)));
    if (byPrefix.length === 1) return byPrefix[0];
    if (byPrefix.length > 1) throw invalid(`endpoint reference ${ref} is ambiguous: ${byPrefix.length} endpoints match`);
  }
  throw notFound(`No such endpoint: ${ref}`);
}

const listQuery = { owner: opt(str({ max: 64 })), network: opt(str({ max: 256 })), client: opt(str({ max: 32 })) };

export function endpointRoutes(router: Router, networks: NetworkService, keyed: KeyedEndpoints): void {
  const views = () => {
    const byEndpoint = new Map(keyed.list().map((ke) => [ke.endpoint.id, ke]));
    return networks.foreign.list().map((fe) => ({ fe, view: endpointView(fe, networks, byEndpoint.get(fe.endpoint.id)) }));
  };

  router.on('GET', '/endpoints', (req, res) => {
    const q = checkQuery(req.query, listQuery);
    const shown = views()
      .map((v) => v.view)
      .filter((v) => (q.owner === undefined || v.Owner === q.owner) && (q.client === undefined || v.Client === q.client) && (q.network === undefined || v.Network === q.network || v.NetworkId === q.network));
    sendJson(res, 200, shown);
  });

  router.on('PUT', '/endpoints/{ref}', async (req, res) => {
    const key = checkRef(req.params.ref);
    const body = checkBody(endpointAttachSchema, await req.body());
    const { entry, created } = await keyed.attach({
      key,
      network: body.Network,
      netnsPath: body.Netns,
      ifname: body.Ifname,
      ...(body.IPv4Address ? { ipv4: body.IPv4Address } : {}),
      ...(body.IPv6Address ? { ipv6: body.IPv6Address } : {}),
      ...(body.MacAddress ? { mac: body.MacAddress } : {}),
      owner: body.Owner ?? '',
      ports: (body.Ports ?? []).map((p) => ({ protocol: (p.Protocol ?? 'tcp') as 'tcp' | 'udp', hostIp: p.HostIp ?? '', hostPort: p.HostPort, containerPort: p.ContainerPort })),
    });
    sendJson(res, created ? 201 : 200, endpointView(networks.foreign.get(entry.endpoint.id), networks, entry));
  });

  router.on('GET', '/endpoints/{ref}', (req, res) => {
    const ref = checkRef(req.params.ref);
    const all = views();
    const byKey = all.find((v) => v.view.Key === ref);
    const fe = byKey?.fe ?? findEndpoint(all.map((v) => v.fe), ref);
    sendJson(res, 200, all.find((v) => v.fe === fe)!.view);
  });

  router.on('GET', '/endpoints/{ref}/check', async (req, res) => {
    sendJson(res, 200, { Problems: await keyed.check(checkRef(req.params.ref)) });
  });

  router.on('DELETE', '/endpoints/{ref}', async (req, res) => {
    const key = checkRef(req.params.ref);
    if (await keyed.detach(key)) return sendEmpty(res, 204);
    const other = networks.foreign.list().find((fe) => fe.client?.ref === key || fe.endpoint.id === key);
    if (other) throw conflict(`endpoint ${key.slice(0, 64)} is managed by ${other.client?.kind || 'another engine'}: remove it there (docker rm, docker network disconnect)`);
    sendJson(res, 404, { message: `endpoint ${key} not found` });
  });
}
