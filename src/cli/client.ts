/**
 * HTTP/1.1 over the daemon's unix socket: JSON requests, NDJSON streams, and the daemon's
 * `{"message": ...}` errors turned into ApiError the way the docker client turns them.
 */
import { request, STATUS_CODES, type IncomingMessage } from 'node:http';
import { isAbsolute } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { UsageError } from './errors.js';

export const DEFAULT_HOST = 'unix:///run/bpfnet.sock';

export interface DaemonAddress {
  readonly socketPath: string;
  /** As the user would write it: unix:///run/bpfnet.sock */
  readonly url: string;
}

/** `unix:///path` (or a bare absolute path): bpfnet's daemon listens on unix sockets only. */
export function parseHost(host: string): DaemonAddress {
  const path = host.startsWith('unix://') ? host.slice('unix://'.length) : isAbsolute(host) ? host : undefined;
  if (!path) throw new UsageError(`invalid host "${host}": bpfnet speaks to its daemon over unix://PATH only`);
  return { socketPath: path, url: `unix://${path}` };
}

/** -H wins over BPFNET_HOST, which wins over the default socket. */
export function resolveHost(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): DaemonAddress {
  return parseHost(flag || env.BPFNET_HOST || DEFAULT_HOST);
}

/** An error status from the daemon. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    /** False when the daemon sent no body: docker prints those without its prefix. */
    readonly fromDaemon = true,
  ) {
    super(message);
  }

  /** The line docker prints on stderr. */
  get display(): string {
    return this.fromDaemon ? `Error response from daemon: ${this.message}` : this.message;
  }
}

/** The text docker prints on stderr for an error. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.display;
  return err instanceof Error ? err.message : String(err);
}

export class DaemonUnreachableError extends Error {
  override readonly name = 'DaemonUnreachableError';
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface CallOptions {
  readonly query?: Query;
  /** Sent as JSON. */
  readonly body?: unknown;
  /** Ends a stream quietly (the caller asked to stop). */
  readonly signal?: AbortSignal;
}

export class Client {
  readonly #address: DaemonAddress;
  readonly #userAgent: string;

  readonly #ended: AbortSignal | undefined;

  /** ended: when it aborts, every request of this client ends (the daemon's thin-client commands, when their client left). */
  constructor(address: DaemonAddress, userAgent = 'bpfnet-cli', ended?: AbortSignal) {
    this.#address = address;
    this.#userAgent = userAgent;
    this.#ended = ended;
  }

  get address(): DaemonAddress {
    return this.#address;
  }

  /** The decoded JSON body; a 2xx with no body is docker's "EOF" error. */
  async json<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
    const text = await this.text(method, path, options);
    if (text.trim() === '') throw new Error('EOF');
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new Error(`invalid JSON from the daemon for ${method} ${path}: ${text.slice(0, 200)}`);
    }
  }

  /** The body as sent, for output that must keep the daemon's bytes (inspect). */
  async text(method: string, path: string, options: CallOptions = {}): Promise<string> {
    const res = await this.#open(method, path, options);
    return readAll(res);
  }

  /** A request whose reply body does not matter. */
  async send(method: string, path: string, options: CallOptions = {}): Promise<void> {
    await this.text(method, path, options);
  }

  /** Calls onValue for each JSON line of the reply, in order, until the daemon or the signal ends it. */
  async stream(
    method: string,
    path: string,
    options: CallOptions,
    onValue: (value: unknown) => void | Promise<void>,
  ): Promise<void> {
    let res: IncomingMessage;
    try {
      res = await this.#open(method, path, options);
    } catch (err) {
      if (options.signal?.aborted) return;
      throw err;
    }
    const decoder = new StringDecoder('utf8');
    let pending = '';
    const emitLines = async (final: boolean) => {
      const lines = pending.split('\n');
      pending = final ? '' : (lines.pop() ?? '');
      for (const line of lines) {
        if (line.trim() === '') continue;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          throw new Error(`invalid stream line from the daemon: ${line.slice(0, 200)}`);
        }
        await onValue(value);
      }
    };
    try {
      for await (const chunk of res) {
        pending += decoder.write(chunk as Buffer);
        await emitLines(false);
      }
      pending += decoder.end();
      await emitLines(true);
    } catch (err) {
      if (options.signal?.aborted) return;
      throw err;
    }
  }

  #open(method: string, path: string, options: CallOptions): Promise<IncomingMessage> {
    const url = withQuery(path, options.query);
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers: Record<string, string | number> = { 'User-Agent': this.#userAgent };
    if (payload) headers['Content-Type'] = 'application/json';
    if (payload || method === 'POST' || method === 'PUT') headers['Content-Length'] = payload?.length ?? 0;

    return new Promise((resolve, reject) => {
      // agent:false: one connection per request, closed with it, so nothing keeps the CLI alive.
      const req = request({ socketPath: this.#address.socketPath, method, path: url, headers, agent: false });
      const signal = options.signal && this.#ended ? AbortSignal.any([options.signal, this.#ended]) : (options.signal ?? this.#ended);
      const onAbort = () => req.destroy();
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) req.destroy();
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (signal?.aborted) return reject(new Error('aborted'));
        reject(this.#connectionError(err));
      });
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status < 400) return resolve(res);
        readAll(res).then(
          (body) => reject(errorFromResponse(status, res.headers['content-type'], body, `${this.#address.url}${url}`)),
          reject,
        );
      });
      req.end(payload);
    });
  }

  #connectionError(err: NodeJS.ErrnoException): Error {
    const url = this.#address.url;
    switch (err.code) {
      case 'ENOENT':
      case 'ECONNREFUSED':
      case 'ENOTSOCK':
        return new DaemonUnreachableError(`Cannot connect to the bpfnet daemon at ${url}. Is the daemon running?`);
      case 'EACCES':
      case 'EPERM':
        return new DaemonUnreachableError(
          `permission denied while trying to connect to the bpfnet daemon socket at ${url}: ${err.message}`,
        );
      default:
        return new Error(`error during connect to ${url}: ${err.message}`);
    }
  }
}

/** A reference (name, id, prefix) as one path segment. */
export function segment(ref: string): string {
  return encodeURIComponent(ref);
}

function withQuery(path: string, query: Query | undefined): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** What the docker client makes of an error reply (see reference/engine-api-networks.md). */
export function errorFromResponse(status: number, contentType: string | undefined, body: string, route: string): ApiError {
  const statusText = STATUS_CODES[status] ?? 'Unknown';
  if (body.trim() === '') {
    return new ApiError(
      status,
      `request returned ${status} ${statusText} for API route and version ${route}, check if the server supports the requested API version`,
      false,
    );
  }
  if (contentType?.includes('application/json')) {
    let message: unknown;
    try {
      message = (JSON.parse(body) as { message?: unknown })?.message;
    } catch {
      return new ApiError(status, body.trim());
    }
    if (typeof message === 'string' && message !== '') return new ApiError(status, message);
    return new ApiError(status, `API returned a ${status} (${statusText}) but provided no error-message`);
  }
  return new ApiError(status, body.trim());
}
