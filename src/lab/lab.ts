/**
 * A disposable lab of network namespaces: a simulated host with an uplink veth to an
 * external client namespace, plus whatever sandboxes a test adds. Everything carries the
 * lab's unique prefix, so tests, the demo and the benchmark never touch the root namespace
 * and can run side by side. destroy() removes all of it; a lab whose owner died is swept
 * by the next sweepStaleLabs().
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { type ChildProcess, type SpawnOptions } from 'node:child_process';
import { join } from 'node:path';
import { run, runRaw, start, stop, type RunOptions, type RunResult } from '../system/exec.js';
import { ensureAddress, ensureNetns, ensureVeth, ip, ipBatch, listNetns, removeNetns, setUp, type Netns } from '../system/ip.js';
import { writeSysctl } from '../system/sysctl.js';

const REGISTRY = '/run/bpfnet-labs';
const BPFFS = '/sys/fs/bpf';

/** Addresses of the uplink between the simulated host and the external namespace (RFC 2544 range). */
export const UPLINK = {
  hostIf: 'up0',
  externalIf: 'eth0',
  hostAddress: '198.18.0.1',
  externalAddress: '198.18.0.2',
  prefixLength: 24,
} as const;

/** The uplink's IPv6 addresses (ULA) where a lab carries IPv6 across it: the simulated host's and the external client's. */
export const UPLINK6 = { host: 'fd00:18::1', external: 'fd00:18::2', prefix: 64 } as const;

/** Gives the lab's uplink its IPv6 addresses and the host a default IPv6 route via the external side (before a daemon starts: it reads its uplink's addresses). */
export async function addUplink6(lab: Lab): Promise<void> {
  await lab.exec(lab.host, 'ip', ['-6', 'addr', 'add', `${UPLINK6.host}/${UPLINK6.prefix}`, 'dev', UPLINK.hostIf, 'nodad']);
  await lab.exec(lab.external, 'ip', ['-6', 'addr', 'add', `${UPLINK6.external}/${UPLINK6.prefix}`, 'dev', UPLINK.externalIf, 'nodad']);
  await lab.exec(lab.host, 'ip', ['-6', 'route', 'add', 'default', 'via', UPLINK6.external]);
}

interface RegistryRecord {
  owner: number;
  ownerStart: string;
  processes: Array<{ pid: number; start: string }>;
}

/** The kernel's start time of a process (field 22 of /proc/PID/stat): with the pid, an identity that survives pid reuse. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function isAlive(pid: number, startTime: string): boolean {
  return processStart(pid) === startTime;
}

/** A simulated LAN: a bridge in a switch namespace, and which namespace's interface is on which port. */
export interface Lan {
  switchNs: Netns;
  bridge: string;
  ports: Array<{ ns: string; ifname: string; port: string }>;
}

export interface LabOptions {
  /** Build the external namespace and uplink (default true). */
  uplink?: boolean;
}

export class Lab {
  readonly prefix: string;
  readonly host: Netns;
  readonly external: Netns;
  readonly #processes = new Set<ChildProcess>();
  #record: RegistryRecord;
  #destroyed = false;

  private constructor(prefix: string, host: Netns, external: Netns) {
    this.prefix = prefix;
    this.host = host;
    this.external = external;
    this.#record = { owner: process.pid, ownerStart: processStart(process.pid) ?? '', processes: [] };
  }

