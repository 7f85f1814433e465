/**
 * What global-scope (overlay) networks need from the cluster store when the daemon runs with
 * --cluster-store: the cluster records the network (id, name, subnet, VNI) before any host
 * builds it, hands out every endpoint's address by compare-and-swap, and publishes the
 * endpoint (name, aliases, MAC, this host's VTEP) bound to this host's lease. ClusterService
 * implements it; without --cluster-store there is none and overlay stays single-host.
 */
import type { GlobalNetwork } from '../cluster/cluster.js';
import { ServiceError } from '../errors.js';
import { OverlayOption } from '../drivers/overlay/vni.js';
import type { DriverName, NetworkRecord } from './model.js';

export interface GlobalScope {
  createNetwork(req: { id: string; name: string; subnet?: string; subnet6?: string; vni?: number; internal?: boolean; labels?: Record<string, string> }): Promise<GlobalNetwork>;
  deleteNetwork(id: string): Promise<void>;
  /** Reserves the endpoint's address of each family in the cluster (the given one, else a free one) and publishes it; returns them. */
  connect(req: { network: string; endpointId: string; name: string; aliases?: string[]; ipv4?: string; ipv6?: string }): Promise<{ ipv4?: string; ipv6?: string }>;
  /** Withdraws the endpoint and frees its address; one this host does not hold is a no-op. */
  disconnect(networkId: string, endpointId: string): Promise<void>;
}

/** A network the cluster holds, as this host stores it (same id, name, subnet and VNI everywhere). */
export function localRecordOf(g: GlobalNetwork, device: string | undefined): NetworkRecord {
  return {
    id: g.id,
    name: g.name,
    created: g.created,
    driver: g.driver as DriverName,
    scope: 'global',
    internal: g.internal,
    attachable: g.attachable,
    ingress: false,
    configOnly: false,
    enableIPv4: g.subnet !== undefined,
    enableIPv6: g.subnet6 !== undefined,
    ipamDriver: 'default',
    ipamOptions: {},
    ipamConfig: [...(g.subnet ? [{ Subnet: g.subnet, Gateway: g.gateway }] : []), ...(g.subnet6 ? [{ Subnet: g.subnet6, Gateway: g.gateway6 }] : [])],
    options: { ...g.options, [OverlayOption.vxlanIdList]: String(g.vni) },
    labels: { ...g.labels },
    predefined: false,
    ...(g.subnet ? { subnet: g.subnet, gateway: g.gateway } : {}),
    device,
    ...(g.subnet6 ? { subnet6: g.subnet6, gateway6: g.gateway6 } : {}),
  };
}

/** A withdrawal of an endpoint this host's cluster journal does not know: nothing to do. */
export function isNotFound(err: unknown): boolean {
  return err instanceof ServiceError && err.kind === 'not-found';
}
