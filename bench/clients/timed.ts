/**
 * Runs a client inside a namespace under `sh -c '... ; times'`, so the client's own CPU time
 * (user + system of the shell's children) comes back with its output: the share of the 2 vCPUs
 * a client takes from the server and the datapath it measures.
 */
import type { Lab } from '../../src/lab/lab.js';
import type { Netns } from '../../src/system/ip.js';

export interface TimedOutput {
  stdout: string;
  /** CPU-seconds (user + system) the client used. */
  cpuSeconds: number;
}

/** "0m1.230000s" -> 1.23 */
function shellTime(t: string): number {
  const m = /^(\d+)m([\d.]+)s$/.exec(t.trim());
  return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
}

/** Parses the children line of POSIX `times` (the last of its two lines): user + system seconds. */
export function parseTimes(text: string): number {
  const lines = text.trim().split('\n').filter((l) => /^\d+m[\d.]+s\s+\d+m[\d.]+s$/.test(l.trim()));
  const last = lines.at(-1);
  if (!last) return NaN;
  const [user, sys] = last.trim().split(/\s+/).map(shellTime);
  return user + sys;
}

export async function execTimed(lab: Lab, ns: Netns, file: string, args: readonly string[], timeoutMs: number): Promise<TimedOutput> {
  // `times` writes to stderr so stdout stays the client's own output.
  const r = await lab.execRaw(ns, 'sh', ['-c', '"$@"; s=$?; times >&2; exit $s', 'sh', file, ...args], { timeoutMs });
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} in ${ns.name}: exit ${r.code}: ${r.stderr.trim().split('\n').slice(0, 3).join(' ')}`);
  return { stdout: r.stdout, cpuSeconds: parseTimes(r.stderr) };
}
