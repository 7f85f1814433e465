/** The shape of bench/results/<timestamp>.json: every raw sample of one run, plus what it ran on. */
import type { SetupName, PathKind } from './setups/setup.js';
import type { MetricDef } from './workloads/workload.js';

export const RESULTS_SCHEMA = 1;

export interface MachineInfo {
  kernel: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  iperf3: string;
  autocannon: string;
  iptables: string;
  cniPlugins: string;
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

export interface BenchResults {
  schema: number;
  command: string;
  quick: boolean;
  reps: number;
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  setups: Array<{ name: SetupName; description: string; info: Record<string, string> }>;
  workloads: Array<{ id: string; title: string; path: PathKind; metrics: MetricDef[] }>;
  samples: DataSample[];
  sweep: { ports: number[]; samples: SweepSample[] };
  controlPlane: { sandboxes: number; samples: ControlSample[] };
  dns?: DnsResults;
  uplinkXdp?: UplinkXdpResults;
  notes: string[];
}
