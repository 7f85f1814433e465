/**
 * A small HTTP router for the Engine API: optional /vX.Y prefix checked against the supported
 * range, path patterns with {params}, JSON bodies, and errors mapped to moby's statuses.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ServiceError, statusOf } from '../errors.js';

export const API_VERSION = '1.50';
export const MIN_API_VERSION = '1.24';

export interface Request {
  method: string;
  path: string;
  /** The API version the client asked for (from the path prefix), or the current one. */
  version: string;
  params: Record<string, string>;
  query: URLSearchParams;
  raw: IncomingMessage;
  /** Parsed JSON body ({} when empty). */
  body(): Promise<unknown>;
}

export type Handler = (req: Request, res: ServerResponse) => Promise<void> | void;

interface Route {
  method: string;
  pattern: RegExp;
  names: string[];
  handler: Handler;
}

function compareVersions(a: string, b: string): number {
  const [am, an] = a.split('.').map(Number);
  const [bm, bn] = b.split('.').map(Number);
  return am !== bm ? am - bm : an - bn;
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendError(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { message });
}

export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status, { 'Content-Length': 0 });
  res.end();
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 16 * 1024 * 1024) throw new ServiceError('invalid', 'request body too large');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new ServiceError('invalid', `unsupported Content-Type header (${JSON.stringify(type)}): must be 'application/json'`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ServiceError('invalid', `invalid JSON: ${(err as Error).message}`);
  }
}

export class Router {
  readonly #routes: Route[] = [];
  readonly #headers: Record<string, string>;

  constructor(serverHeader: string) {
    this.#headers = { Server: serverHeader, 'Api-Version': API_VERSION, Ostype: 'linux' };
  }

  on(method: string, path: string, handler: Handler): this {
    const names: string[] = [];
    const pattern = new RegExp(`^${path.replace(/\{(\w+)\}/g, (_, n: string) => (names.push(n), '([^/]+)'))}$`);
    this.#routes.push({ method, pattern, names, handler });
    return this;
  }

  async handle(raw: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [k, v] of Object.entries(this.#headers)) res.setHeader(k, v);
    const url = new URL(raw.url ?? '/', 'http://bpfnet');
    let path = url.pathname;
    let version = API_VERSION;
    const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(path);
    if (m) {
      version = m[1];
      path = m[2];
      if (compareVersions(version, MIN_API_VERSION) < 0) {
        sendError(res, 400, `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
        return;
      }
      if (compareVersions(version, API_VERSION) > 0) {
        sendError(res, 400, `client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
        return;
      }
    }
    const method = raw.method ?? 'GET';
    let pathMatched = false;
    for (const route of this.#routes) {
      const match = route.pattern.exec(path);
      if (!match) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params = Object.fromEntries(route.names.map((n, i) => [n, decodeURIComponent(match[i + 1])]));
      const req: Request = { method, path, version, params, query: url.searchParams, raw, body: () => readBody(raw) };
      try {
        await route.handler(req, res);
      } catch (err) {
        if (err instanceof ServiceError) sendError(res, statusOf[err.kind], err.message);
        else sendError(res, 500, err instanceof Error ? err.message : String(err));
      }
      return;
    }
    if (pathMatched) sendError(res, 405, `method ${method} not allowed on ${path}`);
    else sendError(res, 404, `page not found`);
  }
}
