// A stand-in daemon for CLI tests: an HTTP server on a temporary unix socket that records every
// request and answers from per-test routes, and a runner that executes one bpfnet command line
// in-process against it with captured stdout/stderr.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { Io } from '../../src/cli/io.js';
import { runCli, type CliDeps } from '../../src/cli/program.js';

export interface RecordedRequest {
  method: string;
  /** Path without the query. */
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** The body exactly as sent. */
  body: string;
}

type Handler = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;

export class FakeDaemon {
  readonly requests: RecordedRequest[] = [];
  readonly socketPath: string;
  readonly #dir: string;
  readonly #server: Server;
  readonly #routes: Array<{ method: string; path: string | RegExp; handler: Handler }> = [];

  private constructor(dir: string, server: Server) {
    this.#dir = dir;
    this.socketPath = join(dir, 'bpfnet.sock');
    this.#server = server;
  }

  static async start(): Promise<FakeDaemon> {
    const dir = mkdtempSync(join(tmpdir(), 'bpfnet-cli-'));
    let daemon: FakeDaemon | undefined;
    const server = createServer((req, res) => void daemon!.#handle(req, res));
    daemon = new FakeDaemon(dir, server);
    await new Promise<void>((resolve) => server.listen(daemon!.socketPath, resolve));
    return daemon;
  }

  get host(): string {
    return `unix://${this.socketPath}`;
  }

  on(method: string, path: string | RegExp, handler: Handler): this {
    this.#routes.unshift({ method, path, handler });
    return this;
  }

  /** Answers with a JSON body (or an empty one when body is undefined). */
  reply(method: string, path: string | RegExp, status: number, body?: unknown): this {
    return this.on(method, path, (_req, res) => {
      if (body === undefined) {
        res.writeHead(status).end();
      } else {
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
      }
    });
  }

  /** Answers with an error as the daemon sends them. */
  fail(method: string, path: string | RegExp, status: number, message: string): this {
    return this.reply(method, path, status, { message });
  }

  /** Answers with NDJSON lines, then ends. */
  stream(method: string, path: string | RegExp, lines: unknown[]): this {
    return this.on(method, path, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      for (const line of lines) res.write(`${JSON.stringify(line)}\n`);
      res.end();
    });
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://bpfnet');
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    };
    this.requests.push(recorded);
    const route = this.#routes.find(
      (r) => r.method === recorded.method && (typeof r.path === 'string' ? r.path === recorded.path : r.path.test(recorded.path)),
    );
    if (!route) {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: 'page not found' }));
      return;
    }
    await route.handler(recorded, res);
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Lines the user types (stdin ends after them). */
  stdin?: string;
  env?: Record<string, string | undefined>;
  /** The clock, in ms since the epoch. */
  now?: number;
  deps?: CliDeps;
  /** Receives the Ctrl-C trigger once the command listens for it. */
  onInterruptListener?: (interrupt: () => void) => void;
}

/** Runs `bpfnet <argv>` in-process, talking to daemon (when given) through BPFNET_HOST. */
export async function bpfnet(argv: string[], daemon?: FakeDaemon, options: RunOptions = {}): Promise<RunResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const io: Io = {
    stdout,
    stderr,
    stdin: Readable.from(options.stdin === undefined ? [] : [options.stdin]),
    env: { ...(daemon ? { BPFNET_HOST: daemon.host } : {}), ...options.env },
    now: () => options.now ?? Date.parse('2026-11-22T12:00:00Z'),
    onInterrupt(listener) {
      options.onInterruptListener?.(listener);
      return () => undefined;
    },
  };
  const code = await runCli(argv, io, options.deps);
  await new Promise((resolve) => setImmediate(resolve));
  return { code, stdout: out, stderr: err };
}
