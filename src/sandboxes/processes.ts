/**
 * Processes inside sandboxes: the one long-running process a sandbox may hold (detached, its
 * own process group, exit code kept in a file so a restarted daemon still learns it), and
 * exec'd commands whose output streams back to the caller.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** How to enter a sandbox: a named namespace (with its /etc/netns files) or the daemon's own. */
export type Entry = { netns: string } | { host: true };

function wrap(entry: Entry, argv: readonly string[]): [string, string[]] {
  if ('netns' in entry) return ['ip', ['netns', 'exec', entry.netns, ...argv]];
  return [argv[0], argv.slice(1)];
}

/** /proc/PID/stat start time (field 22): with the pid, the identity of a process. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

export function isRunning(pid: number, start: string): boolean {
  return processStartTime(pid) === start;
}

export interface MainProcess {
  pid: number;
  start: string;
  child: ChildProcess;
}

/**
 * Starts argv inside the sandbox as its main process: detached in its own process group,
 * output to dir/output.log, and its exit status written to dir/exit-code by a wrapping shell
 * (`exec` is not used so the shell outlives the command just long enough to record it).
 */
export function startMain(entry: Entry, argv: readonly string[], dir: string): MainProcess {
  mkdirSync(dir, { recursive: true });
  const log = openSync(join(dir, 'output.log'), 'a');
  const exitFile = join(dir, 'exit-code');
  const script = `"$@"; echo $? > '${exitFile.replace(/'/g, `'\\''`)}'`;
  const [file, args] = wrap(entry, ['sh', '-c', script, 'sh', ...argv]);
  const child = spawn(file, args, { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  // A failed spawn is reported as an 'error' event; unheard, it would end the daemon.
  let spawnError: Error | undefined;
  child.on('error', (err) => (spawnError = err));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${argv[0]} in the sandbox: ${file} could not be spawned${spawnError ? ` (${spawnError.message})` : ''}`);
  const start = processStartTime(pid) ?? '';
  return { pid, start, child };
}

/** The recorded exit status of a finished main process, if the wrapper wrote one. */
export function readExitCode(dir: string): number | undefined {
  const path = join(dir, 'exit-code');
  if (!existsSync(path)) return undefined;
  const n = Number(readFileSync(path, 'utf8').trim());
  return Number.isInteger(n) ? n : undefined;
}

/** Ends a main process we started (its whole process group), checking it is still the one. */
export async function killMain(pid: number, start: string, signal: NodeJS.Signals = 'SIGKILL', waitMs = 3000): Promise<void> {
  if (!isRunning(pid, start)) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
  }
  const deadline = Date.now() + waitMs;
  while (isRunning(pid, start) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/**
 * Kills every process living in the named namespace. A daemon killed between starting a
 * sandbox's process and storing its pid leaves a process no record names: removing the
 * namespace alone would leave it running in a namespace nobody can reach.
 */
export async function killAllIn(netns: string, waitMs = 3000): Promise<void> {
  let inode: string;
  try {
    inode = `net:[${statSync(join('/run/netns', netns)).ino}]`;
  } catch {
    return;
  }
  const inside = () =>
    readdirSync('/proc').filter((e) => {
      if (!/^\d+$/.test(e) || Number(e) === process.pid) return false;
      try {
        return readlinkSync(`/proc/${e}/ns/net`) === inode;
      } catch {
        return false;
      }
    });
  for (const pid of inside()) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  const deadline = Date.now() + waitMs;
  const alive = (pid: string) => {
    try {
      return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  while (inside().some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** Runs argv inside the sandbox with piped output; the caller streams it and awaits the exit code. */
export function execIn(entry: Entry, argv: readonly string[], env?: readonly string[]): ChildProcess {
  const [file, args] = wrap(entry, argv);
  const extra = Object.fromEntries((env ?? []).map((kv) => {
    const eq = kv.indexOf('=');
    return eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
  }));
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...extra } });
  // The caller listens for 'error' to report it; this one keeps an unheard failure from ending the daemon.
  child.on('error', () => undefined);
  return child;
}
