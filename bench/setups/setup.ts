/**
 * What every benchmarked setup offers the workloads: where a client runs and which
 * address:port it hits for each kind of path, plus the optional abilities some setups have
 * (publishing many ports, creating many sandboxes). A setup builds everything inside its own
 * lab, so setups never share a namespace, a conntrack table or a TIME_WAIT list.
 */
import type { Lab } from '../../src/lab/lab.js';
import type { Netns } from '../../src/system/ip.js';

/**
 * host: the server in the simulated host's own namespace (--network host), the ceiling;
 * veth: client and server joined by one veth pair; routing: a host that only routes;
 * floor: a fixed stateless eBPF translation on the datapath's own hooks (what no eBPF datapath gets past);
 * ebpf: bpfnet's eBPF datapath with a NIC-like uplink (no bpf_redirect_peer to the uplink's peer);
 * ebpf-shortcut: the same with that veth-only shortcut on; iptables: bpfnet's iptables datapath;
 * docker28: Docker 28's own rules on a Linux bridge; cni: the CNI reference plugins;
 * docker: a real dockerd's own bridge and iptables; docker+bpfnet: the same dockerd on bpfnet's plugin;
 * docker+floor: those containers with the floor's fixed translation in place of the datapath (the
 * floor for Docker's containers, which carry Docker's own conntrack in their namespaces).
 */
export const SETUP_NAMES = ['host', 'veth', 'routing', 'floor', 'ebpf', 'ebpf-shortcut', 'iptables', 'docker28', 'cni', 'docker', 'docker+bpfnet', 'docker+floor'] as const;
/** One of SETUP_NAMES; that list's order is the order of every table and run. */
export type SetupName = (typeof SETUP_NAMES)[number];

/** The paths the workloads measure. */
export type PathKind =
  /** an external client to a sandbox's published port (DNAT) */
  | 'published'
  /** one sandbox to another on the same network */
  | 'same-network'
  /** a sandbox to a server in the external namespace (masquerade) */
  | 'egress'
  /** the same three over IPv6 (DNAT66 to the sandbox's IPv6 address, NAT66 to the uplink's): setups with IPv6 only */
  | 'published6'
  | 'same-network6'
  | 'egress6';

/** The URL authority of a target: IPv6 addresses in brackets. */
export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** One measurable path: the client's namespace and the server it reaches. */
export interface Target {
  /** Where the client process runs. */
  client: Netns;
  /** The address the client connects to. */
  address: string;
  /** Port of the HTTP server (httpd) as seen from the client. */
  httpPort: number;
  /** Port of the iperf3 server as seen from the client. */
  iperfPort: number;
}

/** How many port-less creations the publishing time is measured against (their median). */
export const BASELINE_RUNS = 3;

/** A sandbox publishing N ports, made for the scaling sweep. */
export interface PublishedSweep {
  /** The measured port (the one a linear rule list reaches last). */
  target: Target;
  /** Wall time of creating the sandbox with its N ports (ms). */
  createMs: number;
  /** Wall time of creating an otherwise identical sandbox with no published port (ms, the median of BASELINE_RUNS). */
  baselineMs: number;
  remove(): Promise<void>;
}

export interface Setup {
  readonly name: SetupName;
  /** One line for the report: what this setup is. */
  readonly description: string;
  readonly lab: Lab;
  readonly targets: Partial<Record<PathKind, Target>>;
  /** Publishes ports first..first+n-1 on a new sandbox whose server listens on the last one. */
  publishPorts?(n: number, first: number): Promise<PublishedSweep>;
  /** Creates and attaches n sandboxes one after another; resolves with each one's wall time (ms), then removes them. */
  createSandboxes?(n: number): Promise<number[]>;
  /** Versions and settings worth recording (e.g. the iptables backend). */
  info(): Promise<Record<string, string>>;
  destroy(): Promise<void>;
}
