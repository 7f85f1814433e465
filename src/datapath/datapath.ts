/**
 * The Datapath: how packets flow between sandboxes, networks, the host and the outside.
 * Two implementations — iptables/ (Docker's way, the reference and fallback) and ebpf/ —
 * run the same behaviour suite (test/e2e/behaviour.test.ts). The bridge driver owns the
 * devices (bridge, veth pairs, addresses); a datapath owns forwarding policy on top of them:
 * isolation, masquerade, published ports, host-local access and hairpin.
 *
 * Every call is idempotent (ensure/remove), so the daemon can replay the store at start.
 * Removals (removeEndpoint, unpublish) must also work before start(): reconcile undoes
 * half-made endpoints before it replays the desired state.
 */

/** A bridge network as the datapath sees it. */
export interface NetworkSpec {
  id: string;
  name: string;
  /** The bridge device that carries the gateway address. */
  device: string;
  /** IPv4 subnet, CIDR. */
  subnet: string;
  gateway: string;
  internal: boolean;
  /** Traffic between sandboxes of this network (com.docker.network.bridge.enable_icc). */
  icc: boolean;
  /** Outbound traffic is masqueraded to the host's address (enable_ip_masquerade). */
  masquerade: boolean;
  /** Default host address for published ports of this network ('' = every address). */
  hostBinding: string;
}

/** One sandbox attachment to a bridge network. */
export interface EndpointSpec {
  id: string;
  networkId: string;
  sandboxId: string;
  /** Host side of the veth (on the bridge). */
  hostIfname: string;
  /** Sandbox side name and namespace path. */
  ifname: string;
  netnsPath: string;
  ipv4: string;
  mac: string;
}

/** One published port: host (address, port) -> sandbox (address, port). */
export interface PortSpec {
  protocol: 'tcp' | 'udp';
  /** '' = every host address. */
  hostIp: string;
  hostPort: number;
  /** The endpoint that receives the traffic (the sandbox's primary endpoint). */
  endpointId: string;
  networkId: string;
  containerIp: string;
  containerPort: number;
}

/** The whole desired state, for reconcile at start. */
export interface DesiredState {
  networks: NetworkSpec[];
  endpoints: EndpointSpec[];
  ports: PortSpec[];
}

export interface Datapath {
  readonly kind: 'iptables' | 'ebpf';
  /** Per-daemon set-up (chains, programs, pins) and a full replay of the desired state; removes strays carrying the instance prefix. */
  start(desired: DesiredState): Promise<void>;
  ensureNetwork(net: NetworkSpec): Promise<void>;
  removeNetwork(net: NetworkSpec): Promise<void>;
  ensureEndpoint(net: NetworkSpec, ep: EndpointSpec): Promise<void>;
  removeEndpoint(net: NetworkSpec, ep: EndpointSpec): Promise<void>;
  publish(ports: readonly PortSpec[]): Promise<void>;
  unpublish(ports: readonly PortSpec[]): Promise<void>;
  /** Daemon exit: release handles; forwarding stays in place. */
  stop(): Promise<void>;
}

/** What every datapath is built with. */
export interface DatapathContext {
  /** The instance's prefix for kernel objects inside the host namespace (links, chains): short, e.g. "bn3f2a". */
  linkPrefix: string;
  /** The instance name, for global objects (pins under /sys/fs/bpf/<instance>). */
  instance: string;
  /** The uplink interface (default route) and its IPv4 address. */
  uplink: { ifname: string; ipv4: string };
  /** Where the daemon keeps its files. */
  root: string;
}
