/**
 * The resolver's sockets: UDP and TCP on port 53 of each address it is told to serve (the
 * gateways of the user-defined networks), in the daemon's own namespace. Sockets come and go
 * with sync(); an address that cannot be bound yet (its bridge is still being built) is retried.
 * Nothing a client sends can throw out of here: every handler call is guarded, TCP framing is
 * bounded (message size, queries in flight per connection, idle time, connections).
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import type { QueryContext } from './resolver.js';

/** Answers one query (null: send nothing). May be asynchronous (forwarding). */
export type QueryHandler = (query: Buffer, ctx: QueryContext) => Buffer | null | Promise<Buffer | null>;

export interface DnsLog {
  warn(msg: string): void;
  debug(msg: string): void;
}

export interface DnsServerOptions {
  readonly port?: number;
  readonly log?: DnsLog;
  /** TCP connections at most, over all addresses. */
  readonly maxTcpConnections?: number;
  /** A TCP connection with nothing to say for this long is closed, ms. */
  readonly tcpIdleMs?: number;
  /** Queries one TCP connection may have unanswered before it is closed. */
  readonly tcpPipeline?: number;
  /** Between attempts to bind an address that failed, ms. */
  readonly retryMs?: number;
}

const quiet: DnsLog = { warn: () => undefined, debug: () => undefined };

interface Listener {
  readonly udp: Socket;
  readonly tcp: Server;
}

export class DnsServer {
  readonly #handler: QueryHandler;
  readonly #port: number;
  readonly #log: DnsLog;
  readonly #tcpIdleMs: number;
  readonly #tcpPipeline: number;
  readonly #maxTcp: number;
  readonly #retryMs: number;
  readonly #listeners = new Map<string, Listener>();
  readonly #connections = new Set<TcpSocket>();
  #wanted = new Set<string>();
  #retry?: NodeJS.Timeout;
  #syncing: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(handler: QueryHandler, opts: DnsServerOptions = {}) {
    this.#handler = handler;
    this.#port = opts.port ?? 53;
    this.#log = opts.log ?? quiet;
    this.#tcpIdleMs = opts.tcpIdleMs ?? 10_000;
    this.#tcpPipeline = opts.tcpPipeline ?? 64;
    this.#maxTcp = opts.maxTcpConnections ?? 512;
    this.#retryMs = opts.retryMs ?? 500;
  }

  /** Addresses being served now. */
  get addresses(): string[] {
    return [...this.#listeners.keys()];
  }

  /** Serves exactly `addresses` (opening and closing sockets); resolves when done, also if some could not be bound yet. */
  sync(addresses: readonly string[]): Promise<void> {
    this.#wanted = new Set(addresses);
    const run = this.#syncing.then(() => this.#apply());
    this.#syncing = run.catch(() => undefined);
    return run;
  }

  async #apply(): Promise<void> {
    if (this.#closed) return;
    for (const [address, l] of this.#listeners) {
      if (this.#wanted.has(address)) continue;
      this.#listeners.delete(address);
      await closeListener(l);
    }
    let missing = false;
    for (const address of this.#wanted) {
      if (this.#listeners.has(address)) continue;
      try {
        this.#listeners.set(address, await this.#open(address));
      } catch (err) {
        missing = true;
        this.#log.warn(`dns: cannot listen on ${address}:${this.#port} yet (${(err as Error).message}); retrying`);
      }
    }
    clearTimeout(this.#retry);
    this.#retry = undefined;
    if (missing && !this.#closed) {
      this.#retry = setTimeout(() => void this.sync([...this.#wanted]), this.#retryMs);
      this.#retry.unref();
    }
  }

  async #open(address: string): Promise<Listener> {
    // An IPv6 gateway gets an IPv6-only socket (no mapped IPv4 on it: the IPv4 gateway has its own).
    const udp = createSocket({ type: isIP(address) === 6 ? 'udp6' : 'udp4', reuseAddr: false, ipv6Only: isIP(address) === 6 });
    udp.on('error', (err) => this.#log.warn(`dns: udp ${address}: ${err.message}`));
    udp.on('message', (msg, rinfo) => this.#serveUdp(udp, msg, rinfo.address, rinfo.port, address));
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      udp.once('error', fail);
      udp.bind({ address, port: this.#port, exclusive: true }, () => {
        udp.off('error', fail);
        resolve();
      });
    }).catch((err: Error) => {
      udp.close();
      throw err;
    });
    try {
      udp.setRecvBufferSize(4 * 1024 * 1024);
    } catch {
      /* capped by net.core.rmem_max: the default buffer still works */
    }
    const tcp = createServer((conn) => this.#serveTcp(conn, address));
    tcp.maxConnections = this.#maxTcp;
    tcp.on('error', (err) => this.#log.warn(`dns: tcp ${address}: ${err.message}`));
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: address, port: this.#port, exclusive: true }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      udp.close();
      throw err;
    }
    return { udp, tcp };
  }

  /** Runs the handler for one query, sends what it answers, then calls done(), whatever happened. */
  #call(query: Buffer, ctx: QueryContext, send: (out: Buffer) => void, done: () => void = () => undefined): void {
    const fail = (err: unknown) => this.#log.debug(`dns: query from ${ctx.source} failed: ${(err as Error)?.message ?? err}`);
    let result: Buffer | null | Promise<Buffer | null>;
    try {
      result = this.#handler(query, ctx);
    } catch (err) {
      fail(err);
      done();
      return;
    }
    if (result instanceof Promise) {
      result.then((out) => out && send(out), fail).finally(done);
      return;
    }
    try {
      if (result) send(result);
    } catch (err) {
      fail(err);
    }
    done();
  }

  #serveUdp(udp: Socket, msg: Buffer, source: string, port: number, local: string): void {
    this.#call(msg, { source, local, transport: 'udp' }, (out) => {
      try {
        // No callback: a failed send is the socket's 'error' event (logged), and the hot path stays lean.
        udp.send(out, port, source);
      } catch {
        /* the socket was closed meanwhile */
      }
    });
  }

  #serveTcp(conn: TcpSocket, local: string): void {
    this.#connections.add(conn);
    conn.on('close', () => this.#connections.delete(conn));
    conn.on('error', () => conn.destroy());
    conn.setTimeout(this.#tcpIdleMs, () => conn.destroy());
    conn.setNoDelay(true);
    const source = conn.remoteAddress ?? '';
    let buffered: Buffer = Buffer.alloc(0);
    let pending = 0;
    conn.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const size = buffered.readUInt16BE(0);
        if (buffered.length < 2 + size) break;
        const query = Buffer.from(buffered.subarray(2, 2 + size));
        buffered = buffered.subarray(2 + size);
        if (++pending > this.#tcpPipeline) {
          conn.destroy();
          return;
        }
        this.#call(
          query,
          { source, local, transport: 'tcp' },
          (out) => {
            if (conn.destroyed || out.length > 0xffff) return;
            const length = Buffer.alloc(2);
            length.writeUInt16BE(out.length);
            conn.write(Buffer.concat([length, out]));
          },
          () => pending--,
        );
      }
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    await this.#syncing;
    for (const conn of this.#connections) conn.destroy();
    const all = [...this.#listeners.values()];
    this.#listeners.clear();
    await Promise.all(all.map(closeListener));
  }
}

async function closeListener(l: Listener): Promise<void> {
  await Promise.all([
    new Promise<void>((resolve) => {
      try {
        l.udp.close(() => resolve());
      } catch {
        resolve();
      }
    }),
    new Promise<void>((resolve) => l.tcp.close(() => resolve())),
  ]);
}
