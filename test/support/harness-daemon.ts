// A daemon a test drives through a harness script (test/support/*.mjs): requests as JSON lines on
// its stdin, one JSON answer per line on its stdout (`{"ready":true}` first, then each answer with
// the request's seq), and its API socket for the CLI.
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Lab } from '../../src/lab/lab.js';
import { cliPath } from '../../src/paths.js';
import { run } from '../../src/system/exec.js';
import type { Netns } from '../../src/system/ip.js';

export interface HarnessAnswer<R = unknown> {
  seq: number;
  ok: boolean;
  result?: R | null;
  kind?: string;
  message?: string;
}

export class HarnessDaemon<R = unknown> {
  #seq = 0;
  readonly #waiting = new Map<number, (a: HarnessAnswer<R>) => void>();
  /** What the daemon wrote to stderr so far. */
  log = '';

  private constructor(
    readonly child: ChildProcess,
    readonly socket: string,
  ) {}

  /** Spawns `script` in ns with flags (its socket among them); resolves once it is ready. `what` names it if it exits first. */
  static async start<R = unknown>(lab: Lab, ns: Netns, script: string, flags: { socket: string } & Record<string, unknown>, what: string): Promise<HarnessDaemon<R>> {
    const child = lab.spawn(ns, process.execPath, [script, JSON.stringify(flags)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const d = new HarnessDaemon<R>(child, flags.socket);
    child.stderr?.on('data', (b: Buffer) => (d.log += b.toString()));
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        const msg = JSON.parse(line) as HarnessAnswer<R> & { ready?: boolean };
        if (msg.ready) return resolve();
        d.#waiting.get(msg.seq)?.(msg);
        d.#waiting.delete(msg.seq);
      });
      child.once('exit', (code) => reject(new Error(`${what} exited (${code}):\n${d.log}`)));
    });
    return d;
  }

  /** Sends one request and resolves with its answer, failed or not. */
  call(op: string, args: unknown): Promise<HarnessAnswer<R>> {
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      this.#waiting.set(seq, resolve);
      this.child.stdin!.write(JSON.stringify({ seq, op, args }) + '\n');
    });
  }

  /** The bpfnet CLI against this daemon's socket. */
  cli(...args: string[]): Promise<string> {
    return run(process.execPath, [cliPath, '-H', `unix://${this.socket}`, ...args]);
  }
}
