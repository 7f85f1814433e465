/** The shape of bench/results/<timestamp>.json: every raw sample of one run, plus what it ran on. */
import type { SetupName, PathKind } from './setups/setup.js';
import type { MetricDef } from './workloads/workload.js';

export const RESULTS_SCHEMA = 2;

export interface MachineInfo {
  kernel: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  iperf3: string;
  autocannon: string;
  wrk: string;
  iptables: string;
  cniPlugins: string;
  /** The commit measured (short hash), with "+dirty" when the work tree had uncommitted changes. */
  commit: string;
  /** /proc/loadavg at the start and the end of the run. */
  loadBefore: number[];
  loadAfter: number[];
  /** The 1-minute load average sampled at every step: median and max. */
  loadDuring?: { median: number; max: number };
}

export interface DataSample {
  workload: string;
  setup: SetupName;
  rep: number;
  metrics: Record<string, number>;
  raw?: unknown;
  error?: string;
  /** Why the sample is left out of the statistics (errors or non-2xx responses during it). */
  dropped?: string;
  /** Its place (0-based) in this repetition's order of setups. */
  position?: number;
}

export interface SweepSample {
  setup: SetupName;
  ports: number;
  rep: number;
  /** Wall time of creating the sandbox with its ports, and of an identical one without (ms). */
  createMs: number;
  baselineMs: number;
  metrics: Record<string, number>;
  raw?: unknown;
  error?: string;
}

/** One timing of publishing many ports on a sandbox (no traffic). */
export interface PublishSample {
  setup: SetupName;
  run: number;
  createMs: number;
  baselineMs: number;
  error?: string;
}

export interface ControlSample {
  setup: SetupName;
  rep: number;
  /** Wall time of each sandbox's create-and-attach, in order (ms). */
  timesMs: number[];
  error?: string;
}

export interface DnsResults {
  setups: Array<{ name: string; qps: number[]; p50Ms: number[]; p99Ms: number[] }>;
  notes: string[];
}

/** One TCP stream to the published port: TC programs alone, and with a no-op XDP program on the uplink too (Gb/s, index = repetition). */
export interface UplinkXdpResults {
  tcGbps: number[];
  tcXdpGbps: number[];
  errors: string[];
}

/** cross-host-v6: the cross-host pair over IPv6 on the same dual-stack network (request rates only). */
export type OverlaySetupName = 'cross-host' | 'same-host' | 'docker-way' | 'no-overlay' | 'cross-host-v6' | 'floor';

/** The overlay section (bench/overlay.ts): per setup, one value per repetition (NaN: that run failed, see errors). */
export interface OverlayResults {
  setups: Array<{ name: OverlaySetupName; description: string; iperf1Gbps: number[]; iperf2Gbps: number[]; keepAliveRps: number[]; newConnPerSec: number[] }>;
  /** A new sandbox reachable from every other host: per sandbox the slowest host (ms after the create call answered), every host's time, the create call's wall time. */
  reach: { hosts: number; method: 'traffic'; everyHostMs: number[]; perHostMs: number[]; createMs: number[]; errors: string[] };
  /** Seconds of each measured run. */
  seconds: number;
  errors: string[];
  notes: string[];
}

export interface BenchResults {
  schema: number;
  command: string;
  quick: boolean;
  reps: number;
  /** Seed of the setup order: each workload's setups are shuffled with it, then rotated by one per repetition. */
  orderSeed: number;
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  setups: Array<{ name: SetupName; description: string; info: Record<string, string> }>;
  workloads: Array<{ id: string; title: string; path: PathKind; metrics: MetricDef[]; client?: string; crossCheckOf?: string }>;
  samples: DataSample[];
  sweep: { ports: number[]; samples: SweepSample[] };
  controlPlane: { sandboxes: number; samples: ControlSample[] };
  /** Publishing many ports, timed alone several times (for its median and p99). */
  publish?: { ports: number; samples: PublishSample[] };
  dns?: DnsResults;
  uplinkXdp?: UplinkXdpResults;
  overlay?: OverlayResults;
  /** The scale section (bench/scale.ts), when --scale ran it. */
  scale?: import('./scale.js').ScaleResults;
  notes: string[];
}
