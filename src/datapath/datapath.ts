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

/**
 * A network the datapath forwards for (its driver's `datapath` capability). Its identity is
 * `id`, the same on every host, never an ifindex; `device` is this host's rendering of it.
 */
export interface NetworkSpec {
  id: string;
  name: string;
  /** The host device the driver made to carry the gateway address (bridge driver: the bridge). */
  device: string;
  /** IPv4 subnet, CIDR; '' on an IPv6-only network. */
  subnet: string;
  /** IPv4 gateway address; '' on an IPv6-only network. */
  gateway: string;
  /** IPv6 subnet the datapath forwards for, CIDR ('' or absent: no IPv6). */
  subnet6?: string;
  /** IPv6 gateway address on `device` ('' or absent: no IPv6). */
  gateway6?: string;
  /** Further IPv6 subnets of the network, each with its gateway on `device` too (absent: one subnet). */
  moreSubnets6?: Array<{ subnet: string; gateway: string }>;
  /** NAT66 of IPv6 egress to the uplink's IPv6 address (Docker's default); false = gateway_mode_ipv6=routed. Absent = true. */
  masquerade6?: boolean;
  internal: boolean;
  /** Traffic between sandboxes of this network (com.docker.network.bridge.enable_icc). */
  icc: boolean;
  /** Outbound traffic is masqueraded to the host's address (enable_ip_masquerade). */
  masquerade: boolean;
  /** Default host address for published ports of this network ('' = every address). */
  hostBinding: string;
  /** Overlay networks: the VXLAN id that carries the network between hosts (absent: the network is this host's only). */
  vni?: number;
}

/** One endpoint joined into a namespace (a bpfnet sandbox's, or one handed in by path). */
export interface EndpointSpec {
  id: string;
  networkId: string;
  /** The bpfnet sandbox, or '' for a namespace bpfnet does not own. */
  sandboxId: string;
  /** The host-side device the driver made for the endpoint, whatever it is (bridge driver: the veth end on the bridge). */
  hostIfname: string;
  /** The interface name the joiner chose inside the namespace, and the namespace by path. */
  ifname: string;
  netnsPath: string;
  /** '' on an IPv6-only network. */
  ipv4: string;
  /** '' or absent: the endpoint has no IPv6 address. */
  ipv6?: string;
  mac: string;
}

/** One published port: host (address, port) -> sandbox (address, port). */
export interface PortSpec {
  protocol: 'tcp' | 'udp';
  /** '' = every host address of both families; '0.0.0.0' = every IPv4 address; '::' = every IPv6 address; else one address. */
  hostIp: string;
  hostPort: number;
  /** The endpoint that receives the traffic (the sandbox's primary endpoint). */
  endpointId: string;
  networkId: string;
  /** Where IPv4 traffic goes ('' = the endpoint has no IPv4: IPv4 host addresses do not answer). */
  containerIp: string;
  /** Where IPv6 traffic goes ('' or absent = the endpoint has no IPv6: IPv6 host addresses do not answer). */
  containerIp6?: string;
  containerPort: number;
  /** A run: this many ports (absent: 1), host and container ports both stepping by one from hostPort and containerPort. */
  count?: number;
}


/** Which families a published port answers on: '' = both (each where the endpoint has an address), '0.0.0.0'/'::' = one, an address = its family. */
export function portFamilies(p: PortSpec): { v4: boolean; v6: boolean } {
  if (p.hostIp === '') return { v4: !!p.containerIp, v6: !!p.containerIp6 };
  const v6 = p.hostIp.includes(':');
  return { v4: !v6 && !!p.containerIp, v6: v6 && !!p.containerIp6 };
}

/** The whole desired state, for reconcile at start. */
export interface DesiredState {
  networks: NetworkSpec[];
  endpoints: EndpointSpec[];
  ports: PortSpec[];
}

export interface Datapath {
  readonly kind: 'iptables' | 'ebpf';
  /**
   * The datapath answers ARP and neighbour discovery and carries the host's traffic itself, so
   * a network's host veths need not be ports of its kernel bridge (which takes 1,024 at most).
   * Absent or false: every host veth is a bridge port, Docker's way.
   */
  readonly portless?: boolean;
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

/** Counters of one endpoint, as a datapath that keeps them reports them. */
export interface EndpointCounters {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Drops by reason name. */
  drops: Record<string, number>;
}

/** A dropped packet, as `bpfnet monitor` shows it. */
export interface DropInfo {
  time: Date;
  reason: string;
  protocol: string;
  source: string;
  destination: string;
  /** Host-side interface where it was dropped ('uplink' / 'host' for those hooks). */
  interface: string;
}

/** Optional ability: per-endpoint counters and a live stream of drops. */
export interface Observable {
  counters(hostIfname: string): EndpointCounters | undefined;
  /** Subscribes to drops; returns the unsubscribe function. */
  onDrop(listener: (drop: DropInfo) => void): () => void;
}

export function isObservable(d: Datapath): d is Datapath & Observable {
  return typeof (d as Partial<Observable>).counters === 'function' && typeof (d as Partial<Observable>).onDrop === 'function';
}

/** Tuning of the ebpf datapath (daemon flags; tests shrink them). */
export interface EbpfTuning {
  /** Connection-table size (entries; a flow takes two). */
  ctMax?: number;
  /** How often expired connection-table entries are collected. */
  gcIntervalMs?: number;
  /** How often the host's addresses are re-read (published ports follow them). */
  addressRefreshMs?: number;
  /** Timeouts in seconds by name: tcp-syn, tcp-established, tcp-fin, tcp-closed, udp, udp-stream, icmp. */
  timeouts?: Record<string, number>;
  /** Replies to a veth uplink enter its peer directly (default true); false behaves as a NIC would (bpf_redirect). */
  uplinkShortcut?: boolean;
}

/** What every datapath is built with. */
export interface DatapathContext {
  /** The instance's prefix for kernel objects inside the host namespace (links, chains): short, e.g. "bn3f2a". */
  linkPrefix: string;
  /** The instance name, for global objects (pins under /sys/fs/bpf/<instance>). */
  instance: string;
  /** The uplink interface (default route), its IPv4 address and its global IPv6 address ('' or absent: none). */
  uplink: { ifname: string; ipv4: string; ipv6?: string };
  /** Where the daemon keeps its files. */
  root: string;
  ebpf?: EbpfTuning;
}

/** An endpoint of an overlay network that lives on another host, as the cluster state tells it. */
export interface RemoteEndpointSpec {
  /** The overlay network's VXLAN id (the same on every host). */
  vni: number;
  /** '' on an IPv6-only network. */
  ipv4: string;
  /** '' or absent: the endpoint has no IPv6 address. */
  ipv6?: string;
  mac: string;
  /** The underlay IPv4 address of the host it lives on (that host's VXLAN tunnel endpoint). */
  vtep: string;
}

/** Optional ability: networks that span hosts (NetworkSpec.vni set), with endpoints elsewhere reached by VXLAN. */
export interface OverlayCapable {
  ensureRemoteEndpoint(remote: RemoteEndpointSpec): Promise<void>;
  removeRemoteEndpoint(remote: RemoteEndpointSpec): Promise<void>;
  /** Exactly these remote endpoints, nothing else (a re-list after a watch was lost). */
  replaceRemoteEndpoints(remotes: readonly RemoteEndpointSpec[]): Promise<void>;
}

export function isOverlayCapable(d: Datapath): d is Datapath & OverlayCapable {
  return typeof (d as Partial<OverlayCapable>).ensureRemoteEndpoint === 'function';
}
