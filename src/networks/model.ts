/**
 * The records the store keeps and the service works on. Engine-API shapes are rendered
 * from these in api/; kernel specs for drivers and datapaths are derived in spec.ts.
 */
import type { IpamConfigInput } from '../ipam/config.js';
import { parseIp, parsePrefix, prefixContains } from '../ipam/ip.js';

/** A registered driver's name (src/drivers/registry.ts): bridge, host, null, and whatever registers next. */
export type DriverName = string;
export type Protocol = 'tcp' | 'udp';

/** Docker's driver options that bpfnet understands (others are kept and shown, not acted on). */
export const BridgeOption = {
  name: 'com.docker.network.bridge.name',
  icc: 'com.docker.network.bridge.enable_icc',
  masquerade: 'com.docker.network.bridge.enable_ip_masquerade',
  hostBinding: 'com.docker.network.bridge.host_binding_ipv4',
  defaultBridge: 'com.docker.network.bridge.default_bridge',
  mtu: 'com.docker.network.driver.mtu',
  /** nat (default): NAT66 of IPv6 egress; routed: no NAT66 (the datapath's masquerade6 = false). */
  gatewayModeIPv6: 'com.docker.network.bridge.gateway_mode_ipv6',
} as const;

export interface NetworkRecord {
  id: string;
  name: string;
  /** RFC 3339 with nanoseconds, as moby prints it. */
  created: string;
  driver: DriverName;
  scope: 'local' | 'global';
  internal: boolean;
  attachable: boolean;
  ingress: boolean;
  configOnly: boolean;
  enableIPv4: boolean;
  enableIPv6: boolean;
  ipamDriver: string;
  ipamOptions: Record<string, string> | null;
  /** The IPAM config as inspect shows it: user-given blocks echoed, auto-allocated ones as {Subnet, Gateway}. */
  ipamConfig: IpamConfigInput[];
  options: Record<string, string>;
  labels: Record<string, string>;
  /** bridge, host, none: created by the daemon, never removed. */
  predefined: boolean;
  /** Networks with addresses: the IPv4 pool (absent on an IPv6-only network) and the kernel device. */
  subnet?: string;
  ipRange?: string;
  gateway?: string;
  device?: string;
  /** The IPv6 pool (enableIPv6): subnet, --ip-range and gateway, canonical text. */
  subnet6?: string;
  ipRange6?: string;
  gateway6?: string;
  /** Further IPv6 subnets after the first (several --subnet of IPv6), in the order given. */
  moreSubnets6?: Subnet6[];
  /** Where the embedded DNS listens for this network when not on its gateway (macvlan: the gateway is the LAN's router). */
  dnsAddress?: string;
  /** The same for IPv6 (macvlan with --ipv6: the IPv6 gateway is the LAN's router too). */
  dnsAddress6?: string;
}

/** One IPv6 subnet of a network with its --ip-range and gateway (canonical text). */
export interface Subnet6 {
  subnet: string;
  ipRange?: string;
  gateway: string;
}

/** Every IPv6 subnet of a network, the first (subnet6) first; none without IPv6. */
export function subnets6Of(net: Pick<NetworkRecord, 'subnet6' | 'ipRange6' | 'gateway6' | 'moreSubnets6'>): Subnet6[] {
  if (!net.subnet6) return [];
  return [{ subnet: net.subnet6, ...(net.ipRange6 ? { ipRange: net.ipRange6 } : {}), gateway: net.gateway6 ?? '' }, ...(net.moreSubnets6 ?? [])];
}

/** The IPv6 subnet of a network that holds `address`; undefined when none does. */
export function subnet6Holding(net: NetworkRecord, address: string): Subnet6 | undefined {
  const a = parseIp(address);
  return a && subnets6Of(net).find((s) => prefixContains(parsePrefix(s.subnet)!, a));
}

/**
 * The IPv6 gateway an endpoint with `address` routes through: its own subnet's (a network may
 * have several), else the network's first; undefined on a network without IPv6.
 */
export function gateway6For(net: NetworkRecord, address: string | undefined): string | undefined {
  return (address ? subnet6Holding(net, address)?.gateway : undefined) ?? net.gateway6;
}

/** The prefix length of an endpoint's IPv6 address: its own subnet's, else the network's first; undefined without IPv6. */
export function prefix6For(net: NetworkRecord, address: string | undefined): number | undefined {
  const subnet = (address ? subnet6Holding(net, address)?.subnet : undefined) ?? net.subnet6;
  return subnet ? Number(subnet.split('/')[1]) : undefined;
}

/** The address a network's sandboxes send their queries to: its resolver's own, else its gateway. */
export function resolverOf(net: NetworkRecord): string | undefined {
  return net.dnsAddress ?? net.gateway;
}

/** The IPv6 address a network's sandboxes reach the resolver at: its resolver's own, else its IPv6 gateway. */
export function resolver6Of(net: NetworkRecord): string | undefined {
  return net.dnsAddress6 ?? net.gateway6;
}

export type SandboxState = 'creating' | 'created' | 'running' | 'exited' | 'removing';

export interface SandboxRecord {
  id: string;
  name: string;
  created: string;
  /** The --network given at creation ("default" when none): decides bridge, host or none mode. */
  networkMode: string;
  hostname: string;
  extraHosts: string[];
  dns: string[];
  dnsSearch: string[];
  /** The process to run inside, if any (empty: the sandbox only holds its namespace). */
  command: string[];
  state: SandboxState;
  /** Name under /run/netns of the sandbox's namespace; null when it shares the host's. */
  netns: string | null;
  pid?: number;
  /** /proc/PID/stat start time: with pid, the identity of the process we started. */
  pidStart?: string;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
  /** Why start-up could not rebuild this sandbox's kernel state (shown by ps and inspect); unset when usable. */
  problem?: string;
}

export type EndpointState = 'creating' | 'active';

export interface EndpointRecord {
  id: string;
  networkId: string;
  sandboxId: string;
  state: EndpointState;
  /** Order of attachment within the sandbox: the lowest is the primary (default route, published ports). */
  seq: number;
  /** Interface name inside the namespace, as the joiner chose it (bpfnet's sandboxes: eth0, eth1...). */
  ifname: string;
  /** The host-side device the driver made for this endpoint, whatever it is (bridge: the veth end on the bridge). */
  hostIfname?: string;
  mac?: string;
  ipv4?: string;
  prefixLength?: number;
  /** The endpoint's IPv6 address (canonical text) on a network with IPv6, and its prefix length. */
  ipv6?: string;
  prefixLength6?: number;
  aliases: string[];
  /** The IPv4 address was given (--ip); staticIp6: the IPv6 one was (--ip6). */
  staticIp: boolean;
  staticIp6?: boolean;
}

export interface PortRecord {
  sandboxId: string;
  protocol: Protocol;
  /** '' binds every host address. */
  hostIp: string;
  hostPort: number;
  containerPort: number;
}

/**
 * Published ports as a run: `count` bindings (absent: 1) whose host and container ports both step
 * by one from hostPort and containerPort, so `-p 10000-19999:10000-19999` travels from planning
 * through the store to the datapath as one object instead of 10,000. A record is a run of one.
 */
export interface PortRun extends PortRecord {
  count?: number;
}
