// Map handles against the real kernel: CRUD, every error case, batches, per-CPU values, pins.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BpfError } from '../../src/datapath/libbpf/errors.js';
import { BpfMap, BpfObject, MapType, PerCpuMap, possibleCpus } from '../../src/datapath/libbpf/bpf.js';
import { encodeAll, struct, u8, u16, u32, u64, pad } from '../../src/datapath/libbpf/codec.js';
import { native } from '../../src/datapath/libbpf/native.js';
import { Lab } from '../../src/lab/lab.js';
import { bpfObject, projectRoot } from '../../src/paths.js';

const fixtureKey = struct({ addr: u32, port: u16, proto: u8, pad: pad(1), cookie: u64 });
const fixtureValue = struct({ hits: u64 });
const key = (n: number) => ({ addr: n, port: 80, proto: 6, cookie: n * 1000 });

let lab: Lab;
let obj: BpfObject;
let hash: BpfMap<{ addr: number; port: number; proto: number; cookie: number }, { hits: number }>;

beforeAll(async () => {
  lab = await Lab.create({ uplink: false });
  obj = BpfObject.load(bpfObject('fixture_maps'), { pinRoot: lab.pinDir() });
  hash = obj.map('fixture_hash', fixtureKey, fixtureValue);
});

afterAll(async () => {
  hash?.close();
  obj?.close();
  await lab?.destroy();
});

describe('object', () => {
  it('lists its programs and maps with their shapes', () => {
    expect(obj.programs()).toEqual([{ name: 'fixture_xdp', section: 'xdp', type: 6 }]);
    const maps = Object.fromEntries(obj.maps().map((m) => [m.name, m]));
    expect(maps.fixture_hash).toMatchObject({ type: MapType.HASH, keySize: 16, valueSize: 8, maxEntries: 8 });
    expect(maps.fixture_hash.pinPath).toBe(join(lab.pinDir(), 'fixture_hash'));
    expect(maps.fixture_percpu).toMatchObject({ type: MapType.PERCPU_HASH });
  });

  it('reports the map info the kernel holds', () => {
    expect(hash.info).toMatchObject({ name: 'fixture_hash', type: MapType.HASH, keySize: 16, valueSize: 8, maxEntries: 8, perCpu: false });
  });

  it('applies const globals and map sizes before load', () => {
    const o = BpfObject.load(bpfObject('fixture_maps'), { consts: { fixture_verdict: Buffer.from([1, 0, 0, 0]) }, maxEntries: { fixture_lru: 7 } });
    try {
      expect(o.program('fixture_xdp').testRun(Buffer.alloc(64)).retval).toBe(1); // XDP_DROP
      expect(o.maps().find((m) => m.name === 'fixture_lru')?.maxEntries).toBe(7);
    } finally {
      o.close();
    }
  });

  it('names the object, program and map in its errors', () => {
    expect(() => BpfObject.load('/nonexistent/x.bpf.o')).toThrow(BpfError);
    expect(() => BpfObject.load('/nonexistent/x.bpf.o')).toThrow(/open object "\/nonexistent\/x.bpf.o"/);
    expect(() => obj.program('nope')).toThrow(/no program "nope"/);
    expect(() => obj.map('nope', u32, u32)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => BpfObject.load(bpfObject('fixture_maps'), { consts: { fixture_verdict: Buffer.from([1]) } })).toThrow(
      /constant "fixture_verdict": value is 1 bytes, expected 4/,
    );
    expect(() => BpfObject.load(bpfObject('fixture_maps'), { consts: { nope: Buffer.from([1]) } })).toThrow(
      expect.objectContaining({ code: 'ENOENT', message: expect.stringMatching(/constant "nope"/) }),
    );
    // A file that is not an ELF object.
    expect(() => BpfObject.load(join(projectRoot, 'package.json'))).toThrow(BpfError);
  });

  it('refuses codecs whose size does not match the map', () => {
    expect(() => obj.map('fixture_hash', u32, fixtureValue)).toThrow(/key codec is 4 bytes, map key is 16/);
    expect(() => obj.map('fixture_percpu', u32, fixtureValue)).toThrow(/per-CPU: use PerCpuMap/);
  });
});

