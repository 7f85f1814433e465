// The cluster's global networks -> this host's networks, without a kernel: which events make a
// host re-read the list, that a burst of changes never runs two syncs at once and still ends on
// the newest list, that a host not yet joined waits for its join's re-list, and that the check
// of this host's own endpoints runs after a re-list only.
import { describe, expect, it } from 'vitest';
import type { ClusterEvent, ClusterListener, GlobalNetwork } from '../../src/cluster/cluster.js';
import { feedGlobalNetworks } from '../../src/drivers/overlay/network-feed.js';
import { localRecordOf } from '../../src/networks/global-scope.js';

const net = (id: string, vni: number): GlobalNetwork => ({ id, name: `ov-${id}`, driver: 'overlay', vni, subnet: '10.91.0.0/24', gateway: '10.91.0.1', internal: false, attachable: true, options: {}, labels: { a: 'b' }, created: '2026-12-02T00:00:00Z' });

class Scripted {
  list: GlobalNetwork[] | undefined;
  readonly listeners = new Set<ClusterListener>();
  onChange(l: ClusterListener) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  networks(): GlobalNetwork[] {
    if (!this.list) throw new Error('not joined');
    return this.list;
  }
  emit(e: ClusterEvent) {
    for (const l of this.listeners) l(e);
  }
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('overlay network feed', () => {
  it('waits for the join, follows network changes one sync at a time, ends on the newest list', async () => {
    const cluster = new Scripted();
    const seen: string[][] = [];
    let running = 0;
    let overlapped = false;
    const sink = {
      async syncGlobal(list: readonly GlobalNetwork[]) {
        if (++running > 1) overlapped = true;
        await tick();
        seen.push(list.map((n) => n.id));
        running--;
      },
    };
    const checks: number[] = [];
    const off = feedGlobalNetworks(cluster, sink, { warn: () => undefined }, async () => void checks.push(seen.length));
    await tick();
    expect(seen).toEqual([]); // not joined: nothing read, nothing thrown
    cluster.list = [net('a', 4096)];
    cluster.emit({ kind: 'resync' });
    cluster.list = [net('a', 4096), net('b', 4097)];
    cluster.emit({ kind: 'network-put', network: net('b', 4097) });
    cluster.emit({ kind: 'endpoint-delete', networkId: 'a', endpointId: 'x' }); // not a network change
    await tick();
    await tick();
    await tick();
    expect(overlapped).toBe(false);
    expect(seen.at(-1)).toEqual(['a', 'b']);
    expect(seen.length).toBeLessThanOrEqual(2);
    expect(checks).toEqual([1]); // after the re-list's sync, once
    off();
    cluster.emit({ kind: 'network-delete', networkId: 'b' });
    await tick();
    expect(seen.length).toBeLessThanOrEqual(2);
  });

  it('builds the local record with the cluster id, subnet and VNI as the vxlanid_list option', () => {
    const r = localRecordOf(net('a', 5000), 'bnxa');
    expect(r).toMatchObject({ id: 'a', name: 'ov-a', scope: 'global', driver: 'overlay', subnet: '10.91.0.0/24', gateway: '10.91.0.1', device: 'bnxa', enableIPv6: false, labels: { a: 'b' } });
    expect(r.options['com.docker.network.driver.overlay.vxlanid_list']).toBe('5000');
    expect(r.ipamConfig).toEqual([{ Subnet: '10.91.0.0/24', Gateway: '10.91.0.1' }]);
  });
});
