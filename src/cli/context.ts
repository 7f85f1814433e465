/** What every command gets: the process around it and, on first use, a client for the daemon. */
import { Client, resolveHost } from './client.js';
import type { Io } from './io.js';
import { CLI_VERSION } from './version.js';

export class CliContext {
  readonly io: Io;
  readonly #host: () => string | undefined;
  readonly #connect: ((host: string | undefined) => Client) | undefined;
  #client: Client | undefined;

  /**
   * host: the -H value, read when the first request is made (after parsing). connect: how a
   * client is made (the daemon running a command for the thin client talks to itself).
   */
  constructor(io: Io, host: () => string | undefined, connect?: (host: string | undefined) => Client) {
    this.io = io;
    this.#host = host;
    this.#connect = connect;
  }

  /** Made lazily so a bad command line is reported before any connection is tried. */
  client(): Client {
    this.#client ??= this.#connect
      ? this.#connect(this.#host())
      : new Client(resolveHost(this.#host(), this.io.env), `bpfnet-cli/${CLI_VERSION}`);
    return this.#client;
  }

  print(text: string): void {
    this.io.stdout.write(text);
  }

  printErr(text: string): void {
    this.io.stderr.write(text);
  }
}
