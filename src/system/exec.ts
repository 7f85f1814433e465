/**
 * The only place bpfnet starts child processes. Every failure names the command
 * and carries what it printed, so callers can turn it into an error that names the object.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${command}: ${stderr.trim() || stdout.trim() || `exit ${exitCode}`}`);
  }
}

export interface RunOptions {
  /** Written to the command's standard input. */
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

function describe(file: string, args: readonly string[]): string {
  return [file, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** Runs file with args; resolves with its output whatever the exit code. */
export function runRaw(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          if (err.killed || err.signal) {
            resolve({ stdout, stderr: stderr + `\n(killed by ${err.signal ?? 'timeout'})`, code: 128 });
            return;
          }
          reject(new CommandError(describe(file, args), null, stdout, `${stderr}${err.message}`));
          return;
        }
        resolve({ stdout, stderr, code: err ? (err.code as unknown as number) : 0 });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs file with args; rejects with a CommandError unless it exits 0. */
export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await runRaw(file, args, opts);
  if (r.code !== 0) throw new CommandError(describe(file, args), r.code, r.stdout, r.stderr);
  return r.stdout;
}

/** Starts a long-running process; the caller owns it and ends it by its pid. */
export function start(file: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

/** Ends a process we started: SIGTERM, then SIGKILL after graceMs; resolves when it is gone. */
export function stop(child: ChildProcess, graceMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
      resolve();
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Where a command runs: the caller's own network namespace, or the one at netnsPath. */
export interface NetnsTarget {
  /** A namespace file (/run/netns/NAME, /proc/PID/ns/net); absent: the caller's own namespace. */
  readonly netnsPath?: string;
}

/** run() inside target's namespace (through nsenter, which keeps /sys as it is, unlike `ip netns exec`). */
export function runIn(target: NetnsTarget, file: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return target.netnsPath ? run('nsenter', [`--net=${target.netnsPath}`, '--', file, ...args], opts) : run(file, args, opts);
}

/** runRaw() inside target's namespace. */
export function runRawIn(target: NetnsTarget, file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return target.netnsPath ? runRaw('nsenter', [`--net=${target.netnsPath}`, '--', file, ...args], opts) : runRaw(file, args, opts);
}
