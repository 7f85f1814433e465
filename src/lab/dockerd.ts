/**
 * A real dockerd confined to a lab's simulated host (toolchain.md's recipe): its own mount
 * namespace (unshare -m) with a tmpfs over /run/docker, so its exec root, netns files and
 * plugin directory are private — the plugin directory is a lab directory bound there, where a
 * bpfnet daemon's plugin socket sits — the lab host's network namespace, data and exec roots
 * under the lab's scratch directory, the vfs storage driver, and no bridge or iptables of its
 * own unless asked (the "docker" bench setup). Tests and the benchmark use it.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runRaw, stop, type RunResult } from '../system/exec.js';
import { buildBusyboxTarball } from './busybox-image.js';
import type { Lab } from './lab.js';

/** The image the suites run, imported offline from Debian's static busybox. */
export const BUSYBOX_IMAGE = 'busybox:local';

export interface LabDockerdOptions {
  /** Distinguishes several dockerds in one lab (default "docker"). */
  name?: string;
  /** Keep containers running while dockerd is down (--live-restore). */
  liveRestore?: boolean;
  /** Docker's own bridge and iptables inside the lab host (the "docker" bench setup), --userland-proxy=false. */
  ownBridge?: boolean;
  extraArgs?: string[];
}

export class LabDockerd {
  readonly lab: Lab;
  readonly opts: LabDockerdOptions;
  readonly dir: string;
  readonly socket: string;
  /** The lab directory dockerd sees as /run/docker/plugins: a plugin's socket goes here. */
  readonly pluginDir: string;
  /** Unique per lab: a leftover shim names it, and another lab's dockerd has its own. */
  readonly execRoot: string;
  #child?: ChildProcess;
  #holder?: ChildProcess;
  #log = '';

  constructor(lab: Lab, opts: LabDockerdOptions = {}) {
    this.lab = lab;
    this.opts = opts;
    this.dir = join(lab.tmpDir(), opts.name ?? 'docker');
    this.socket = join(this.dir, 'docker.sock');
    this.pluginDir = join(this.dir, 'plugins');
    this.execRoot = `/run/docker/${lab.prefix}-${opts.name ?? 'docker'}`;
    mkdirSync(this.pluginDir, { recursive: true });
  }

  static async start(lab: Lab, opts: LabDockerdOptions = {}): Promise<LabDockerd> {
    const d = new LabDockerd(lab, opts);
    await d.start();
    return d;
  }

