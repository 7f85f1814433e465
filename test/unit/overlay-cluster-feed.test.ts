// The overlay's control plane without a kernel: the cluster state's events become this host's
// remote endpoints (what the datapath encapsulates to) and names (what the embedded DNS
// answers), the VNI rules, and the DNS view that adds remote endpoints to the local store.
import { describe, expect, it } from 'vitest';
import type { ClusterEvent, ClusterListener, ClusterState, GlobalNetwork, RemoteEndpoint } from '../../src/cluster/cluster.js';
import type { Datapath, RemoteEndpointSpec } from '../../src/datapath/datapath.js';
import { feedRemoteEndpoints } from '../../src/drivers/overlay/cluster-feed.js';
import { RemoteEndpoints } from '../../src/drivers/overlay/remote-endpoints.js';
import { withRemoteNames } from '../../src/drivers/overlay/remote-names.js';
import { parseVni, vniOf } from '../../src/drivers/overlay/vni.js';
import { NameIndex } from '../../src/dns/name-index.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { IptablesDatapath } from '../../src/datapath/iptables/iptables-datapath.js';
import { ObservedStore } from '../../src/store/observed-store.js';

/** The overlay half of a datapath as a plain table: the kernel half is test/e2e/overlay.test.ts's. */
function tableDatapath(): { datapath: Datapath; table: Map<string, RemoteEndpointSpec> } {
  const table = new Map<string, RemoteEndpointSpec>();
  const datapath = {
    kind: 'ebpf',
    ensureRemoteEndpoint: async (r: RemoteEndpointSpec) => void table.set(r.ipv4, r),
    removeRemoteEndpoint: async (r: RemoteEndpointSpec) => void table.delete(r.ipv4),
    replaceRemoteEndpoints: async (all: readonly RemoteEndpointSpec[]) => {
      table.clear();
      for (const r of all) table.set(r.ipv4, r);
    },
  } as unknown as Datapath;
  return { datapath, table };
}

const NET: GlobalNetwork = { id: 'n1', name: 'ova', driver: 'overlay', vni: 4200, subnet: '10.91.0.0/24', gateway: '10.91.0.1', internal: false, attachable: true, options: {}, labels: {}, created: '' };

function endpoint(id: string, ipv4: string, hostId: string, hostAddress: string): RemoteEndpoint {
  return { networkId: NET.id, endpointId: id, name: `sb-${id}`, aliases: [`alias-${id}`], ipv4, mac: '02:42:0a:5b:00:02', hostId, hostAddress };
}

/** Just enough cluster state for the feed: a cache the test edits and the events it emits. */
class ScriptedCluster {
  readonly hostId = 'me';
  readonly advertiseAddr = '198.18.0.11';
  readonly eps = new Map<string, RemoteEndpoint>();
  readonly listeners = new Set<ClusterListener>();
  networks = () => [NET];
  network = (id: string) => (id === NET.id || id === NET.name ? NET : undefined);
  remoteEndpoints = () => [...this.eps.values()].filter((e) => e.hostId !== this.hostId);
  onChange(l: ClusterListener) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  emit(e: ClusterEvent) {
    for (const l of this.listeners) l(e);
  }
}

const settle = () => new Promise((r) => setTimeout(r, 10));

