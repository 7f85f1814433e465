/**
 * iproute2 and sysctl, always aimed at a named network namespace. Steps are
 * idempotent `ensure`/`remove` calls: an object already in the wanted state is success.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { CommandError, run, runRaw } from './exec.js';
import { isNetnsFile } from './nsfs.js';
import { addNetnsFile, deleteNetnsFile, netnsDirReady, viaRtnl } from './rtnl.js';

const NETNS_DIR = '/run/netns';
/** A named network namespace (/run/netns/NAME). */
export interface Netns {
  readonly name: string;
  readonly path: string;
}

export function netns(name: string): Netns {
  return { name, path: `${NETNS_DIR}/${name}` };
}

/** `ip` in namespace ns (null: the caller's own). */
export function ip(ns: Netns | null, args: readonly string[]): Promise<string> {
  const argv = ns ? ['-n', ns.name, ...args] : [...args];
  // Changes bpfnet makes go over rtnetlink from the addon (rtnl.ts); queries and the rest run ip.
  return viaRtnl(ns?.path ?? null, [args], `ip ${argv.join(' ')}`) ?? run('ip', argv);
}

/**
 * Several `ip` commands in one process (`ip -batch`), in order, stopping at the first failure.
 * Arguments must not contain whitespace (names, addresses and keywords never do).
 */
export function ipBatch(ns: Netns | null, commands: ReadonlyArray<readonly string[]>): Promise<string> {
  if (commands.length === 0) return Promise.resolve('');
  const input = commands.map((c) => c.join(' ')).join('\n') + '\n';
  return viaRtnl(ns?.path ?? null, commands, `ip ${ns ? `-n ${ns.name} ` : ''}-batch: ${input.trim().replaceAll('\n', '; ')}`) ?? run('ip', [...(ns ? ['-n', ns.name] : []), '-batch', '-'], { input });
}

/** `ip -j` in namespace ns, parsed. */
export async function ipJson<T = unknown>(ns: Netns | null, args: readonly string[]): Promise<T> {
  const out = await run('ip', ns ? ['-j', '-n', ns.name, ...args] : ['-j', ...args]);
  return (out.trim() === '' ? [] : JSON.parse(out)) as T;
}

export async function ensureNetns(name: string): Promise<Netns> {
  const ns = netns(name);
  // A file left unmounted by a killed daemon is no namespace: made afresh.
  if (existsSync(ns.path) && !isNetnsFile(ns.path)) await removeNetns(name);
  if (!existsSync(ns.path)) {
    try {
      await run('ip', ['netns', 'add', name]);
    } catch (err) {
      if (!(err instanceof CommandError && /File exists/.test(err.stderr))) {
        throw new Error(`could not create network namespace "${name}": ${(err as Error).message}`);
      }
    }
  }
  await ip(ns, ['link', 'set', 'lo', 'up']);
  return ns;
}

/** A fresh named namespace, loopback still down (the caller's first batch brings it up): one process. */
export async function createNetns(name: string): Promise<Netns> {
  try {
    // Natively once ip has made /run/netns the shared mount it needs (the first one here does).
    if (netnsDirReady(() => readFileSync('/proc/self/mountinfo', 'utf8'))) addNetnsFile(netns(name).path);
    else await run('ip', ['netns', 'add', name]);
  } catch (err) {
    throw new Error(`could not create network namespace "${name}": ${(err as Error).message}`);
  }
  return netns(name);
}

export async function removeNetns(name: string): Promise<void> {
  if (!existsSync(`${NETNS_DIR}/${name}`)) return;
  try {
    deleteNetnsFile(`${NETNS_DIR}/${name}`);
  } catch (err) {
    if (existsSync(`${NETNS_DIR}/${name}`)) throw new Error(`could not remove network namespace "${name}": ${(err as Error).message}`);
  }
}

/** Names of the namespaces under /run/netns. */
export async function listNetns(): Promise<string[]> {
  try {
    return (await readdir(NETNS_DIR)).sort();
  } catch {
    return [];
  }
}

export interface LinkInfo {
  ifname: string;
  ifindex: number;
  address?: string;
  operstate?: string;
  link_type?: string;
  master?: string;
  mtu?: number;
  stats64?: { rx: { packets: number; bytes: number }; tx: { packets: number; bytes: number } };
}

export async function links(ns: Netns | null): Promise<LinkInfo[]> {
  return ipJson<LinkInfo[]>(ns, ['-s', 'link', 'show']);
}

export async function link(ns: Netns | null, ifname: string): Promise<LinkInfo | undefined> {
  const r = await runRaw('ip', [...(ns ? ['-n', ns.name] : []), '-j', '-s', 'link', 'show', 'dev', ifname]);
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as LinkInfo[])[0];
}

/** A veth pair: `a` in ns, `b` in peerNs (created there directly, never passing through another namespace). */
export async function ensureVeth(ns: Netns, a: string, peerNs: Netns, b: string): Promise<void> {
  if (await link(ns, a)) return;
  try {
    await ip(ns, ['link', 'add', 'name', a, 'type', 'veth', 'peer', 'name', b, 'netns', peerNs.name]);
  } catch (err) {
    throw new Error(`could not create veth "${a}" in "${ns.name}" (peer "${b}" in "${peerNs.name}"): ${(err as Error).message}`);
  }
}

/** Adds addr (CIDR) to ifname unless it is already there. */
export async function ensureAddress(ns: Netns | null, ifname: string, cidr: string): Promise<void> {
  try {
    await ip(ns, ['addr', 'add', cidr, 'dev', ifname]);
  } catch (err) {
    if (err instanceof CommandError && /File exists|already assigned/.test(err.stderr)) return;
    throw new Error(`could not add address ${cidr} to "${ifname}"${ns ? ` in "${ns.name}"` : ''}: ${(err as Error).message}`);
  }
}

export async function setUp(ns: Netns | null, ifname: string): Promise<void> {
  await ip(ns, ['link', 'set', 'dev', ifname, 'up']);
}