  get log(): string {
    return this.#log;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async start(): Promise<void> {
    const args = [
      'dockerd',
      '--data-root', join(this.dir, 'data'),
      '--exec-root', this.execRoot,
      '-H', `unix://${this.socket}`,
      '--pidfile', join(this.dir, 'dockerd.pid'),
      '--storage-driver', 'vfs',
      '--exec-opt', 'native.cgroupdriver=cgroupfs',
      ...(this.opts.ownBridge ? ['--iptables=true', '--ip-forward=false', '--userland-proxy=false'] : ['--iptables=false', '--ip-forward=false', '--bridge=none']),
      ...(this.opts.liveRestore ? ['--live-restore'] : []),
      ...(this.opts.extraArgs ?? []),
    ];
    mkdirSync(join(this.dir, 'data'), { recursive: true });
    const mountNs = await this.#mountNamespace();
    const script = ['ulimit -n 20000', `exec ${args.map((a) => `'${a}'`).join(' ')}`].join('\n');
    const child = this.lab.spawn(this.lab.host, 'nsenter', [`--mount=${mountNs}`, '--', 'sh', '-c', script]);
    this.#child = child;
    child.stdout?.on('data', (d: Buffer) => (this.#log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.#log += d.toString()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`dockerd exited during start (${child.exitCode ?? child.signalCode}):\n${this.#log.slice(-3000)}`);
      if (existsSync(this.socket) && (await this.docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5000 })).code === 0) return;
      if (Date.now() > deadline) throw new Error(`dockerd did not answer on ${this.socket} within 60 s:\n${this.#log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * dockerd's mount namespace: a private tmpfs over /run/docker (exec root, netns files) with our
   * plugin directory bound at /run/docker/plugins. A holder process keeps it (and so the state
   * of running containers) across dockerd restarts, as /run survives a restart on a real host.
   */
  async #mountNamespace(): Promise<string> {
    if (this.#holder && this.#holder.exitCode === null && this.#holder.signalCode === null) return `/proc/${this.#holder.pid}/ns/mnt`;
    const ready = join(this.dir, 'mounts-ready');
    rmSync(ready, { force: true });
    const script = [
      'set -e',
      'mkdir -p /run/docker',
      'mount -t tmpfs -o mode=0711 bpfnet-lab /run/docker',
      'mkdir -p /run/docker/plugins',
      `mount --bind '${this.pluginDir}' /run/docker/plugins`,
      `touch '${ready}'`,
      'exec sleep 2147483647',
    ].join('\n');
    const holder = this.lab.spawn(this.lab.host, 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', script]);
    this.#holder = holder;
    let err = '';
    holder.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const deadline = Date.now() + 10_000;
    while (!existsSync(ready)) {
      if (holder.exitCode !== null || Date.now() > deadline) throw new Error(`could not set up dockerd's mount namespace: ${err || 'timed out'}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return `/proc/${holder.pid}/ns/mnt`;
  }

  /** The docker CLI against this dockerd; resolves with its status and output. */
  docker(args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
    return runRaw('docker', ['-H', `unix://${this.socket}`, ...args], { timeoutMs: opts.timeoutMs ?? 60_000, input: opts.input, env: this.#env() });
  }

  /** The docker CLI; rejects with its stderr on a non-zero status, resolves with stdout trimmed. */
  async run(...args: string[]): Promise<string> {
    const r = await this.docker(args);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
    return r.stdout.trim();
  }

  /** docker-compose (1.29) against this dockerd, for the compose file at `file` as project `project`. */
  compose(file: string, project: string, args: readonly string[], timeoutMs = 120_000): Promise<RunResult> {
    return runRaw('docker-compose', ['-f', file, '-p', project, ...args], { timeoutMs, env: { ...this.#env(), DOCKER_HOST: `unix://${this.socket}`, COMPOSE_INTERACTIVE_NO_CLI: '1' } });
  }

  /** The clients' configuration stays in the lab (never root's ~/.docker). */
  #env(): NodeJS.ProcessEnv {
    return { ...process.env, DOCKER_CONFIG: join(this.dir, 'client'), HOME: this.dir };
  }

  /** Imports the offline busybox image as BUSYBOX_IMAGE (once per dockerd data root). */
  async importBusybox(): Promise<void> {
    if ((await this.docker(['image', 'inspect', BUSYBOX_IMAGE])).code === 0) return;
    const tar = join(this.dir, 'busybox.tar');
    await buildBusyboxTarball(tar);
    await this.run('import', '--change', 'CMD ["/bin/sh"]', tar, BUSYBOX_IMAGE);
  }

  /** A running container's network namespace as a path the lab can enter. */
  async netnsPath(container: string): Promise<string> {
    const pid = await this.run('inspect', '-f', '{{.State.Pid}}', container);
    if (!/^[1-9]\d*$/.test(pid)) throw new Error(`container ${container} is not running (pid "${pid}")`);
    return `/proc/${pid}/ns/net`;
  }

  /** SIGTERM and wait (with --live-restore the containers keep running). */
  async stopDaemon(): Promise<void> {
    if (this.#child) await stop(this.#child, 20_000);
  }

  async restart(): Promise<void> {
    await this.stopDaemon();
    await this.start();
  }

  /** Removes every container, stops dockerd and ends any container shim it left (by pid). */
  async destroy(): Promise<void> {
    if (this.#child && this.#child.exitCode === null && this.#child.signalCode === null) {
      const ids = (await this.docker(['ps', '-aq'], { timeoutMs: 20_000 })).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) await this.docker(['rm', '-f', ...ids], { timeoutMs: 60_000 });
      await this.stopDaemon();
    }
    if (this.#holder) await stop(this.#holder);
    for (const pid of this.#leftovers()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone already */
      }
    }
  }

  /** Processes this dockerd started that outlived it (its containerd, shims): they name our data root or exec root, unique to the lab. */
  #leftovers(): number[] {
    const out: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
        if (cmd.includes(this.dir) || cmd.includes(`${this.execRoot}/`)) out.push(Number(entry));
      } catch {
        /* exited meanwhile */
      }
    }
    return out;
  }
}
