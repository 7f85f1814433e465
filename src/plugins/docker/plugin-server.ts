/**
 * The Docker plugin socket: dockerd discovers DIR/bpfnet.sock (default /run/docker/plugins)
 * and POSTs libnetwork's remote network and IPAM verbs to it. Each request is parsed
 * (bounded size, JSON object), handed to the network or IPAM driver, and answered with 200
 * and the verb's response, or its error field — {"Err"} for NetworkDriver.*, {"Error"} for
 * IpamDriver.* — which dockerd reports as "remote: <message>". The plugin never calls dockerd.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Logger } from '../../daemon/log.js';
import { claimSocketPath, releaseSocketPath } from '../../daemon/socket.js';
import { ServiceError } from '../../errors.js';
import type { DockerIpamDriver } from './ipam-driver.js';
import type { DockerNetworkDriver } from './network-driver.js';
import { IMPLEMENTS, PLUGIN_MEDIA_TYPE, PluginError } from './protocol.js';

/** The plugin's name: `docker network create -d bpfnet --ipam-driver bpfnet`. */
export const PLUGIN_NAME = 'bpfnet';
export const DEFAULT_PLUGIN_DIR = '/run/docker/plugins';
const MAX_BODY = 1 << 20;

type Handler = (body: unknown) => object | Promise<object>;

export class DockerPluginServer {
  readonly socket: string;
  readonly #log: Logger;
  readonly #routes: Map<string, Handler>;
  #server?: Server;

  constructor(dir: string, network: DockerNetworkDriver, ipam: DockerIpamDriver, log: Logger) {
    this.socket = join(dir, `${PLUGIN_NAME}.sock`);
    this.#log = log;
    const nd = network;
    this.#routes = new Map<string, Handler>([
      ['/Plugin.Activate', () => ({ Implements: [...IMPLEMENTS] })],
      ['/NetworkDriver.GetCapabilities', () => nd.getCapabilities()],
      ['/NetworkDriver.CreateNetwork', (b) => nd.createNetwork(b)],
      ['/NetworkDriver.DeleteNetwork', (b) => nd.deleteNetwork(b)],
      ['/NetworkDriver.CreateEndpoint', (b) => nd.createEndpoint(b)],
      ['/NetworkDriver.DeleteEndpoint', (b) => nd.deleteEndpoint(b)],
      ['/NetworkDriver.EndpointOperInfo', (b) => nd.endpointOperInfo(b)],
      ['/NetworkDriver.Join', (b) => nd.join(b)],
      ['/NetworkDriver.Leave', (b) => nd.leave(b)],
      ['/NetworkDriver.ProgramExternalConnectivity', (b) => nd.programExternalConnectivity(b)],
      ['/NetworkDriver.RevokeExternalConnectivity', (b) => nd.revokeExternalConnectivity(b)],
      ['/NetworkDriver.DiscoverNew', () => ({})],
      ['/NetworkDriver.DiscoverDelete', () => ({})],
      // Global-scope verbs: a local-scope driver has nothing to allocate.
      ['/NetworkDriver.AllocateNetwork', () => ({ Options: {} })],
      ['/NetworkDriver.FreeNetwork', () => ({})],
      ['/IpamDriver.GetCapabilities', () => ipam.getCapabilities()],
      ['/IpamDriver.GetDefaultAddressSpaces', () => ipam.getDefaultAddressSpaces()],
      ['/IpamDriver.RequestPool', (b) => ipam.requestPool(b)],
      ['/IpamDriver.ReleasePool', (b) => ipam.releasePool(b)],
      ['/IpamDriver.RequestAddress', (b) => ipam.requestAddress(b)],
      ['/IpamDriver.ReleaseAddress', (b) => ipam.releaseAddress(b)],
    ]);
  }

  async listen(): Promise<void> {
    await claimSocketPath(this.socket);
    mkdirSync(join(this.socket, '..'), { recursive: true });
    const server = createServer((req, res) => void this.#handle(req, res));
    // dockerd's plugin client reuses idle connections and, when one was closed under it, retries
    // the call with the body already consumed (an empty request): never close them from this side.
    server.keepAliveTimeout = 0;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socket, () => resolve());
    });
    chmodSync(this.socket, 0o660);
    this.#server = server;
    this.#log.info(`Docker network and IPAM plugin "${PLUGIN_NAME}" on ${this.socket}`);
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections?.();
    releaseSocketPath(this.socket);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    const errorField = path.startsWith('/IpamDriver.') ? 'Error' : 'Err';
    const send = (status: number, payload: object) => {
      const text = JSON.stringify(payload);
      res.writeHead(status, { 'Content-Type': PLUGIN_MEDIA_TYPE, 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    const handler = this.#routes.get(path);
    if (req.method !== 'POST' || !handler) {
      req.resume();
      return send(404, { [errorField]: `${req.method} ${path.slice(0, 100)} is not a bpfnet plugin call` });
    }
    let parsed: unknown;
    try {
      parsed = await readJson(req);
    } catch (err) {
      return send(200, { [errorField]: (err as Error).message });
    }
    const t0 = Date.now();
    try {
      const out = await handler(parsed);
      this.#log.debug(`docker plugin ${path} in ${Date.now() - t0} ms`, { request: JSON.stringify(parsed).slice(0, 2000) });
      send(200, out);
    } catch (err) {
      const known = err instanceof PluginError || err instanceof ServiceError;
      const msg = (err as Error).message;
      if (known) this.#log.warn(`docker plugin ${path} refused: ${msg}`, { request: JSON.stringify(parsed).slice(0, 2000) });
      else this.#log.error(`docker plugin ${path} failed: ${(err as Error).stack ?? msg}`);
      send(200, { [errorField]: msg });
    }
  }
}

/** The request body as JSON (empty: {}), at most MAX_BODY bytes. */
function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new PluginError(`request body larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (text === '') return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new PluginError('request body is not valid JSON'));
      }
    });
  });
}
