// The cluster contract against the in-memory implementation: one backend plays etcd, each join a host.
import { MemoryClusterBackend } from '../../src/cluster/memory-cluster.js';
import { runClusterContract } from '../contract/cluster-suite.js';

runClusterContract('memory', {
  newCluster: async () => {
    const backend = new MemoryClusterBackend();
    return { join: async (hostId, addr) => backend.join(hostId, addr), dispose: async () => undefined };
  },
});
