/**
 * A network driver decides which kernel objects a network and an attachment are made of
 * (moby's driverapi verbs: CreateNetwork, DeleteNetwork, Join, Leave). One folder per driver.
 * Every call is idempotent: an object already in the wanted form is success.
 */
import type { DriverName, EndpointRecord, NetworkRecord, SandboxRecord } from '../networks/model.js';

/** Where a sandbox's namespace is: a path under /run/netns, or null for the host's own. */
export interface SandboxTarget {
  record: SandboxRecord;
  netnsPath: string | null;
}

export interface Driver {
  readonly name: DriverName;
  /** Whether a sandbox in this mode has a namespace of its own. */
  readonly ownNamespace: boolean;
  /** Refuses, with the error moby would give, a new network whose kernel objects would clash with what exists. */
  checkNetwork?(net: NetworkRecord): Promise<void>;
  createNetwork(net: NetworkRecord): Promise<void>;
  deleteNetwork(net: NetworkRecord): Promise<void>;
  /**
   * Builds the attachment's interfaces (and brings the sandbox's loopback up); with
   * `defaultRoute` the endpoint also becomes the sandbox's default route. Returns the endpoint
   * with what the driver chose (host interface, MAC).
   */
  join(net: NetworkRecord, ep: EndpointRecord, sb: SandboxTarget, opts?: { defaultRoute?: boolean }): Promise<EndpointRecord>;
  leave(net: NetworkRecord, ep: EndpointRecord, sb: SandboxTarget): Promise<void>;
  /** Makes ep the sandbox's default route (it became the primary endpoint). */
  setDefaultRoute?(net: NetworkRecord, ep: EndpointRecord, sb: SandboxTarget): Promise<void>;
  /** Whether the endpoint's interfaces exist as they should (reconcile at start). */
  joined?(net: NetworkRecord, ep: EndpointRecord, sb: SandboxTarget): Promise<boolean>;
}

/** Docker's MAC for an IPv4 endpoint: 02:42 followed by the four address bytes. */
export function macForIPv4(ipv4: string): string {
  return ['02', '42', ...ipv4.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
}
