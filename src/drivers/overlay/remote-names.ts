/**
 * Names across hosts: the embedded DNS reads the local store through this view, which adds
 * every remote endpoint of an overlay network this host has as an endpoint of a sandbox that
 * lives elsewhere. The resolver then answers names on an overlay network whichever host runs
 * the sandbox, and rebuilds when either the store or the remote view moves.
 */
import type { DnsStore } from '../../dns/embedded-dns.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord } from '../../networks/model.js';
import type { RemoteEndpointRecord, RemoteEndpoints } from './remote-endpoints.js';
import { vniOf } from './vni.js';

interface Remote {
  sandboxes: SandboxRecord[];
  endpoints: EndpointRecord[];
}

/** Far above any local attachment order: a remote endpoint never becomes a local sandbox's first network. */
const REMOTE_SEQ = 1 << 30;

function remoteRecords(networks: readonly NetworkRecord[], remotes: readonly RemoteEndpointRecord[]): Remote {
  const byVni = new Map<number, NetworkRecord>();
  for (const n of networks) if (n.scope === 'global' && (n.subnet || n.subnet6)) byVni.set(vniOf(n), n);
  const sandboxes = new Map<string, SandboxRecord>();
  const endpoints: EndpointRecord[] = [];
  for (const r of remotes) {
    const net = byVni.get(r.vni);
    if (!net) continue;
    if (!sandboxes.has(r.sandboxId))
      sandboxes.set(r.sandboxId, {
        id: r.sandboxId,
        name: r.name,
        created: '',
        networkMode: net.name,
        hostname: r.name,
        extraHosts: [],
        dns: [],
        dnsSearch: [],
        command: [],
        state: 'running',
        netns: null,
      });
    endpoints.push({
      id: `remote:${r.vtep}:${r.ipv4 || r.ipv6}`,
      networkId: net.id,
      sandboxId: r.sandboxId,
      state: 'active',
      seq: REMOTE_SEQ,
      ifname: '',
      mac: r.mac,
      ...(r.ipv4 ? { ipv4: r.ipv4 } : {}),
      ...(r.ipv6 ? { ipv6: r.ipv6 } : {}),
      aliases: r.aliases,
      staticIp: true,
    });
  }
  return { sandboxes: [...sandboxes.values()], endpoints };
}

/** The store as the embedded DNS sees it: local records plus the remote endpoints of this host's overlay networks. */
export function withRemoteNames(store: DnsStore, remotes: RemoteEndpoints): DnsStore {
  let built = { store: -1, remotes: -1 };
  let cache: Remote = { sandboxes: [], endpoints: [] };
  const current = (): Remote => {
    if (built.store !== store.version || built.remotes !== remotes.version) {
      cache = remoteRecords(store.networks.all(), remotes.all());
      built = { store: store.version, remotes: remotes.version };
    }
    return cache;
  };
  return {
    get version() {
      // Both only grow: the sum moves whenever either does.
      return store.version + remotes.version;
    },
    networks: store.networks,
    // The local writes; a remote change moves the version without one, and the index rebuilds.
    ...(store.writeListeners ? { writeListeners: store.writeListeners } : {}),
    sandboxes: {
      all: () => [...store.sandboxes.all(), ...current().sandboxes],
      get: (id) => store.sandboxes.get(id) ?? current().sandboxes.find((s) => s.id === id),
    },
    endpoints: {
      all: () => [...store.endpoints.all(), ...current().endpoints],
      forSandbox: (id) => {
        const local = store.endpoints.forSandbox(id);
        return local.length > 0 ? local : current().endpoints.filter((e) => e.sandboxId === id);
      },
    },
  };
}