  /** Builds a new lab: host and external namespaces joined by the uplink veth. */
  static async create(opts: LabOptions = {}): Promise<Lab> {
    const prefix = `bnl${randomBytes(3).toString('hex')}`;
    const hostName = `${prefix}-host`;
    const extName = `${prefix}-ext`;
    const lab = new Lab(prefix, { name: hostName, path: `/run/netns/${hostName}` }, { name: extName, path: `/run/netns/${extName}` });
    lab.#save();
    try {
      // The prefix is new, so nothing exists yet: one `ip -batch` per step and namespace instead
      // of an `ip` process per command (a lab is made for every test file).
      await addNetns(hostName);
      if (opts.uplink === false) await ipBatch(lab.host, [['link', 'set', 'lo', 'up']]);
      else {
        await addNetns(extName);
        await ipBatch(lab.host, [
          ['link', 'set', 'lo', 'up'],
          ['link', 'add', 'name', UPLINK.hostIf, 'type', 'veth', 'peer', 'name', UPLINK.externalIf, 'netns', extName],
          ['addr', 'add', `${UPLINK.hostAddress}/${UPLINK.prefixLength}`, 'dev', UPLINK.hostIf],
          ['link', 'set', 'dev', UPLINK.hostIf, 'up'],
        ]);
        await ipBatch(lab.external, [
          ['link', 'set', 'lo', 'up'],
          ['addr', 'add', `${UPLINK.externalAddress}/${UPLINK.prefixLength}`, 'dev', UPLINK.externalIf],
          ['link', 'set', 'dev', UPLINK.externalIf, 'up'],
        ]);
        await ip(lab.host, ['route', 'add', 'default', 'via', UPLINK.externalAddress]);
      }
      await writeSysctl({ netnsPath: lab.host.path }, 'net.ipv4.ip_forward', '1');
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  /** Adds a bare namespace named PREFIX-name (a sandbox or an extra peer). */
  async addNamespace(name: string): Promise<Netns> {
    return ensureNetns(`${this.prefix}-${name}`);
  }

  /**
   * A simulated LAN outside the simulated host: a "switch" namespace holding a bridge, with the
   * host's uplink (UPLINK.hostIf, at hostAddress) as one port. Make the lab with
   * `{ uplink: false }`; add the LAN's router and clients with lanHost().
   */
  async addLan(opts: { hostAddress: string; gateway: string }): Promise<Lan> {
    const sw = await this.addNamespace('sw');
    await ip(sw, ['link', 'add', 'name', 'br0', 'type', 'bridge']);
    await ip(sw, ['link', 'set', 'dev', 'br0', 'addrgenmode', 'none', 'up']);
    const lan: Lan = { switchNs: sw, bridge: 'br0', ports: [] };
    await this.#plug(lan, this.host, UPLINK.hostIf);
    await ensureAddress(this.host, UPLINK.hostIf, opts.hostAddress);
    await ip(this.host, ['route', 'replace', 'default', 'via', opts.gateway]);
    return lan;
  }

  /** A namespace PREFIX-name on the LAN: its `eth0` is a switch port, with the given addresses (none: a bare port). */
  async lanHost(lan: Lan, name: string, addresses: readonly string[] = []): Promise<Netns> {
    const ns = await this.addNamespace(name);
    await this.#plug(lan, ns, 'eth0');
    for (const a of addresses) await ensureAddress(ns, 'eth0', a);
    return ns;
  }

  /** Joins ns:ifname to the switch; the switch-side port is named p<n> (tcpdump it to see the wire). */
  async #plug(lan: Lan, ns: Netns, ifname: string): Promise<void> {
    const port = `p${lan.ports.length}`;
    await ensureVeth(ns, ifname, lan.switchNs, port);
    await ip(lan.switchNs, ['link', 'set', 'dev', port, 'master', lan.bridge, 'up']);
    await setUp(ns, ifname);
    lan.ports.push({ ns: ns.name, ifname, port });
  }

  /** A namespace name for something else to create (the daemon's sandboxes), inside this lab's prefix. */
  name(suffix: string): string {
    return `${this.prefix}-${suffix}`;
  }

  /** A bpffs directory for this lab's pins. */
  pinDir(): string {
    const dir = join(BPFFS, this.prefix);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** A scratch directory for this lab's files. */
  tmpDir(): string {
    const dir = join('/tmp', this.prefix);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Runs a command inside ns (nsenter keeps /sys/fs/bpf visible, unlike `ip netns exec`); rejects unless it exits 0. */
  exec(ns: Netns, file: string, args: readonly string[], opts?: RunOptions): Promise<string> {
    return run('nsenter', [`--net=${ns.path}`, '--', file, ...args], opts);
  }

  /** Like exec, but resolves with the exit code and output whatever they are. */
  execRaw(ns: Netns, file: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
    return runRaw('nsenter', [`--net=${ns.path}`, '--', file, ...args], opts);
  }

  /** Starts a long-running process inside ns; destroy() ends it. */
  spawn(ns: Netns, file: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    const child = start('nsenter', [`--net=${ns.path}`, '--', file, ...args], opts);
    this.#processes.add(child);
    const pid = child.pid;
    if (pid !== undefined) {
      this.#record.processes.push({ pid, start: processStart(pid) ?? '' });
      this.#save();
    }
    child.once('exit', () => this.#processes.delete(child));
    return child;
  }

  /** Tears everything down: processes, namespaces, pins, files. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    await Promise.all([...this.#processes].map((p) => stop(p)));
    await removeLabObjects(this.prefix);
  }

  #save(): void {
    mkdirSync(REGISTRY, { recursive: true });
    writeFileSync(join(REGISTRY, this.prefix), JSON.stringify(this.#record));
  }
}

/** Creates a namespace that must not exist yet (a new lab's). */
async function addNetns(name: string): Promise<void> {
  try {
    await run('ip', ['netns', 'add', name]);
  } catch (err) {
    throw new Error(`could not create network namespace "${name}": ${(err as Error).message}`);
  }
}

function entriesWithPrefix(dir: string, prefix: string): string[] {
  try {
    return readdirSync(dir).filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}

/**
 * Removes every kernel object and file carrying a lab prefix: namespaces, pins, /etc/netns
 * files and scratch files — also those a daemon running in the lab made under an instance
 * name that starts with the lab's prefix.
 */
async function removeLabObjects(prefix: string): Promise<void> {
  const errors: string[] = [];
  const ours = (await listNetns()).filter((n) => n.startsWith(prefix));
  killProcessesIn(ours);
  for (const name of ours) {
    try {
      await removeNetns(name);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  for (const name of entriesWithPrefix(BPFFS, prefix)) rmSync(join(BPFFS, name), { recursive: true, force: true });
  for (const name of entriesWithPrefix('/etc/netns', prefix)) rmSync(join('/etc/netns', name), { recursive: true, force: true });
  rmSync(join('/tmp', prefix), { recursive: true, force: true });
  rmSync(join(REGISTRY, prefix), { force: true });
  if (errors.length > 0) throw new Error(`lab ${prefix} teardown: ${errors.join('; ')}`);
}

/**
 * Ends every process living in one of these namespaces: servers a daemon started in its
 * sandboxes outlive the daemon by design (sandboxes persist), so a lab that goes must take
 * them along, or they would keep running in a namespace nobody can reach.
 */
function killProcessesIn(namespaces: readonly string[]): void {
  const inodes = new Set<string>();
  for (const name of namespaces) {
    try {
      inodes.add(`net:[${statSync(join('/run/netns', name)).ino}]`);
    } catch {
      /* already gone */
    }
  }
  if (inodes.size === 0) return;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let ns: string;
    try {
      ns = readlinkSync(`/proc/${entry}/ns/net`);
    } catch {
      continue;
    }
    if (inodes.has(ns)) {
      try {
        process.kill(Number(entry), 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
  }
}

/** Removes labs whose owning process is gone (a crashed or killed test run), ending the processes they started. */
export async function sweepStaleLabs(): Promise<string[]> {
  if (!existsSync(REGISTRY)) return [];
  const swept: string[] = [];
  for (const prefix of readdirSync(REGISTRY)) {
    let record: RegistryRecord;
    try {
      record = JSON.parse(readFileSync(join(REGISTRY, prefix), 'utf8')) as RegistryRecord;
    } catch {
      continue;
    }
    if (isAlive(record.owner, record.ownerStart)) continue;
    for (const p of record.processes) {
      if (isAlive(p.pid, p.start)) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    await removeLabObjects(prefix);
    swept.push(prefix);
  }
  return swept;
}
