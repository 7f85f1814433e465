/** The Engine API's /networks endpoints. */
import { invalid } from '../../errors.js';
import type { NetworkService } from '../../networks/service.js';
import type { Store } from '../../store/store.js';
import { networkContainers, networkJson } from '../render.js';
import { sendEmpty, sendJson, type Router } from '../router.js';
import type { NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest } from '../types.js';

function asObject<T>(body: unknown): Partial<T> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('request body must be a JSON object');
  return body as Partial<T>;
}

function stringMap(value: unknown, what: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid(`${what} must be an object of strings`);
  for (const [k, v] of Object.entries(value)) if (typeof v !== 'string') throw invalid(`${what}: value of "${k}" must be a string`);
  return value as Record<string, string>;
}

export function networkRoutes(router: Router, networks: NetworkService, store: Store): void {
  const sandboxName = (id: string) => store.sandboxes.get(id)?.name;

  router.on('GET', '/networks', (req, res) => {
    const list = networks.list(req.query.get('filters'));
    // Since API 1.28 the list carries no containers.
    sendJson(res, 200, list.map((n) => networkJson(n, {})));
  });

  router.on('GET', '/networks/{id}', (req, res) => {
    const net = networks.inspect(req.params.id);
    sendJson(res, 200, networkJson(net, networkContainers(store.endpoints.forNetwork(net.id), sandboxName)));
  });

  router.on('POST', '/networks/create', async (req, res) => {
    const body = asObject<NetworkCreateRequest>(await req.body());
    if (typeof body.Name !== 'string') throw invalid('network name is required (Name)');
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
      ipamOptions: ipam.Options === null ? null : stringMap(ipam.Options, 'IPAM.Options'),
      ipamConfig: Array.isArray(ipam.Config) ? ipam.Config : [],
      options: stringMap(body.Options, 'Options'),
      labels: stringMap(body.Labels, 'Labels'),
    });
    sendJson(res, 201, { Id: result.id, Warning: result.warning });
  });

  router.on('POST', '/networks/{id}/connect', async (req, res) => {
    const body = asObject<NetworkConnectRequest>(await req.body());
    if (typeof body.Container !== 'string' || !body.Container) throw invalid('Container is required');
    const cfg = body.EndpointConfig ?? {};
    const ipv4 = cfg.IPAMConfig?.IPv4Address || undefined;
    if (cfg.IPAMConfig?.IPv6Address) throw invalid('invalid endpoint settings:\nIPv6 is not supported by bpfnet yet');
    await networks.connect(req.params.id, body.Container, { ipv4, aliases: cfg.Aliases ?? [] });
    sendEmpty(res, 200);
  });

  router.on('POST', '/networks/{id}/disconnect', async (req, res) => {
    const body = asObject<NetworkDisconnectRequest>(await req.body());
    if (typeof body.Container !== 'string' || !body.Container) throw invalid('Container is required');
    await networks.disconnect(req.params.id, body.Container, body.Force === true);
    sendEmpty(res, 200);
  });

  router.on('DELETE', '/networks/{id}', async (req, res) => {
    await networks.remove(req.params.id);
    sendEmpty(res, 204);
  });

  router.on('POST', '/networks/prune', async (req, res) => {
    const deleted = await networks.prune(req.query.get('filters'));
    sendJson(res, 200, { NetworksDeleted: deleted });
  });
}
