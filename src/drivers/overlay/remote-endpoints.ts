/**
 * This host's view of the overlay endpoints that live on other hosts: what the cluster
 * state's watch reports (an endpoint joined on host X, left, a host's lease expired), applied
 * to the datapath so that encapsulation, the local ARP answers and isolation follow it.
 * Kept in memory: the cluster state is the source of truth and a re-list replaces it whole.
 */
import { unavailable } from '../../errors.js';
import { isOverlayCapable, type Datapath, type RemoteEndpointSpec } from '../../datapath/datapath.js';

/** A remote endpoint with what the names of its network resolve to it. */
export interface RemoteEndpointRecord extends RemoteEndpointSpec {
  /** The sandbox on the other host: its id (its first 12 characters resolve too), its name, the endpoint's aliases. */
  sandboxId: string;
  name: string;
  aliases: string[];
}

/** The one key of a remote endpoint here: its IPv4 address, or its IPv6 one on an IPv6-only network. */
export const remoteKey = (r: Pick<RemoteEndpointSpec, 'ipv4' | 'ipv6'>): string => r.ipv4 || r.ipv6 || '';

export class RemoteEndpoints {
  readonly #datapath: Datapath;
  readonly #byAddress = new Map<string, RemoteEndpointRecord>();
  /** Called after every change (the embedded DNS rebuilds its names). */
  readonly listeners = new Set<() => void>();
  /** Moves on every change (the embedded DNS compares it, as it does the store's). */
  version = 0;

  constructor(datapath: Datapath) {
    this.#datapath = datapath;
  }

  #overlay() {
    const d = this.#datapath;
    if (!isOverlayCapable(d)) throw unavailable(`the ${d.kind} datapath does not carry overlay networks`);
    return d;
  }

  all(): RemoteEndpointRecord[] {
    return [...this.#byAddress.values()];
  }

  async upsert(r: RemoteEndpointRecord): Promise<void> {
    // A re-publish may change the endpoint's other family: the old entries go first.
    const known = this.#byAddress.get(remoteKey(r));
    if (known && (known.ipv6 ?? '') !== (r.ipv6 ?? '')) await this.#overlay().removeRemoteEndpoint(known);
    await this.#overlay().ensureRemoteEndpoint(r);
    this.#byAddress.set(remoteKey(r), { ...r });
    this.#changed();
  }

  async remove(r: Pick<RemoteEndpointSpec, 'ipv4' | 'ipv6'>): Promise<void> {
    const known = this.#byAddress.get(remoteKey(r));
    if (!known) return;
    await this.#overlay().removeRemoteEndpoint(known);
    this.#byAddress.delete(remoteKey(r));
    this.#changed();
  }

  /** Exactly these (a re-list of the cluster state). */
  async replace(all: readonly RemoteEndpointRecord[]): Promise<void> {
    await this.#overlay().replaceRemoteEndpoints(all);
    this.#byAddress.clear();
    for (const r of all) this.#byAddress.set(remoteKey(r), { ...r });
    this.#changed();
  }

  #changed(): void {
    this.version++;
    for (const l of this.listeners) l();
  }
}
