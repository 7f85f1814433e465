// The cluster contract against a real etcd 3.4 started in a lab namespace (one server per
// file; each case gets its own key prefix, so cases never see each other's keys). The test
// process reaches etcd through the unix socket etcd serves in the lab's scratch directory.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { EtcdCluster } from '../../src/cluster/etcd-cluster.js';
import type { ClusterState } from '../../src/cluster/cluster.js';
import { LabEtcd } from '../../src/lab/etcd.js';
import { Lab } from '../../src/lab/lab.js';
import { requireTool } from '../support/requirements.js';
import { runClusterContract } from '../contract/cluster-suite.js';

let lab: Lab;
let etcd: LabEtcd;

beforeAll(async () => {
  requireTool('etcd', 'etcd-server');
  lab = await Lab.create({ uplink: false });
  etcd = await LabEtcd.start(lab, { ns: lab.host, ip: '127.0.0.1' });
});

afterAll(async () => {
  await lab?.destroy();
});

runClusterContract('etcd', {
  newCluster: async () => {
    const prefix = `/contract-${randomBytes(4).toString('hex')}/`;
    const joined: ClusterState[] = [];
    return {
      join: async (hostId, advertiseAddr) => {
        const c = await EtcdCluster.join({ endpoints: [etcd.socketHost], hostId, advertiseAddr, prefix, leaseTtl: 5 });
        joined.push(c);
        return c;
      },
      dispose: async () => {
        await Promise.all(joined.map((c) => c.close()));
      },
    };
  },
});