describe('map CRUD', () => {
  it('creates, reads, updates and deletes', () => {
    expect(hash.get(key(1))).toBeUndefined();
    hash.set(key(1), { hits: 1 });
    expect(hash.get(key(1))).toEqual({ hits: 1 });
    hash.set(key(1), { hits: 2 }, 'only-existing');
    expect(hash.get(key(1))).toEqual({ hits: 2 });
    expect(hash.delete(key(1))).toBe(true);
    expect(hash.delete(key(1))).toBe(false);
    expect(hash.get(key(1))).toBeUndefined();
  });

  it('refuses only-new on an existing key and only-existing on a missing one', () => {
    hash.set(key(2), { hits: 1 }, 'only-new');
    expect(() => hash.set(key(2), { hits: 9 }, 'only-new')).toThrow(
      expect.objectContaining({ name: 'BpfError', code: 'EEXIST', message: expect.stringMatching(/^map "fixture_hash" update/) }),
    );
    expect(() => hash.set(key(3), { hits: 9 }, 'only-existing')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(hash.get(key(2))).toEqual({ hits: 1 });
    hash.delete(key(2));
  });

  it('refuses a new key when the map is full, and keeps what it holds', () => {
    const keys = Array.from({ length: 8 }, (_, i) => key(100 + i));
    keys.forEach((k, i) => hash.set(k, { hits: i }));
    expect(() => hash.set(key(200), { hits: 1 })).toThrow(expect.objectContaining({ code: 'E2BIG', message: expect.stringMatching(/map is full/) }));
    hash.set(keys[0], { hits: 42 }); // an existing key still updates
    expect(hash.get(keys[0])).toEqual({ hits: 42 });
    expect(hash.keys()).toHaveLength(8);
    expect(hash.deleteMany(keys)).toBe(8);
    expect(hash.keys()).toEqual([]);
  });

  it('iterates keys and entries', () => {
    hash.set(key(1), { hits: 10 });
    hash.set(key(2), { hits: 20 });
    const entries = hash.entries().sort((a, b) => a[0].addr - b[0].addr);
    expect(entries).toEqual([
      [key(1), { hits: 10 }],
      [key(2), { hits: 20 }],
    ]);
    expect(hash.keys().map((k) => k.addr).sort()).toEqual([1, 2]);
    hash.deleteMany([key(1), key(2)]);
  });

  it('writes and deletes in batches', () => {
    const lru = obj.map('fixture_lru', u32, fixtureValue);
    // Half the LRU's 1,024: an LRU evicts before it is full (free nodes are taken per CPU), so a
    // fuller one may drop any key, the ones this test counts on included.
    const entries = Array.from({ length: 500 }, (_, i) => [i, { hits: i * 2 }] as const);
    expect(lru.setMany(entries)).toBe(500);
    expect(lru.get(499)).toEqual({ hits: 998 });
    expect(lru.entries()).toHaveLength(500);
    // The key that exists first: a batch stops at its first error.
    expect(() => lru.setMany([[1, { hits: 1 }], [5000, { hits: 1 }]], 'only-new')).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(lru.deleteMany(entries.map((e) => e[0]))).toBe(500);
    expect(lru.keys().filter((k) => k !== 5000)).toEqual([]);
    lru.close();
  });

  it('dumps, writes and deletes packed entries', () => {
    const lru = obj.map('fixture_lru', u32, fixtureValue);
    lru.deleteMany(lru.keys()); // what the test before left
    const keys = Array.from({ length: 300 }, (_, i) => i + 1);
    const packedKeys = encodeAll(u32, keys);
    expect(lru.setPacked(packedKeys, encodeAll(fixtureValue, keys.map((k) => ({ hits: k * 3 }))))).toBe(300);
    const { keys: k, values: v, count } = lru.dumpPacked();
    expect(count).toBe(300);
    expect(k.length).toBe(300 * u32.size);
    const dumped = new Map(Array.from({ length: count }, (_, i) => [k.readUInt32LE(i * 4), v.readBigUInt64LE(i * fixtureValue.size)]));
    expect(new Map(lru.entries().map(([key, val]) => [key, BigInt(val.hits)]))).toEqual(dumped);
    expect(lru.deleteEncoded(packedKeys.subarray(0, 4))).toBe(true);
    expect(lru.deleteEncoded(packedKeys.subarray(0, 4))).toBe(false);
    expect(() => lru.deletePacked(packedKeys)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    lru.deletePacked(packedKeys.subarray(4));
    expect(lru.dumpPacked().count).toBe(lru.keys().length);
    lru.deleteMany(lru.keys());
    expect(lru.dumpPacked()).toMatchObject({ count: 0 });
    lru.close();
  });

  it('reads and writes per-CPU values', () => {
    const percpu = obj.perCpuMap('fixture_percpu', u32, fixtureValue);
    const cpus = possibleCpus();
    expect(percpu.info.cpus).toBe(cpus);
    percpu.set(7, { hits: 5 });
    expect(percpu.get(7)).toEqual(Array.from({ length: cpus }, () => ({ hits: 5 })));
    const distinct = Array.from({ length: cpus }, (_, i) => ({ hits: i + 1 }));
    percpu.set(7, distinct);
    expect(percpu.get(7)).toEqual(distinct);
    expect(percpu.entries()).toEqual([[7, distinct]]);
    expect(() => percpu.set(7, [{ hits: 1 }].concat(distinct))).toThrow(/per-CPU values, expected/);
    expect(percpu.delete(7)).toBe(true);
    percpu.close();
  });

  it('treats array maps as fixed slots', () => {
    const arr = obj.map('fixture_array', u32, u64);
    expect(arr.get(3)).toBe(0);
    arr.set(3, 99);
    expect(arr.get(3)).toBe(99);
    expect(arr.get(4)).toBeUndefined(); // out of range
    expect(() => arr.set(4, 1)).toThrow(expect.objectContaining({ code: 'E2BIG' }));
    expect(() => arr.delete(0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => arr.set(0, 1, 'only-new')).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    arr.close();
  });
});

describe('pins', () => {
  it('reopens a map pinned by this process in a new process, with its contents', () => {
    hash.set(key(9), { hits: 99 });
    const pin = join(lab.pinDir(), 'fixture_hash');
    const script = `
      import { BpfMap } from './src/datapath/libbpf/bpf.ts';
      import { struct, u8, u16, u32, u64, pad } from './src/datapath/libbpf/codec.ts';
      const k = struct({ addr: u32, port: u16, proto: u8, pad: pad(1), cookie: u64 });
      const m = BpfMap.openPinned(${JSON.stringify(pin)}, k, struct({ hits: u64 }));
      console.log(JSON.stringify(m.entries()));
      m.set({ addr: 10, port: 80, proto: 6, cookie: 10000 }, { hits: 100 });`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: projectRoot, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual([[key(9), { hits: 99 }]]);
    expect(hash.get(key(10))).toEqual({ hits: 100 }); // the other process wrote into the same map
    hash.deleteMany([key(9), key(10)]);
  });

  it('reuses pinned maps when the object is loaded again with the same pin root', () => {
    hash.set(key(5), { hits: 55 });
    const again = BpfObject.load(bpfObject('fixture_maps'), { pinRoot: lab.pinDir() });
    try {
      const m = again.map('fixture_hash', fixtureKey, fixtureValue);
      expect(m.info.id).toBe(hash.info.id);
      expect(m.get(key(5))).toEqual({ hits: 55 });
      m.close();
    } finally {
      again.close();
      hash.delete(key(5));
    }
  });

  it('carries the entries of a pin made in another shape into the map a load makes instead (carryOver); without it the load is refused', () => {
    const root = join(lab.pinDir(), 'carry');
    mkdirSync(root);
    const load = (opts: { maxEntries?: Record<string, number>; carryOver?: string[] } = {}) => BpfObject.load(bpfObject('fixture_maps'), { pinRoot: root, ...opts });
    const first = load();
    const m1 = first.map('fixture_hash', fixtureKey, fixtureValue);
    m1.setMany([
      [key(1), { hits: 11 }],
      [key(2), { hits: 22 }],
    ]);
    const oldId = m1.info.id;
    m1.close();
    first.close();
    expect(() => load({ maxEntries: { fixture_hash: 16 } })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    // A load that fails after taking the pin out puts it back, entries and all.
    expect(() => load({ maxEntries: { fixture_hash: 16, fixture_lru: 0 }, carryOver: ['fixture_hash'] })).toThrow();
    const kept = BpfMap.openPinned(join(root, 'fixture_hash'), fixtureKey, fixtureValue);
    expect(kept.info.id).toBe(oldId);
    expect(kept.get(key(2))).toEqual({ hits: 22 });
    kept.close();
    const second = load({ maxEntries: { fixture_hash: 16 }, carryOver: ['fixture_hash'] });
    const m2 = second.map('fixture_hash', fixtureKey, fixtureValue);
    const third = load({ maxEntries: { fixture_hash: 16 }, carryOver: ['fixture_hash'] });
    const m3 = third.map('fixture_hash', fixtureKey, fixtureValue);
    try {
      expect(m2.info).toMatchObject({ maxEntries: 16 });
      expect(m2.info.id).not.toBe(oldId);
      expect(m2.get(key(1))).toEqual({ hits: 11 });
      expect(m2.get(key(2))).toEqual({ hits: 22 });
      const pinned = BpfMap.openPinned(join(root, 'fixture_hash'), fixtureKey, fixtureValue);
      expect(pinned.info.id).toBe(m2.info.id);
      pinned.close();
      // The same shape again: the pin is reused as is, nothing carried.
      expect(m3.info.id).toBe(m2.info.id);
    } finally {
      for (const x of [m2, m3, second, third]) x.close();
    }
  });

  it('pins and opens maps by path, refusing what is not a map', () => {
    const arr = obj.map('fixture_array', u32, u64);
    const pin = join(lab.pinDir(), 'array_pin');
    arr.pin(pin);
    expect(() => arr.pin(pin)).toThrow(expect.objectContaining({ code: 'EEXIST', message: expect.stringContaining(pin) }));
    const reopened = BpfMap.openPinned(pin, u32, u64);
    expect(reopened.info.id).toBe(arr.info.id);
    reopened.close();
    arr.close();
    expect(() => BpfMap.openPinned(join(lab.pinDir(), 'missing'), u32, u64)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    const prog = obj.program('fixture_xdp');
    const progPin = join(lab.pinDir(), 'prog_pin');
    prog.pin(progPin);
    expect(() => BpfMap.openPinned(progPin, u32, u64)).toThrow(/not a map/);
    expect(() => PerCpuMap.openPinned(pin, u32, u64)).toThrow(/not per-CPU/);
    prog.close();
  });
});

describe('bad input never crashes the process', () => {
  it('throws TypeErrors for wrong argument types and sizes', () => {
    const raw = obj.rawMap('fixture_hash');
    expect(() => raw.lookup(Buffer.alloc(12))).toThrow(new TypeError('map "fixture_hash" lookup: key is 12 bytes, expected 16'));
    expect(() => raw.update(Buffer.alloc(16), Buffer.alloc(4))).toThrow(/value is 4 bytes, expected 8/);
    expect(() => raw.update(Buffer.alloc(16), Buffer.alloc(8), -1)).toThrow(TypeError);
    expect(() => raw.update(Buffer.alloc(16), Buffer.alloc(8), 1.5)).toThrow(TypeError);
    expect(() => raw.updateBatch(Buffer.alloc(15), Buffer.alloc(8))).toThrow(/not a multiple of 16/);
    expect(() => raw.updateBatch(Buffer.alloc(32), Buffer.alloc(8))).toThrow(/values are 8 bytes, expected 16/);
    for (const bad of [undefined, null, 1, 'str', {}, [], 2n]) {
      expect(() => raw.lookup(bad as unknown as Buffer)).toThrow(TypeError);
      expect(() => raw.delete(bad as unknown as Buffer)).toThrow(TypeError);
      if (typeof bad !== 'string') expect(() => raw.pin(bad as unknown as string)).toThrow(TypeError);
    }
    expect(() => raw.pin('a\0b')).toThrow(/must not contain NUL/);
    expect(() => new (native().BpfObject)(42 as unknown as string)).toThrow(TypeError);
    expect(() => new (native().BpfRingBuffer)({} as never, () => {})).toThrow(TypeError);
    expect(() => new (native().BpfRingBuffer)(raw, () => {})).toThrow(/not a BPF_MAP_TYPE_RINGBUF/);
    const prog = obj.program('fixture_xdp');
    expect(() => prog.testRun('x' as unknown as Buffer)).toThrow(TypeError);
    expect(() => prog.testRun(Buffer.alloc(64), { repeat: -3 })).toThrow(TypeError);
    expect(() => prog.attachXdp({ netns: null, ifname: 'x'.repeat(40) })).toThrow(TypeError);
    expect(() => prog.attachXdp({ netns: null, ifname: 'lo' }, 'turbo' as 'native')).toThrow(/xdp mode must be/);
    raw.close();
    prog.close();
  });

  it('reports use after close as EBADF', () => {
    const raw = obj.rawMap('fixture_hash');
    raw.close();
    raw.close(); // twice is fine
    expect(() => raw.lookup(Buffer.alloc(16))).toThrow(expect.objectContaining({ code: 'EBADF', message: expect.stringMatching(/closed/) }));
    const o = BpfObject.load(bpfObject('fixture_maps'));
    o.close();
    expect(() => o.program('fixture_xdp')).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('survives a barrage of random calls', () => {
    const raw = obj.rawMap('fixture_hash') as unknown as Record<string, (...a: unknown[]) => unknown>;
    const values = [undefined, null, 0, -1, 2 ** 40, NaN, 'x', '', Buffer.alloc(0), Buffer.alloc(16), Buffer.alloc(8), Buffer.alloc(1 << 16), {}, [], () => 1, Symbol('s')];
    let seed = 12345;
    const pick = () => values[(seed = (seed * 1103515245 + 12345) % 2 ** 31) % values.length];
    for (let i = 0; i < 3000; i++) {
      const method = ['lookup', 'update', 'delete', 'keys', 'entries', 'updateBatch', 'deleteBatch', 'info'][i % 8];
      try {
        raw[method](pick(), pick(), pick());
      } catch (err) {
        expect(err instanceof TypeError || err instanceof BpfError).toBe(true);
      }
    }
    (raw.close as () => void)();
  });
});
