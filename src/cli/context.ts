/** What every command gets: the process around it and, on first use, a client for the daemon. */
import { Client, resolveHost } from './client.js';
import type { Io } from './io.js';
import { CLI_VERSION } from './version.js';

export class CliContext {
  readonly io: Io;
  readonly #host: () => string | undefined;
  #client: Client | undefined;

  /** host: the -H value, read when the first request is made (after parsing). */
  constructor(io: Io, host: () => string | undefined) {
    this.io = io;
    this.#host = host;
  }

  /** Made lazily so a bad command line is reported before any connection is tried. */
  client(): Client {
    this.#client ??= new Client(resolveHost(this.#host(), this.io.env), `bpfnet-cli/${CLI_VERSION}`);
    return this.#client;
  }

  print(text: string): void {
    this.io.stdout.write(text);
  }

  printErr(text: string): void {
    this.io.stderr.write(text);
  }
}
