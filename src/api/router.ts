/**
 * A small HTTP router for the Engine API: optional /vX.Y prefix checked against the supported
 * range, path patterns with {params}, JSON bodies, and errors mapped to moby's statuses.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isUtf8 } from 'node:buffer';
import { ServiceError, statusOf } from '../errors.js';
import { checkJsonDepth, JSON_LIMITS } from './validate.js';

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

/** Bodies larger than the limit are still read, up to this, so the client sees the answer rather than a reset. */
const DRAIN_LIMIT = 64 * 1024 * 1024;

async function tooLarge(req: IncomingMessage, size: number): Promise<never> {
  const message = `request body too large: more than ${JSON_LIMITS.maxBytes} bytes`;
  if (size <= DRAIN_LIMIT && !req.readableEnded) {
    await new Promise<void>((resolve) => {
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > DRAIN_LIMIT) {
          req.off('data', onData);
          req.destroy();
          resolve();
        }
      };
      req.on('data', onData);
      req.once('end', () => resolve());
      req.once('close', () => resolve());
      req.once('error', () => resolve());
      req.resume();
    });
  }
  throw new ServiceError('invalid', message);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > JSON_LIMITS.maxBytes) return tooLarge(req, 0);
  const chunks: Buffer[] = [];
  let size = 0;
  // Leaving this loop early must not destroy the request: tooLarge() reads on.
  for await (const chunk of req.iterator({ destroyOnReturn: false })) {
    size += (chunk as Buffer).length;
    if (size > JSON_LIMITS.maxBytes) return tooLarge(req, size);
    chunks.push(chunk as Buffer);
  }
  const bytes = Buffer.concat(chunks);
  const text = bytes.toString('utf8');
  if (text.trim() === '') return {};
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new ServiceError('invalid', `unsupported Content-Type header (${JSON.stringify(type.slice(0, 64))}): must be 'application/json'`);
  // toString() would replace invalid UTF-8 silently: refuse it instead.
  if (!isUtf8(bytes)) throw new ServiceError('invalid', 'invalid JSON: the body is not valid UTF-8');
  checkJsonDepth(text);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ServiceError('invalid', `invalid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}

/** A path segment decoded, or undefined when its percent-escapes are not UTF-8. */
function decodeSegment(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** Splits a request target into its path and query without URL's host parsing ("//x" is a path here). */
function splitTarget(target: string): { path: string; query: URLSearchParams } {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  return { path, query: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)) };
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
    const target = splitTarget(raw.url ?? '/');
    let path = target.path;
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
      const params: Record<string, string> = {};
      for (const [i, n] of route.names.entries()) {
        const value = decodeSegment(match[i + 1]);
        if (value === undefined) return sendError(res, 400, `invalid path: ${n} is not valid percent-encoded UTF-8`);
        params[n] = value;
      }
      const req: Request = { method, path, version, params, query: target.query, raw, body: () => readBody(raw) };
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
