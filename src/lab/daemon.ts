/**
 * A bpfnet daemon running inside a lab's simulated host: started through the real CLI
 * (`bpfnet daemon`) in the host namespace, with its own root, socket and instance name under
 * the lab's prefix, so the lab's teardown removes whatever it made. Tests, the demo and the
 * benchmark use this.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { cliPath, thinClientPath } from '../paths.js';
import { run, runRaw, type RunResult } from '../system/exec.js';
import { stop } from '../system/exec.js';
import { UPLINK, type Lab } from './lab.js';
import type { Netns } from '../system/ip.js';

export interface LabDaemonOptions {
  datapath: 'iptables' | 'ebpf';
  /** Distinguishes several daemons in one lab (default "d"). */
  name?: string;
  extraArgs?: string[];
  /** Extra environment (e.g. BPFNET_FAILPOINTS). */
  env?: Record<string, string>;
  /** The namespace the daemon runs in (default the lab's host): one of a cluster lab's hosts. */
  host?: Netns;
  /** Its uplink interface there (default UPLINK.hostIf). */
  uplink?: string;
  /** How long start() waits for the socket (default 30 s; several daemons starting at once on 2 vCPUs take longer). */
  startTimeoutMs?: number;
}

export class LabDaemon {
  readonly lab: Lab;
  readonly opts: LabDaemonOptions;
  readonly root: string;
  readonly socket: string;
  readonly instance: string;
  #child?: ChildProcess;
  #log = '';

  constructor(lab: Lab, opts: LabDaemonOptions) {
    this.lab = lab;
    this.opts = opts;
    const name = opts.name ?? 'd';
    this.root = join(lab.tmpDir(), `${name}-root`);
    this.socket = join(lab.tmpDir(), `${name}.sock`);
    this.instance = `${lab.prefix}${name}`;
  }

  static async start(lab: Lab, opts: LabDaemonOptions): Promise<LabDaemon> {
    const d = new LabDaemon(lab, opts);
    await d.start();
    return d;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** What the daemon logged so far. */
  get log(): string {
    return this.#log;
  }

  async start(): Promise<void> {
    const args = [
      // Node's own flags for the daemon (e.g. --cpu-prof --cpu-prof-dir=DIR, which NODE_OPTIONS refuses).
      ...(process.env.BPFNET_LAB_DAEMON_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      cliPath,
      'daemon',
      '--root',
      this.root,
      '--socket',
      this.socket,
      '--datapath',
      this.opts.datapath,
      '--uplink',
      this.opts.uplink ?? UPLINK.hostIf,
      '--instance',
      this.instance,
      ...(this.opts.extraArgs ?? []),
    ];
    const child = this.lab.spawn(this.opts.host ?? this.lab.host, process.execPath, args, { env: { ...process.env, ...(this.opts.env ?? {}) } });
    this.#child = child;
    child.stderr?.on('data', (d: Buffer) => (this.#log += d.toString()));
    child.stdout?.on('data', (d: Buffer) => (this.#log += d.toString()));
    const timeout = this.opts.startTimeoutMs ?? 60_000;
    const deadline = Date.now() + timeout;
    while (!(await this.#listening())) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`daemon exited during start (${child.exitCode ?? child.signalCode}):\n${this.#log}`);
      if (Date.now() > deadline) throw new Error(`daemon did not start listening on ${this.socket} within ${timeout / 1000} s:\n${this.#log}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  #listening(): Promise<boolean> {
    if (!existsSync(this.socket)) return Promise.resolve(false);
    return new Promise((resolve) => {
      const s = connect(this.socket);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  }

  /** SIGTERM and wait. */
  async stop(): Promise<void> {
    if (this.#child) await stop(this.#child, 10_000);
  }

  /** SIGKILL now, as a crash would. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  async restart(env?: Record<string, string>): Promise<void> {
    await this.stop();
    if (env !== undefined) this.opts.env = env;
    await this.start();
  }

  /**
   * Runs the bpfnet CLI against this daemon as a user does: the thin client once the bootstrap
   * has built it (the daemon runs the command; the Node CLI's output byte for byte, proven by
   * test/e2e/thin-client.test.ts), the Node CLI when the command reads stdin (the thin client
   * sends none) or before the build. Resolves with its exit code and output.
   */
  cli(args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
    const [file, argv] = this.#cliCommand(args, opts.input !== undefined);
    return runRaw(file, argv, { timeoutMs: opts.timeoutMs ?? 60_000, input: opts.input, env: { ...process.env, BPFNET_NODE: process.execPath } });
  }

  /** Runs the CLI and returns stdout; rejects with the CLI's stderr on a non-zero exit. */
  async bpfnet(...args: string[]): Promise<string> {
    const [file, argv] = this.#cliCommand(args, false);
    return run(file, argv, { env: { ...process.env, BPFNET_NODE: process.execPath } });
  }

  #cliCommand(args: readonly string[], readsStdin: boolean): [string, string[]] {
    const argv = ['-H', `unix://${this.socket}`, ...args];
    return !readsStdin && existsSync(thinClientPath) ? [thinClientPath, argv] : [process.execPath, [cliPath, ...argv]];
  }
}
