/**
 * From the cluster state to this host's global networks: a network another host created is
 * built here with the same id, name, subnet and VNI; one removed from the cluster is removed
 * here. Every network change, host (re)join and re-list re-reads the whole list (networks are
 * few and change rarely); syncs never overlap and a burst of changes costs one more sync.
 */
import type { GlobalNetwork } from '../../cluster/cluster.js';
import type { ClusterView } from './cluster-feed.js';

interface FeedLog {
  warn(msg: string): void;
}

export interface GlobalNetworkSink {
  syncGlobal(networks: readonly GlobalNetwork[], log: FeedLog): Promise<void>;
}

/** Keeps `sink`'s global networks equal to the cluster's; returns the unsubscribe. */
export function feedGlobalNetworks(cluster: Pick<ClusterView, 'onChange' | 'networks'>, sink: GlobalNetworkSink, log: FeedLog, afterResync?: () => Promise<void>): () => void {
  let resynced = false;
  let running = false;
  let again = false;
  const sync = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        let list: GlobalNetwork[];
        try {
          list = cluster.networks();
        } catch {
          return; // not joined yet: the join's re-list brings us back
        }
        await sink.syncGlobal(list, log).catch((err: Error) => log.warn(`overlay: syncing the cluster's networks failed: ${err.message}`));
        if (resynced && afterResync) {
          resynced = false;
          await afterResync().catch((err: Error) => log.warn(`overlay: checking this host's endpoints against the cluster failed: ${err.message}`));
        }
      } while (again);
    } finally {
      running = false;
    }
  };
  const off = cluster.onChange((e) => {
    if (e.kind === 'endpoint-put' || e.kind === 'endpoint-delete' || e.kind === 'host-down') return;
    if (e.kind === 'resync') resynced = true;
    void sync();
  });
  void sync();
  return off;
}
