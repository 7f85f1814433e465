/**
 * `ip` inside a network namespace given by path (/run/netns/X or /proc/PID/ns/net): `ip -n`
 * takes names under /run/netns only, and a namespace handed in by a container engine has none.
 */
import { run, runRaw } from '../system/exec.js';
import { isNetnsFile } from '../system/nsfs.js';
import { viaRtnl } from '../system/rtnl.js';

/** The daemon's own namespace, as a path another namespace's `ip` can move an interface to. */
export const DAEMON_NETNS = `/proc/${process.pid}/ns/net`;

/** `ip ARGS` in the namespace at path (null: the daemon's own). */
export function ipAt(path: string | null, args: readonly string[]): Promise<string> {
  return viaRtnl(path, [args], `ip ${args.join(' ')}${path ? ` (in ${path})` : ''}`) ?? (path ? run('nsenter', [`--net=${path}`, '--', 'ip', ...args]) : run('ip', [...args]));
}

/** Several `ip` commands in one process inside the namespace at path, stopping at the first failure. */
export function ipBatchAt(path: string | null, commands: ReadonlyArray<readonly string[]>): Promise<string> {
  if (commands.length === 0) return Promise.resolve('');
  const input = commands.map((c) => c.join(' ')).join('\n') + '\n';
  return viaRtnl(path, commands, `ip -batch${path ? ` (in ${path})` : ''}: ${input.trim().replaceAll('\n', '; ')}`) ?? (path ? run('nsenter', [`--net=${path}`, '--', 'ip', '-batch', '-'], { input }) : run('ip', ['-batch', '-'], { input }));
}

/** `ip -j ARGS` in the namespace at path, parsed. */
export async function ipJsonAt<T = unknown>(path: string | null, args: readonly string[]): Promise<T> {
  const out = await ipAt(path, ['-j', ...args]);
  return (out.trim() === '' ? [] : JSON.parse(out)) as T;
}

/** Whether the namespace at path still exists (a container's may be gone before we leave it; a killed daemon's half-removed name is gone too). */
export function netnsExists(path: string): boolean {
  return isNetnsFile(path);
}

/** One link in the namespace at path, or undefined when it is not there (or the namespace is gone). */
export async function linkAt(path: string | null, ifname: string): Promise<{ ifname: string; master?: string } | undefined> {
  if (path && !netnsExists(path)) return undefined;
  const r = await runRaw(path ? 'nsenter' : 'ip', path ? [`--net=${path}`, '--', 'ip', '-j', 'link', 'show', 'dev', ifname] : ['-j', 'link', 'show', 'dev', ifname]);
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as Array<{ ifname: string; master?: string }>)[0];
}
