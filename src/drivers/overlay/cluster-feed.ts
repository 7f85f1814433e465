/**
 * From the cluster state to this host's datapath and names: every endpoint of a global
 * network that lives on another host becomes a remote endpoint here (its VNI, address, MAC,
 * its host's VTEP, its names). Changes are applied in the order the watch reports them; a
 * host going down, a network change or a re-list (`resync`) replaces the whole view.
 */
import type { ClusterEvent, ClusterState, GlobalNetwork, RemoteEndpoint } from '../../cluster/cluster.js';
import { remoteKey, type RemoteEndpointRecord, type RemoteEndpoints } from './remote-endpoints.js';

interface FeedLog {
  warn(msg: string): void;
}

/** The record this host keeps for an endpoint elsewhere; undefined for this host's own or one without an address. */
export function remoteRecord(cluster: Pick<ClusterState, 'hostId'>, net: GlobalNetwork, ep: RemoteEndpoint): RemoteEndpointRecord | undefined {
  if (ep.hostId === cluster.hostId || (!ep.ipv4 && !ep.ipv6)) return undefined;
  return { vni: net.vni, ipv4: ep.ipv4 ?? '', ...(ep.ipv6 ? { ipv6: ep.ipv6 } : {}), mac: ep.mac, vtep: ep.hostAddress, sandboxId: ep.endpointId, name: ep.name, aliases: ep.aliases };
}

/** What the feed reads: a ClusterState, or a view over one that is (re)joined in the background (reads may throw until then). */
export type ClusterView = Pick<ClusterState, 'hostId' | 'onChange' | 'networks' | 'network' | 'remoteEndpoints'>;

/** Keeps `remotes` equal to the cluster's remote endpoints; returns the unsubscribe. */
export function feedRemoteEndpoints(cluster: ClusterView, remotes: RemoteEndpoints, log?: FeedLog): () => void {
  /** network/endpoint -> addresses, to withdraw an endpoint the delete event names by id only. */
  const addressOf = new Map<string, { ipv4: string; ipv6?: string }>();
  let chain: Promise<void> = Promise.resolve();
  const run = (what: string, step: () => Promise<void>) => {
    chain = chain.then(step).catch((err: Error) => log?.warn(`overlay: applying ${what} failed: ${err.message}`));
  };
  const full = () =>
    run('a re-list', async () => {
      addressOf.clear();
      const view: RemoteEndpointRecord[] = [];
      for (const net of cluster.networks())
        for (const ep of cluster.remoteEndpoints(net.id)) {
          const r = remoteRecord(cluster, net, ep);
          if (!r) continue;
          addressOf.set(`${ep.networkId}/${ep.endpointId}`, { ipv4: r.ipv4, ipv6: r.ipv6 });
          view.push(r);
        }
      await remotes.replace(view);
    });
  const onEvent = (e: ClusterEvent) => {
    switch (e.kind) {
      case 'endpoint-put': {
        let net: GlobalNetwork | undefined;
        try {
          net = cluster.network(e.endpoint.networkId);
        } catch (err) {
          log?.warn(`overlay: endpoint ${e.endpoint.endpointId}: ${(err as Error).message}`);
          return;
        }
        const r = net && remoteRecord(cluster, net, e.endpoint);
        if (!r) return;
        addressOf.set(`${e.endpoint.networkId}/${e.endpoint.endpointId}`, { ipv4: r.ipv4, ipv6: r.ipv6 });
        return run(`endpoint ${e.endpoint.endpointId}`, () => remotes.upsert(r));
      }
      case 'endpoint-delete': {
        const key = `${e.networkId}/${e.endpointId}`;
        const addrs = addressOf.get(key);
        if (!addrs || !remoteKey(addrs)) return;
        addressOf.delete(key);
        return run(`endpoint ${e.endpointId} withdrawn`, () => remotes.remove(addrs));
      }
      default:
        // host-up (this host's own (re)join included), host-down, network changes, resync: re-read the whole view.
        return full();
    }
  };
  const off = cluster.onChange(onEvent);
  full();
  return off;
}

/**
 * A ClusterView over a service that joins (and re-joins) the cluster in the background and
 * exposes the joined state as `cluster` (throwing until joined): the feed's re-list on the
 * host's own host-up then fills this host's view, and reads before that are logged and skipped.
 */
export function joinedView(svc: { readonly hostId: string; onChange: ClusterState['onChange']; readonly cluster: ClusterState }): ClusterView {
  return {
    get hostId() {
      return svc.hostId;
    },
    onChange: (l) => svc.onChange(l),
    networks: () => svc.cluster.networks(),
    network: (id) => svc.cluster.network(id),
    remoteEndpoints: (id) => svc.cluster.remoteEndpoints(id),
  };
}
