/**
 * A network driver decides which kernel objects a network and an endpoint are made of
 * (moby's driverapi verbs: CreateNetwork, DeleteNetwork, CreateEndpoint, Join, Leave,
 * DeleteEndpoint). One folder per driver; each registers itself with its capabilities in
 * registry.ts, and the services ask those capabilities, never the driver's name.
 * Every call is idempotent: an object already in the wanted form is success.
 */
import type { EndpointRecord, NetworkRecord } from '../networks/model.js';

/** What the rest of bpfnet may assume about a driver's networks (moby's driverapi.Capability, and more). */
export interface DriverCapabilities {
  /** The datapath (eBPF or iptables) forwards for this driver's networks: isolation, masquerade, published ports. */
  datapath: boolean;
  /** 'local': the network exists on this host only; 'global': the same network on several hosts. */
  scope: 'local' | 'global';
  /** Networks need a parent interface (-o parent=...), as macvlan/ipvlan do. */
  needsParent: boolean;
  /** A sandbox attached to it has a namespace of its own (false: it shares the daemon's). */
  ownNamespace: boolean;
  /** Endpoints get addresses from IPAM (and so can be the primary endpoint, carry the default route and published ports). */
  addresses: boolean;
  /** Users may create networks of this driver (false: only the daemon's one predefined instance exists). */
  userNetworks: boolean;
  /** User-defined networks of this driver get the embedded DNS and network-scoped aliases. */
  embeddedDns: boolean;
  /** A sandbox on this network may be disconnected from it. */
  disconnect: boolean;
  /**
   * A sandbox on this network can be on no other, and the network cannot be connected to after
   * creation: the error moby gives when that is tried (host and none modes).
   */
  exclusive?: { status: 'forbidden' | 'invalid'; message: string };
  /** When -p is given for a sandbox on this network and it cannot publish: moby's warning, or '' to drop the ports silently. */
  publishRefusal?: string;
  /** Its networks may have more than one IPv6 subnet (gateway, prefix and route per subnet). */
  severalSubnets6?: boolean;
}

/** Where an endpoint is joined: a namespace given by path, that bpfnet need not have created nor own. */
export interface JoinTarget {
  /** /run/netns/NAME, /proc/PID/ns/net, ...; null: the daemon's own namespace (host mode). */
  netnsPath: string | null;
  /** The interface name inside the namespace, chosen by the caller (eth0, eth1, net1...). */
  ifname: string;
  /** The endpoint becomes the namespace's default route. */
  defaultRoute?: boolean;
}

export interface Driver {
  readonly name: string;
  readonly capabilities: DriverCapabilities;
  /** Refuses, with the error moby gives, -o options this driver owns and cannot take (unknown keys are kept and shown). */
  validateOptions?(options: Readonly<Record<string, string>>): void;
  /** The kernel device a new network will be made of, if it has one (the bridge), so two networks never share it. */
  deviceFor?(networkId: string, options: Readonly<Record<string, string>>): string;
  /** The address the embedded DNS takes on a new network, when not its gateway (reserved like the gateway). */
  resolverAddress?(net: NetworkRecord): string | undefined;
  /** The same on the network's IPv6 subnet (reserved like its IPv6 gateway). */
  resolverAddress6?(net: NetworkRecord): string | undefined;
  /** Refuses, with the error moby would give, a new network whose kernel objects would clash with what exists. */
  checkNetwork?(net: NetworkRecord): Promise<void>;
  createNetwork(net: NetworkRecord): Promise<void>;
  deleteNetwork(net: NetworkRecord): Promise<void>;
  /**
   * Makes the endpoint's host-side objects and its namespace-side interface, kept in the
   * daemon's namespace under a temporary name until join. Returns the endpoint with what the
   * driver chose (its host-side device, MAC). into: where join will put it, when that is known
   * already (bpfnet's own sandboxes): a driver may make the interface there at once, as join
   * would leave it — moving a device between namespaces waits for an RCU grace period in the
   * kernel (~16 ms here), making it in place does not.
   */
  createEndpoint(net: NetworkRecord, ep: EndpointRecord, into?: JoinTarget): Promise<EndpointRecord>;
  /** Moves the endpoint's interface into the namespace at target.netnsPath as target.ifname and configures it there. */
  join(net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<EndpointRecord>;
  /** Undoes join: the interface goes back to the daemon's namespace (nothing is left in the caller's namespace). */
  leave(net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<void>;
  /** Undoes createEndpoint: removes what it made (also when the namespace took the interface with it). */
  deleteEndpoint(net: NetworkRecord, ep: EndpointRecord): Promise<void>;
  /**
   * Join for a caller that moves the interface into its namespace itself (dockerd): readies the
   * endpoint's interface in the daemon's namespace (MAC, MTU; the caller sets the address) and
   * returns its name there.
   */
  handOff?(net: NetworkRecord, ep: EndpointRecord): Promise<{ endpoint: EndpointRecord; ifname: string }>;
  /** Every device an endpoint may have in the daemon's namespace (so a restarted daemon does not sweep them). */
  endpointDevices?(ep: EndpointRecord): string[];
  /** Makes ep the namespace's default route (it became the primary endpoint). */
  setDefaultRoute?(net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<void>;
  /**
   * Removes kernel objects of this driver that the given stored networks and endpoints (this
   * driver's) do not account for, left by a daemon killed mid-operation; returns the devices
   * removed (reconcile at start, for devices outside the daemon's link prefix).
   */
  sweep?(networks: readonly NetworkRecord[], endpoints: readonly EndpointRecord[]): Promise<string[]>;
  /** Whether the endpoint's interfaces exist as they should (reconcile at start). */
  joined?(net: NetworkRecord, ep: EndpointRecord, target: JoinTarget): Promise<boolean>;
}

/** Docker's MAC for an IPv4 endpoint: 02:42 followed by the four address bytes. */
export function macForIPv4(ipv4: string): string {
  return ['02', '42', ...ipv4.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
}
