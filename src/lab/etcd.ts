/**
 * One real etcd 3.4 server inside a lab namespace (Debian's etcd-server; nothing starts it
 * for us). Clients on the lab's underlay reach it at http://IP:PORT; the test process, which
 * stays in the root namespace, reaches it through a unix socket in the lab's scratch
 * directory, so no traffic ever leaves the lab. Auto-compaction is on (revision mode) so a
 * long-running lab keeps a bounded history, as a deployment should.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { run } from '../system/exec.js';
import type { Netns } from '../system/ip.js';
import type { Lab } from './lab.js';

export interface LabEtcdOptions {
  /** Namespace etcd runs in. */
  ns: Netns;
  /** Address in ns to serve clients on. */
  ip: string;
  port?: number;
  /** --auto-compaction-retention in revisions (default 1000): history kept for watches to resume from. */
  compactionRetention?: number;
  name?: string;
}

export class LabEtcd {
  readonly lab: Lab;
  readonly opts: Required<LabEtcdOptions>;
  readonly dir: string;
  #child?: ChildProcess;
  #log = '';

  private constructor(lab: Lab, opts: LabEtcdOptions) {
    this.lab = lab;
    this.opts = { port: 2379, compactionRetention: 1000, name: 'etcd', ...opts };
    this.dir = join(lab.tmpDir(), this.opts.name);
    mkdirSync(this.dir, { recursive: true });
  }

  static async start(lab: Lab, opts: LabEtcdOptions): Promise<LabEtcd> {
    const e = new LabEtcd(lab, opts);
    await e.start();
    return e;
  }

  /** The --cluster-store value daemons in the lab use. */
  get storeUrl(): string {
    return `etcd://${this.opts.ip}:${this.opts.port}`;
  }

  /** etcd3 `hosts` for a client in the root namespace (the unix socket). */
  get socketHost(): string {
    return `unix://${this.#socketPath}`;
  }

  get #socketPath(): string {
    // etcd wants host:port in a unix URL and makes the file under its working directory with that name.
    return join(this.dir, `client.sock:${this.opts.port}`);
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get log(): string {
    return this.#log;
  }

  async start(): Promise<void> {
    const { ip, port, compactionRetention, name } = this.opts;
    const peer = `http://127.0.0.1:${port + 1}`;
    const args = [
      '--name', name,
      '--data-dir', join(this.dir, 'data'),
      '--listen-client-urls', `http://${ip}:${port},unix://client.sock:${port}`,
      '--advertise-client-urls', `http://${ip}:${port}`,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `${name}=${peer}`,
      '--auto-compaction-mode', 'revision',
      '--auto-compaction-retention', String(compactionRetention),
      '--log-level', 'warn',
      '--logger', 'zap',
    ];
    await run('ip', ['-n', this.opts.ns.name, 'link', 'set', 'lo', 'up']);
    const child = this.lab.spawn(this.opts.ns, 'etcd', args, { cwd: this.dir });
    this.#child = child;
    child.stderr?.on('data', (d: Buffer) => (this.#log += d.toString()));
    child.stdout?.on('data', (d: Buffer) => (this.#log += d.toString()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`etcd in ${this.opts.ns.name} exited during start:\n${this.#log}`);
      if (existsSync(this.#socketPath) && (await this.#healthy())) return;
      if (Date.now() > deadline) throw new Error(`etcd in ${this.opts.ns.name} did not become ready within 20 s:\n${this.#log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async #healthy(): Promise<boolean> {
    const c = this.client({ deadlineMs: 1000 });
    try {
      await c.maintenance.status();
      return true;
    } catch {
      return false;
    } finally {
      c.close();
    }
  }

  /** A client in the root namespace (through the unix socket); the caller closes it. */
  client(opts: { deadlineMs?: number } = {}): Etcd3 {
    return new Etcd3({
      hosts: this.socketHost,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + (opts.deadlineMs ?? 5000) }),
    });
  }

  /** SIGTERM and wait (data stays: start() again is a restart). */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}
