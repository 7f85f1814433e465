// The embedded DNS's name index kept up to date write by write (LiveNameIndex over the daemon's
// ObservedStore): after any sequence of creates, connects, aliases, renames, state changes,
// disconnects, removals and rolled-back transactions it answers exactly as an index built
// whole from the store, and it never reads every sandbox again once built.
import { describe, expect, it } from 'vitest';
import { LiveNameIndex, NameIndex } from '../../src/dns/name-index.js';
import type { SandboxRecord } from '../../src/networks/model.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { ObservedStore } from '../../src/store/observed-store.js';
import { endpoint, net, sandbox } from '../contract/store-suite.js';

function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Everything a query can observe of an index. */
function view(index: NameIndex, sandboxIds: readonly string[]): unknown {
  const networks = [...index.networks]
    .map((n) => [n.net.id, [...n.names].map(([name, ts]) => `${name}=${ts.map((t) => `${t.ipv4}|${t.ipv6}|${t.sandbox.id}|${t.sandbox.name}`).join(',')}`).sort()] as const)
    .sort(([a], [b]) => a.localeCompare(b));
  const attachments = [...index.attachments].map((a) => `${a.endpoint.id}:${a.sandbox.name}:${a.network.net.id}`).sort();
  const perSandbox = sandboxIds.map((id) => [id, index.networksOf(id).map((n) => n.net.id), index.lookup(id, 'c1')?.targets.map((t) => t.ipv4) ?? null]);
  return { networks, attachments, perSandbox };
}

/** The store as the index reads it, counting whole reads of the sandboxes; extra() moves the version without a reported write. */
function countingSource(store: ObservedStore, extra: () => number = () => 0) {
  const reads = { whole: 0 };
  const source = {
    get version() {
      return store.version + extra();
    },
    networks: store.networks,
    sandboxes: { all: () => (reads.whole++, store.sandboxes.all()), get: (id: string) => store.sandboxes.get(id) },
    endpoints: store.endpoints,
    writeListeners: store.writeListeners,
  };
  return { source, reads };
}

describe('the live name index', () => {
  it('answers as a whole rebuild after every write, reading back only the sandboxes written', () => {
    const rnd = seeded(20261202);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    const store = new ObservedStore(new MemoryStore());
    store.networks.insert(net('n1', 'one', '10.1.0.0/24'));
    store.networks.insert(net('n2', 'two', '10.2.0.0/24'));
    const { source, reads } = countingSource(store);
    const live = new LiveNameIndex(source);
    live.current;
    const ids: string[] = [];
    let seq = 0;
    let host = 10;
    for (let step = 0; step < 400; step++) {
      const existing = ids.filter((id) => store.sandboxes.get(id));
      const op = existing.length < 3 ? 'create' : pick(['create', 'create', 'connect', 'disconnect', 'alias', 'rename', 'state', 'remove', 'rollback']);
      const sb = existing.length ? store.sandboxes.get(pick(existing))! : undefined;
      const eps = sb ? store.endpoints.forSandbox(sb.id) : [];
      switch (op) {
        case 'create': {
          const id = `s${step}`;
          ids.push(id);
          // Names repeat on purpose (c1 ... c4 across sandboxes over time): a name with several targets keeps their order.
          store.transaction(() => {
            store.sandboxes.insert({ ...sandbox(id, `c${step}`), name: existing.some((x) => store.sandboxes.get(x)?.name === `c${step % 5}`) ? `c${step}` : `c${step % 5}` });
            store.endpoints.insert({ ...endpoint(`e${step}`, pick(['n1', 'n2']), id, '', seq++), ipv4: `10.${pick([1, 2])}.0.${host++ % 250}`, aliases: rnd() < 0.5 ? ['c1'] : [] });
          });
          break;
        }
        case 'connect': {
          const free = ['n1', 'n2'].filter((n) => !eps.some((e) => e.networkId === n));
          if (free.length) store.endpoints.insert({ ...endpoint(`e${step}`, free[0], sb!.id, `10.${free[0].slice(1)}.1.${host++ % 250}`, seq++), aliases: ['c1'] });
          break;
        }
        case 'disconnect':
          if (eps.length) store.endpoints.delete(pick(eps).id);
          break;
        case 'alias':
          if (eps.length) store.endpoints.update({ ...eps[0], aliases: [...eps[0].aliases, `a${step}`] });
          break;
        case 'rename':
          if (!store.sandboxes.byName(`r${step}`)) store.sandboxes.update({ ...sb!, name: `r${step}` });
          break;
        case 'state':
          store.sandboxes.update({ ...sb!, state: pick<SandboxRecord['state']>(['created', 'running', 'exited', 'creating', 'removing']) });
          break;
        case 'remove':
          store.transaction(() => {
            for (const e of eps) store.endpoints.delete(e.id);
            store.sandboxes.delete(sb!.id);
          });
          break;
        case 'rollback':
          expect(() =>
            store.transaction(() => {
              for (const e of eps) store.endpoints.delete(e.id);
              store.sandboxes.delete(sb!.id);
              throw new Error('undo');
            }),
          ).toThrow('undo');
          break;
      }
      if (rnd() < 0.3) continue; // several writes between two looks, as between two queries
      const before = reads.whole;
      const incremental = view(live.current, ids);
      expect(reads.whole, `step ${step} (${op}) read every sandbox`).toBe(before);
      expect(incremental, `step ${step} (${op})`).toEqual(view(NameIndex.from(store), ids));
    }
  });

  it('rebuilds whole when the source changed without reporting it (a remote endpoint, a network)', () => {
    const store = new ObservedStore(new MemoryStore());
    store.networks.insert(net('n1', 'one'));
    let extra = 0;
    const { source, reads } = countingSource(store, () => extra);
    const live = new LiveNameIndex(source);
    live.current;
    store.sandboxes.insert(sandbox('s1', 'web'));
    store.endpoints.insert(endpoint('e1', 'n1', 's1', '10.1.0.2', 1));
    expect(live.current.lookup('s1', 'web')?.targets.map((t) => t.ipv4)).toEqual(['10.1.0.2']);
    expect(reads.whole).toBe(1);
    extra++;
    live.current;
    expect(reads.whole).toBe(2);
    store.networks.insert(net('n2', 'two', '10.2.0.0/24'));
    expect([...live.current.networks].map((n) => n.net.id).sort()).toEqual(['n1', 'n2']);
    expect(reads.whole).toBe(3);
  });
});
