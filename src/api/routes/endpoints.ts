/**
 * bpfnet's own /endpoints routes: endpoints of namespaces bpfnet does not own, keyed by the
 * caller (CNI: "CONTAINERID:IFNAME"), for runtimes that bring their own namespaces.
 *
 *   PUT    /endpoints/{key}        body EndpointAttachRequest -> 201 EndpointView (made), 200 (the same key and target existed)
 *   GET    /endpoints              ?owner=&network= -> EndpointView[]
 *   GET    /endpoints/{key}        -> EndpointView (404 unknown)
 *   GET    /endpoints/{key}/check  -> {"Problems": [...]} (empty: its interfaces are as built)
 *   DELETE /endpoints/{key}        -> 204 (404 unknown: already deleted)
 * Errors are moby's {"message"} with 400 invalid, 403 port taken, 404 unknown, 409 key joined elsewhere.
 */
import type { KeyedEndpoint, KeyedEndpoints } from '../../cni/keyed-endpoints.js';
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

export interface EndpointView {
  Key: string;
  Owner: string;
  Id: string;
  Network: string;
  NetworkId: string;
  Netns: string;
  Ifname: string;
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

export function endpointView(ke: KeyedEndpoint): EndpointView {
  const ep = ke.endpoint;
  return {
    Key: ke.key,
    Owner: ke.owner,
    Id: ep.id,
    Network: ke.network.name,
    NetworkId: ke.network.id,
    Netns: ke.netnsPath,
    Ifname: ke.ifname,
    HostIfname: ep.hostIfname ?? '',
    MacAddress: ep.mac ?? '',
    IPv4Address: ep.ipv4 ? `${ep.ipv4}/${ep.prefixLength}` : '',
    Gateway: ke.network.gateway ?? '',
    IPv6Address: ep.ipv6 ? `${ep.ipv6}/${ep.prefixLength6}` : '',
    Gateway6: ke.network.gateway6 ?? '',
    Ports: ke.ports.map((p) => ({ Protocol: p.protocol, HostIp: p.hostIp, HostPort: p.hostPort, ContainerPort: p.containerPort })),
  };
}

const listQuery = { owner: opt(str({ max: 64 })), network: opt(str({ max: 256 })) };

export function endpointRoutes(router: Router, keyed: KeyedEndpoints): void {
  router.on('GET', '/endpoints', (req, res) => {
    const q = checkQuery(req.query, listQuery);
    const all = keyed.list().filter((ke) => (q.owner === undefined || ke.owner === q.owner) && (q.network === undefined || ke.network.name === q.network || ke.network.id === q.network));
    sendJson(res, 200, all.map(endpointView));
  });

  router.on('PUT', '/endpoints/{key}', async (req, res) => {
    const body = checkBody(endpointAttachSchema, await req.body());
    const { entry, created } = await keyed.attach({
      key: req.params.key,
      network: body.Network,
      netnsPath: body.Netns,
      ifname: body.Ifname,
      ...(body.IPv4Address ? { ipv4: body.IPv4Address } : {}),
      ...(body.IPv6Address ? { ipv6: body.IPv6Address } : {}),
      ...(body.MacAddress ? { mac: body.MacAddress } : {}),
      owner: body.Owner ?? '',
      ports: (body.Ports ?? []).map((p) => ({ protocol: (p.Protocol ?? 'tcp') as 'tcp' | 'udp', hostIp: p.HostIp ?? '', hostPort: p.HostPort, containerPort: p.ContainerPort })),
    });
    sendJson(res, created ? 201 : 200, endpointView(entry));
  });

  router.on('GET', '/endpoints/{key}', (req, res) => {
    sendJson(res, 200, endpointView(keyed.get(req.params.key)));
  });

  router.on('GET', '/endpoints/{key}/check', async (req, res) => {
    sendJson(res, 200, { Problems: await keyed.check(req.params.key) });
  });

  router.on('DELETE', '/endpoints/{key}', async (req, res) => {
    if (!(await keyed.detach(req.params.key))) return sendJson(res, 404, { message: `endpoint ${req.params.key} not found` });
    sendEmpty(res, 204);
  });
}
