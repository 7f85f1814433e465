/**
 * The cluster (global scope) API, present when the daemon runs with --cluster-store:
 * GET /cluster (this host, the live hosts, watch and lease counters), global networks, and
 * the cluster half of an endpoint (address reservation, name, VTEP) for the overlay driver
 * and operators. Every route needing etcd answers 503 while it cannot be reached.
 */
import { invalid } from '../../errors.js';
import type { ClusterService } from '../../cluster/cluster-service.js';
import { sendEmpty, sendJson, type Router } from '../router.js';

function str(body: Record<string, unknown>, key: string, required: true): string;
function str(body: Record<string, unknown>, key: string, required?: false): string | undefined;
function str(body: Record<string, unknown>, key: string, required = false): string | undefined {
  const v = body[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v === '') throw invalid(`${key} must be a non-empty string`);
  return v;
}

async function objectBody(body: Promise<unknown>): Promise<Record<string, unknown>> {
  const b = await body;
  if (b === null || typeof b !== 'object' || Array.isArray(b)) throw invalid('request body must be a JSON object');
  return b as Record<string, unknown>;
}

export function clusterRoutes(router: Router, cluster: ClusterService): void {
  router.on('GET', '/cluster', (_req, res) => sendJson(res, 200, cluster.info()));

  // The watch's changes as they arrive, one JSON line each (what a host sees, when it sees it).
  router.on('GET', '/cluster/events', (req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
    res.flushHeaders();
    const unsubscribe = cluster.onChange((e) => res.write(`${JSON.stringify({ Time: Date.now(), ...e })}\n`));
    req.raw.once('close', unsubscribe);
    res.once('close', unsubscribe);
  });

  router.on('GET', '/cluster/networks', (_req, res) => sendJson(res, 200, cluster.networks()));

  router.on('POST', '/cluster/networks', async (req, res) => {
    const b = await objectBody(req.body());
    const vni = b.VNI;
    if (vni !== undefined && typeof vni !== 'number') throw invalid('VNI must be a number');
    const labels = b.Labels ?? {};
    if (typeof labels !== 'object' || labels === null || Object.values(labels).some((v) => typeof v !== 'string')) throw invalid('Labels must map strings to strings');
    // Subnet (IPv4) and SubnetV6, either or both (the service refuses neither).
    const net = await cluster.createNetwork({
      name: str(b, 'Name', true),
      subnet: str(b, 'Subnet'),
      subnet6: str(b, 'SubnetV6'),
      vni,
      internal: b.Internal === true,
      labels: labels as Record<string, string>,
    });
    sendJson(res, 201, net);
  });

  router.on('DELETE', '/cluster/networks/{id}', async (req, res) => {
    await cluster.deleteNetwork(req.params.id!);
    sendEmpty(res, 204);
  });

  router.on('GET', '/cluster/endpoints', async (req, res) => sendJson(res, 200, await cluster.endpoints(req.query.get('network') ?? undefined)));

  router.on('POST', '/cluster/networks/{id}/endpoints', async (req, res) => {
    const b = await objectBody(req.body());
    const aliases = b.Aliases ?? [];
    if (!Array.isArray(aliases) || aliases.some((a) => typeof a !== 'string')) throw invalid('Aliases must be an array of strings');
    const ep = await cluster.connect({ network: req.params.id!, name: str(b, 'Name', true), aliases: aliases as string[], ipv4: str(b, 'IPv4Address'), ipv6: str(b, 'IPv6Address') });
    sendJson(res, 201, ep);
  });

  router.on('DELETE', '/cluster/networks/{id}/endpoints/{endpoint}', async (req, res) => {
    await cluster.disconnect(req.params.id!, req.params.endpoint!);
    sendEmpty(res, 204);
  });
}
