/** One line per step on stderr: what, step i/N, and the estimated time left. */
import { loadavg } from 'node:os';
import { timeLeft } from './stats.js';

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export class Progress {
  readonly #estimates: number[];
  readonly #t0 = performance.now();
  #done = 0;
  /** The 1-minute load average at every step: how quiet the machine was during the run. */
  readonly loads: number[] = [];

  /** estimates: the planned seconds of every step, in order. */
  constructor(estimates: number[]) {
    this.#estimates = estimates;
  }

  get total(): number {
    return this.#estimates.length;
  }

  /** Announces the next step. */
  step(what: string): void {
    const elapsed = (performance.now() - this.#t0) / 1000;
    const left = timeLeft(this.#estimates, this.#done, elapsed);
    this.#done = Math.min(this.#done + 1, this.#estimates.length);
    this.loads.push(loadavg()[0]);
    process.stderr.write(`[bench] ${String(this.#done).padStart(String(this.total).length)}/${this.total} ${what} — ${duration(elapsed)} elapsed, ~${duration(left)} left\n`);
  }

  note(text: string): void {
    process.stderr.write(`[bench] ${text}\n`);
  }
}
