// The store contract against the in-memory store: each harness is a fresh backing; open() opens it again.
import { MemoryBacking, MemoryStore } from '../../src/store/memory-store.js';
import { ObservedStore } from '../../src/store/observed-store.js';
import { runStoreContract } from '../contract/store-suite.js';

runStoreContract('memory', {
  newStore: () => {
    const backing = new MemoryBacking();
    return { open: () => new MemoryStore(backing), corrupt: (table, id, doc) => backing.setDoc(table, id, doc), dispose: () => undefined };
  },
});

// The daemon's view: the observing wrapper must pass every verb through unchanged.
runStoreContract('observed memory', {
  newStore: () => {
    const backing = new MemoryBacking();
    return { open: () => new ObservedStore(new MemoryStore(backing)), corrupt: (table, id, doc) => backing.setDoc(table, id, doc), dispose: () => undefined };
  },
});
