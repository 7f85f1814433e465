/** The Engine API's /networks endpoints. */
import type { NetworkService } from '../../networks/service.js';
import type { Store } from '../../store/store.js';
import { networkContainers, networkJson } from '../render.js';
import { sendEmpty, sendJson, type Router } from '../router.js';
import { filtersQuery, networkConnectSchema, networkCreateSchema, networkDisconnectSchema } from '../schemas.js';
import { checkBody, checkQuery } from '../validate.js';

export function networkRoutes(router: Router, networks: NetworkService, store: Store): void {
  const sandboxName = (id: string) => store.sandboxes.get(id)?.name;

  router.on('GET', '/networks', (req, res) => {
    const list = networks.list(checkQuery(req.query, filtersQuery).filters);
    // Since API 1.28 the list carries no containers.
    sendJson(res, 200, list.map((n) => networkJson(n, {})));
  });

  router.on('GET', '/networks/{id}', (req, res) => {
    const net = networks.inspect(req.params.id);
    const endpoints = store.endpoints.forNetwork(net.id);
    // Many endpoints: one read of the sandboxes instead of one per endpoint.
    const names = endpoints.length > 32 ? new Map(store.sandboxes.all().map((sb) => [sb.id, sb.name])) : undefined;
    sendJson(res, 200, networkJson(net, networkContainers(endpoints, names ? (id) => names.get(id) : sandboxName)));
  });

  router.on('POST', '/networks/create', async (req, res) => {
    const body = checkBody(networkCreateSchema, await req.body());
    const ipam = body.IPAM ?? {};
    const result = await networks.create({
      name: body.Name,
      driver: body.Driver,
      internal: body.Internal === true,
      attachable: body.Attachable === true,
      ingress: body.Ingress === true,
      configOnly: body.ConfigOnly === true,
      configFrom: body.ConfigFrom?.Network || undefined,
      enableIPv4: body.EnableIPv4,
      enableIPv6: body.EnableIPv6,
      ipamDriver: ipam.Driver || undefined,
      ipamOptions: ipam.Options ?? {},
      ipamConfig: ipam.Config ?? [],
      options: body.Options ?? {},
      labels: body.Labels ?? {},
    });
    sendJson(res, 201, { Id: result.id, Warning: result.warning });
  });

  router.on('POST', '/networks/{id}/connect', async (req, res) => {
    const body = checkBody(networkConnectSchema, await req.body());
    const cfg = body.EndpointConfig ?? {};
    const ipv4 = cfg.IPAMConfig?.IPv4Address || undefined;
    const ipv6 = cfg.IPAMConfig?.IPv6Address || undefined;
    await networks.connect(req.params.id, body.Container, { ipv4, ipv6, aliases: cfg.Aliases ?? [] });
    sendEmpty(res, 200);
  });

  router.on('POST', '/networks/{id}/disconnect', async (req, res) => {
    const body = checkBody(networkDisconnectSchema, await req.body());
    await networks.disconnect(req.params.id, body.Container, body.Force === true);
    sendEmpty(res, 200);
  });

  router.on('DELETE', '/networks/{id}', async (req, res) => {
    await networks.remove(req.params.id);
    sendEmpty(res, 204);
  });

  router.on('POST', '/networks/prune', async (req, res) => {
    const deleted = await networks.prune(checkQuery(req.query, filtersQuery).filters);
    sendJson(res, 200, { NetworksDeleted: deleted });
  });
}
