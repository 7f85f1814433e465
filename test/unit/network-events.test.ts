// Network events (src/observe/network-events.ts) from the store's writes: the same events, in
// the same causal order, whether the source reports its writes (the daemon's ObservedStore: only
// written records are read back) or not (every record read on each check); a rolled-back write
// makes none; and with the write feed a check reads no more with 300 endpoints than with 3.
import { describe, expect, it } from 'vitest';
import { NetworkEvents, type EventMessage, type EventSource } from '../../src/observe/network-events.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { ObservedStore } from '../../src/store/observed-store.js';
import { endpoint, net, sandbox } from '../contract/store-suite.js';

function script(store: ObservedStore, events: NetworkEvents): string[] {
  const seen: string[] = [];
  events.subscribe((e: EventMessage) => seen.push(`${e.Action} ${e.Actor.ID} ${e.Actor.Attributes.container ?? ''}`.trim()));
  store.networks.insert(net('n1', 'one'));
  store.sandboxes.insert(sandbox('s1', 'c1'));
  store.sandboxes.insert(sandbox('s2', 'c2'));
  events.check();
  store.endpoints.insert({ ...endpoint('e1', 'n1', 's1', '10.1.0.2'), state: 'creating' });
  events.check();
  store.endpoints.update(endpoint('e1', 'n1', 's1', '10.1.0.2'));
  store.endpoints.insert(endpoint('e2', 'n1', 's2', '10.1.0.3'));
  events.check();
  // Rolled back: nothing happened.
  expect(() =>
    store.transaction(() => {
      store.endpoints.delete('e2');
      store.networks.insert(net('n2', 'two', '10.2.0.0/24'));
      throw new Error('undo');
    }),
  ).toThrow('undo');
  events.check();
  store.endpoints.delete('e1');
  store.endpoints.delete('e2');
  store.networks.delete('n1');
  events.check();
  return seen;
}

describe('network events', () => {
  const expected = ['create n1', 'connect n1 s1', 'connect n1 s2', 'disconnect n1 s1', 'disconnect n1 s2', 'destroy n1'];

  it('follows the write feed: create, connect once active, nothing for a rolled-back write, disconnect, destroy', () => {
    const store = new ObservedStore(new MemoryStore());
    expect(script(store, new NetworkEvents(store))).toEqual(expected);
  });

  it('gives the same events from whole reads when the source reports no writes', () => {
    const store = new ObservedStore(new MemoryStore());
    const noFeed: EventSource = { networks: store.networks, endpoints: store.endpoints };
    expect(script(store, new NetworkEvents(noFeed))).toEqual(expected);
  });

  it('reads back only the written records: no whole-table read after the first, whatever the count', () => {
    const store = new ObservedStore(new MemoryStore());
    const reads = { all: 0, get: 0 };
    const counted = <T extends { all(): unknown[]; get(id: string): unknown }>(t: T) => ({
      all: () => (reads.all++, t.all()),
      get: (id: string) => (reads.get++, t.get(id)),
    });
    const events = new NetworkEvents({ networks: counted(store.networks), endpoints: counted(store.endpoints), writeListeners: store.writeListeners } as EventSource);
    store.networks.insert(net('n1', 'one', '10.1.0.0/16'));
    for (let i = 0; i < 300; i++) {
      store.sandboxes.insert(sandbox(`s${i}`, `c${i}`));
      store.endpoints.insert(endpoint(`e${i}`, 'n1', `s${i}`, `10.1.${i >> 8}.${(i & 255) + 1}`));
    }
    events.check();
    const before = { ...reads };
    store.sandboxes.insert(sandbox('last', 'last'));
    store.endpoints.insert(endpoint('elast', 'n1', 'last', '10.1.200.1'));
    events.check();
    expect(reads.all - before.all).toBe(0);
    expect(reads.get - before.get).toBe(1);
  });
});