describe('overlay control plane', () => {
  it('follows the cluster: remote endpoints in, own endpoints never, withdrawals and re-lists out', async () => {
    const cluster = new ScriptedCluster();
    const { datapath, table } = tableDatapath();
    const remotes = new RemoteEndpoints(datapath);
    cluster.eps.set('a', endpoint('a', '10.91.0.21', 'h2', '198.18.0.12'));
    const off = feedRemoteEndpoints(cluster as unknown as ClusterState, remotes);
    await settle();
    expect([...table.values()]).toEqual([{ vni: 4200, ipv4: '10.91.0.21', mac: '02:42:0a:5b:00:02', vtep: '198.18.0.12', sandboxId: 'a', name: 'sb-a', aliases: ['alias-a'] }]);

    const b = endpoint('b', '10.91.0.31', 'h3', '198.18.0.13');
    cluster.eps.set('b', b);
    cluster.emit({ kind: 'endpoint-put', endpoint: b });
    cluster.emit({ kind: 'endpoint-put', endpoint: endpoint('mine', '10.91.0.11', 'me', '198.18.0.11') });
    await settle();
    expect([...table.keys()].sort()).toEqual(['10.91.0.21', '10.91.0.31']);

    cluster.eps.delete('a');
    cluster.emit({ kind: 'endpoint-delete', networkId: NET.id, endpointId: 'a' });
    await settle();
    expect([...table.keys()]).toEqual(['10.91.0.31']);

    // A host's lease expired: the cache lost its endpoints; the feed re-reads the whole view.
    cluster.eps.delete('b');
    cluster.emit({ kind: 'host-down', hostId: 'h3' });
    await settle();
    expect(table.size).toBe(0);
    expect(remotes.all()).toEqual([]);
    off();
  });

  it('carries IPv6: dual-stack and IPv6-only remote endpoints in, out by id, AAAA names on an IPv6-only overlay network', async () => {
    const cluster = new ScriptedCluster();
    const { datapath, table } = tableDatapath();
    const remotes = new RemoteEndpoints(datapath);
    const off = feedRemoteEndpoints(cluster as unknown as ClusterState, remotes);
    const dual = { ...endpoint('d', '10.91.0.41', 'h2', '198.18.0.12'), ipv6: 'fd91::41' };
    const only6: RemoteEndpoint = { networkId: NET.id, endpointId: 'o', name: 'sb-o', aliases: [], ipv6: 'fd91::51', mac: '02:42:00:00:00:51', hostId: 'h3', hostAddress: '198.18.0.13' };
    for (const e of [dual, only6]) {
      cluster.eps.set(e.endpointId, e);
      cluster.emit({ kind: 'endpoint-put', endpoint: e });
    }
    await settle();
    expect(remotes.all().map((r) => [r.ipv4, r.ipv6 ?? ''])).toEqual([
      ['10.91.0.41', 'fd91::41'],
      ['', 'fd91::51'],
    ]);
    expect(table.get('')).toMatchObject({ ipv6: 'fd91::51', vtep: '198.18.0.13' });
    cluster.eps.delete('o');
    cluster.emit({ kind: 'endpoint-delete', networkId: NET.id, endpointId: 'o' });
    await settle();
    expect(remotes.all().map((r) => r.name)).toEqual(['sb-d']);
    off();

    const store = new ObservedStore(new MemoryStore());
    const base = { created: '', scope: 'global' as const, internal: false, attachable: true, ingress: false, configOnly: false, ipamDriver: 'default', ipamOptions: {}, ipamConfig: [], labels: {}, predefined: false, driver: 'overlay' };
    store.networks.insert({ ...base, id: 'cc'.repeat(32), name: 'ov6', enableIPv4: false, enableIPv6: true, options: { 'com.docker.network.driver.overlay.vxlanid_list': '4300' }, subnet6: 'fd93::/64', gateway6: 'fd93::1', device: 'x3' });
    const six = new RemoteEndpoints(tableDatapath().datapath);
    await six.upsert({ vni: 4300, ipv4: '', ipv6: 'fd93::21', mac: '02:42:00:00:00:21', vtep: '198.18.0.12', sandboxId: 'e'.repeat(64), name: 'db', aliases: [] });
    const ov6 = [...NameIndex.from(withRemoteNames(store, six)).networks].find((n) => n.net.name === 'ov6')!;
    expect(ov6.names.get('db')?.map((t) => [t.ipv4, t.ipv6])).toEqual([['', 'fd93::21']]);
  });

  it('answers names of remote endpoints on the overlay network that carries their VNI only', async () => {
    const store = new ObservedStore(new MemoryStore());
    const base = { created: '', scope: 'global' as const, internal: false, attachable: true, ingress: false, configOnly: false, enableIPv4: true, enableIPv6: false, ipamDriver: 'default', ipamOptions: {}, ipamConfig: [], labels: {}, predefined: false, driver: 'overlay' };
    store.networks.insert({ ...base, id: 'aa'.repeat(32), name: 'ova', options: { 'com.docker.network.driver.overlay.vxlanid_list': '4200' }, subnet: '10.91.0.0/24', gateway: '10.91.0.1', device: 'x1' });
    store.networks.insert({ ...base, id: 'bb'.repeat(32), name: 'ovb', options: { 'com.docker.network.driver.overlay.vxlanid_list': '4201' }, subnet: '10.92.0.0/24', gateway: '10.92.0.1', device: 'x2' });
    const remotes = new RemoteEndpoints(tableDatapath().datapath);
    const view = withRemoteNames(store, remotes);
    const before = view.version;
    await remotes.upsert({ vni: 4200, ipv4: '10.91.0.21', mac: '02:42:0a:5b:00:15', vtep: '198.18.0.12', sandboxId: 'c'.repeat(64), name: 'web', aliases: ['api'] });
    expect(view.version).not.toBe(before);
    const index = NameIndex.from(view);
    const ova = [...index.networks].find((n) => n.net.name === 'ova')!;
    const ovb = [...index.networks].find((n) => n.net.name === 'ovb')!;
    expect(ova.names.get('web')?.map((t) => t.ipv4)).toEqual(['10.91.0.21']);
    expect(ova.names.get('api')?.map((t) => t.ipv4)).toEqual(['10.91.0.21']);
    expect(ovb.names.get('web')).toBeUndefined();
  });

  it('takes one VXLAN id per network, given or derived the same on every host', () => {
    expect(parseVni('4097')).toBe(4097);
    for (const bad of ['0', '16777216', '1,2', 'x', '-5']) expect(() => parseVni(bad)).toThrow(/vxlanid_list/);
    const id = '3f2a'.repeat(16);
    expect(vniOf({ id, options: {} })).toBe(vniOf({ id, options: {} }));
    expect(vniOf({ id, options: {} })).toBeGreaterThanOrEqual(4096);
    expect(vniOf({ id, options: { 'com.docker.network.driver.overlay.vxlanid_list': '77' } })).toBe(77);
  });

  it('is refused by the iptables datapath with a message that says what to do, before it touches the kernel', async () => {
    const dp = new IptablesDatapath({ linkPrefix: 'bnzz', instance: 'bnzz', uplink: { ifname: 'up0', ipv4: '198.18.0.1' }, root: '/nonexistent' });
    const net = { id: 'a'.repeat(64), name: 'ova', device: 'bnzz-x', subnet: '10.91.0.0/24', gateway: '10.91.0.1', internal: false, icc: true, masquerade: true, hostBinding: '', vni: 4200 };
    await expect(dp.ensureNetwork(net)).rejects.toThrow(/overlay networks need the ebpf datapath.*--datapath ebpf/);
  });
});
