/**
 * The benchmark's statistics, pure: medians with their range, percentiles, and ratios paired
 * per repetition (setups run interleaved, so repetition i of A and repetition i of B were
 * measured side by side; their quotient cancels whatever disturbed that moment for both).
 */

export interface Summary {
  /** How many values were summarized (NaN and missing values are left out). */
  n: number;
  median: number;
  min: number;
  max: number;
}

const finite = (xs: ReadonlyArray<number | null | undefined>): number[] =>
  xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));

/** The p-th percentile (0..100) of xs, linearly interpolated between closest ranks; NaN for no values. */
export function percentile(xs: ReadonlyArray<number | null | undefined>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside 0..100`);
  const s = finite(xs).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

/** The median: the middle value, or the mean of the two middle values. */
export function median(xs: ReadonlyArray<number | null | undefined>): number {
  return percentile(xs, 50);
}

/** Median, min and max of the finite values of xs (all NaN when there are none). */
export function summarize(xs: ReadonlyArray<number | null | undefined>): Summary {
  const s = finite(xs);
  if (s.length === 0) return { n: 0, median: NaN, min: NaN, max: NaN };
  return { n: s.length, median: median(s), min: Math.min(...s), max: Math.max(...s) };
}

/**
 * a[i] / b[i] for every repetition i where both were measured (finite, b[i] != 0). Arrays are
 * indexed by repetition; a missing or failed repetition (undefined, null, NaN) drops that pair
 * only, never shifts the others.
 */
export function pairedRatios(a: ReadonlyArray<number | null | undefined>, b: ReadonlyArray<number | null | undefined>): number[] {
  const out: number[] = [];
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    if (typeof x === 'number' && typeof y === 'number' && Number.isFinite(x) && Number.isFinite(y) && y !== 0) out.push(x / y);
  }
  return out;
}

/** The summary of a's paired ratios to b: the median ratio and its range over repetitions. */
export function pairedRatio(a: ReadonlyArray<number | null | undefined>, b: ReadonlyArray<number | null | undefined>): Summary {
  return summarize(pairedRatios(a, b));
}

/** Busy and total CPU ticks from the first line of /proc/stat (all CPUs). */
export interface CpuTicks {
  busy: number;
  total: number;
}

/** Parses /proc/stat's aggregate "cpu" line: busy = user+nice+system+irq+softirq+steal, idle = idle+iowait. */
export function parseProcStat(text: string): CpuTicks {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('/proc/stat has no aggregate "cpu" line');
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** CPU-seconds the whole machine spent busy between two /proc/stat readings. */
export function busySeconds(before: CpuTicks, after: CpuTicks, hz = 100): number {
  return (after.busy - before.busy) / hz;
}

/** CPU-seconds per unit of work (per GB, per 1,000 requests): NaN when no work was done. */
export function cpuPerUnit(cpuSeconds: number, units: number): number {
  return units > 0 && Number.isFinite(cpuSeconds) ? cpuSeconds / units : NaN;
}

/**
 * Estimated time left for a run whose steps had estimates: the remaining estimates, scaled by
 * how the finished steps compared with theirs (a run going slower than planned says so early).
 * The pace is damped by priorSeconds of "on plan", so the first few short steps do not swing it.
 */
export function timeLeft(estimates: readonly number[], done: number, elapsed: number, priorSeconds = 60): number {
  const planned = estimates.slice(0, done).reduce((s, x) => s + x, 0);
  const rest = estimates.slice(done).reduce((s, x) => s + x, 0);
  const pace = (Math.max(0, elapsed) + priorSeconds) / (planned + priorSeconds);
  return rest * pace;
}
