/**
 * A workload: one client program measuring one path of a setup. Every setup that offers the
 * path runs the very same client with the very same parameters.
 */
import type { Lab } from '../../src/lab/lab.js';
import type { PathKind, Target } from '../setups/setup.js';

/** A reported number: what it is, its unit, and which direction is better. */
export interface MetricDef {
  key: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
}

/** One measurement: the workload's metrics (by key) and the client's own output. */
export interface Sample {
  metrics: Record<string, number>;
  raw: unknown;
}

/** How long each kind of client runs (seconds). */
export interface Durations {
  iperf: number;
  iperfOmit: number;
  http: number;
  httpWarmup: number;
  conn: number;
  connWarmup: number;
}

export const FULL_DURATIONS: Durations = { iperf: 2, iperfOmit: 1, http: 3, httpWarmup: 0.5, conn: 2.5, connWarmup: 0.5 };
export const QUICK_DURATIONS: Durations = { iperf: 1, iperfOmit: 0, http: 0.5, httpWarmup: 0.2, conn: 0.6, connWarmup: 0.2 };

export interface Workload {
  /** Stable id (results JSON, --only). */
  id: string;
  /** What a reader sees. */
  title: string;
  /** Which path of the setup it measures. */
  path: PathKind;
  /** The headline metric (first) and the others it reports. */
  metrics: MetricDef[];
  /** Whether --quick runs it. */
  quick: boolean;
  /** The client program (wrk, autocannon, connrate, iperf3). */
  client: string;
  /** The id of the headline workload this one measures again with another client, to check they agree. */
  crossCheckOf?: string;
  /** Estimated wall time of one sample (seconds), for progress. */
  estimate(d: Durations): number;
  run(lab: Lab, target: Target, d: Durations): Promise<Sample>;
}

/** CPU-seconds from a client's tick counts. */
export function cpuSeconds(cpu: { busyTicks: number; hz: number }): number {
  return cpu.busyTicks / cpu.hz;
}
