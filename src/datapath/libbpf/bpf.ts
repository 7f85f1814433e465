/**
 * The typed layer over the native addon: objects, maps with key/value codecs,
 * programs, links and ring buffers. The rest of src/ uses this, never the addon.
 */
import { existsSync, rmSync } from 'node:fs';
import { decode, encode, encodeAll, type Codec } from './codec.js';
import { isBpfError } from './errors.js';
import {
  native,
  type NativeLink,
  type NativeLinkInfo,
  type NativeMap,
  type NativeMapInfo,
  type NativeObject,
  type NativeObjectMap,
  type NativeProgram,
  type NativeRingBuffer,
  type NativeTestRunResult,
} from './native.js';

/** enum bpf_map_type values that callers test for. */
export const MapType = {
  HASH: 1,
  ARRAY: 2,
  PERCPU_HASH: 5,
  PERCPU_ARRAY: 6,
  LRU_HASH: 9,
  LRU_PERCPU_HASH: 10,
  RINGBUF: 27,
} as const;

/** enum bpf_attach_type values for cgroup socket hooks. */
export const CgroupAttach = {
  INET4_CONNECT: 10,
  UDP4_SENDMSG: 14,
  UDP4_RECVMSG: 19,
  INET4_GETPEERNAME: 29,
} as const;

/** How an update treats an existing key: BPF_ANY, BPF_NOEXIST, BPF_EXIST. */
export type UpdateMode = 'any' | 'only-new' | 'only-existing';
const updateFlags: Record<UpdateMode, number> = { any: 0, 'only-new': 1, 'only-existing': 2 };

function checkCodecs(info: NativeMapInfo, key: Codec<unknown>, valueSize: number): void {
  if (key.size !== info.keySize)
    throw new TypeError(`map "${info.name}": key codec is ${key.size} bytes, map key is ${info.keySize}`);
  if (valueSize !== info.valueSize)
    throw new TypeError(`map "${info.name}": value codec is ${valueSize} bytes, map value is ${info.valueSize}`);
}

/** A BPF map with typed keys and values (non-per-CPU maps). */
export class BpfMap<K, V> {
  readonly #raw: NativeMap;
  readonly #key: Codec<K>;
  readonly #value: Codec<V>;
  readonly info: NativeMapInfo;

  constructor(raw: NativeMap, key: Codec<K>, value: Codec<V>) {
    this.info = raw.info();
    if (this.info.perCpu) throw new TypeError(`map "${this.info.name}" is per-CPU: use PerCpuMap`);
    checkCodecs(this.info, key, value.size);
    this.#raw = raw;
    this.#key = key;
    this.#value = value;
  }

  /** Opens a map pinned at path (by any process). */
  static openPinned<K, V>(path: string, key: Codec<K>, value: Codec<V>): BpfMap<K, V> {
    return new BpfMap(native().BpfMap.openPinned(path), key, value);
  }

  get name(): string {
    return this.info.name;
  }

  get(key: K): V | undefined {
    const v = this.#raw.lookup(encode(this.#key, key));
    return v === null ? undefined : decode(this.#value, v);
  }

  set(key: K, value: V, mode: UpdateMode = 'any'): void {
    this.#raw.update(encode(this.#key, key), encode(this.#value, value), updateFlags[mode]);
  }

  /** Removes key; false if it was not there. */
  delete(key: K): boolean {
    return this.#raw.delete(encode(this.#key, key));
  }

  keys(): K[] {
    return this.#raw.keys().map((k) => decode(this.#key, k));
  }

  entries(): Array<[K, V]> {
    return this.#raw.entries().map(([k, v]) => [decode(this.#key, k), decode(this.#value, v)]);
  }

  /**
   * Writes many entries: one syscall (BPF_MAP_UPDATE_BATCH) in mode 'any'; the kernel's batch
   * takes no only-new/only-existing flag, so those modes go entry by entry and stop at the first refusal.
   */
  setMany(entries: ReadonlyArray<readonly [K, V]>, mode: UpdateMode = 'any'): number {
    if (entries.length === 0) return 0;
    if (mode !== 'any') {
      for (const [k, v] of entries) this.set(k, v, mode);
      return entries.length;
    }
    const keys = encodeAll(this.#key, entries.map((e) => e[0]));
    const values = encodeAll(this.#value, entries.map((e) => e[1]));
    return this.#raw.updateBatch(keys, values, updateFlags[mode]);
  }

  /** Deletes many keys in one syscall (BPF_MAP_DELETE_BATCH); every key must exist. */
  deleteMany(keys: readonly K[]): number {
    if (keys.length === 0) return 0;
    return this.#raw.deleteBatch(encodeAll(this.#key, keys));
  }

  // Packed forms, for scans and bulk writes over large tables: keys and values laid back to
  // back in their ABI encoding (what encodeAll gives), never one decoded object per entry.

  /** Every entry in one pass: count keys and count values, packed. */
  dumpPacked(): { keys: Buffer; values: Buffer; count: number } {
    return this.#raw.dump();
  }

  /** Writes packed entries in one syscall (mode 'any'). */
  setPacked(keys: Buffer, values: Buffer): number {
    return this.#raw.updateBatch(keys, values, updateFlags.any);
  }

  /** Deletes packed keys in one syscall; every key must exist (ENOENT otherwise). */
  deletePacked(keys: Buffer): number {
    return this.#raw.deleteBatch(keys);
  }

  /** The encoded value under one encoded key, or null when it is absent. */
  getEncoded(key: Buffer): Buffer | null {
    return this.#raw.lookup(key);
  }

  /** Deletes one encoded key; false when it is absent. */
  deleteEncoded(key: Buffer): boolean {
    return this.#raw.delete(key);
  }

  pin(path: string): void {
    this.#raw.pin(path);
  }

  close(): void {
    this.#raw.close();
  }

  /** The underlying handle, for RingBuffer. */
  get raw(): NativeMap {
    return this.#raw;
  }
}

/** A per-CPU map: a value per possible CPU. */
export class PerCpuMap<K, V> {
  readonly #raw: NativeMap;
  readonly #key: Codec<K>;
  readonly #value: Codec<V>;
  readonly #stride: number;
  readonly info: NativeMapInfo;

  constructor(raw: NativeMap, key: Codec<K>, value: Codec<V>) {
    this.info = raw.info();
    if (!this.info.perCpu) throw new TypeError(`map "${this.info.name}" is not per-CPU: use BpfMap`);
    checkCodecs(this.info, key, value.size);
    this.#raw = raw;
    this.#key = key;
    this.#value = value;
    this.#stride = Math.ceil(value.size / 8) * 8;
  }

  static openPinned<K, V>(path: string, key: Codec<K>, value: Codec<V>): PerCpuMap<K, V> {
    return new PerCpuMap(native().BpfMap.openPinned(path), key, value);
  }

  get name(): string {
    return this.info.name;
  }

  #split(buf: Buffer): V[] {
    const out: V[] = [];
    for (let cpu = 0; cpu < this.info.cpus; cpu++) out.push(this.#value.decodeFrom(buf, cpu * this.#stride));
    return out;
  }

  /** The value on every CPU, or undefined if the key is absent. */
  get(key: K): V[] | undefined {
    const v = this.#raw.lookup(encode(this.#key, key));
    return v === null ? undefined : this.#split(v);
  }

  /** Sets the value on every CPU: one value for all, or one per CPU. */
  set(key: K, value: V | V[], mode: UpdateMode = 'any'): void {
    const values = Array.isArray(value) ? value : Array.from({ length: this.info.cpus }, () => value);
    if (values.length !== this.info.cpus)
      throw new TypeError(`map "${this.name}": ${values.length} per-CPU values, expected ${this.info.cpus}`);
    const buf = Buffer.alloc(this.info.valueBytes);
    values.forEach((v, cpu) => this.#value.encodeInto(v, buf, cpu * this.#stride));
    this.#raw.update(encode(this.#key, key), buf, updateFlags[mode]);
  }

  delete(key: K): boolean {
    return this.#raw.delete(encode(this.#key, key));
  }

  keys(): K[] {
    return this.#raw.keys().map((k) => decode(this.#key, k));
  }

  entries(): Array<[K, V[]]> {
    return this.#raw.entries().map(([k, v]) => [decode(this.#key, k), this.#split(v)]);
  }

  /** Every entry in one pass, packed: values are info.valueBytes each (every CPU's, 8-aligned). */
  dumpPacked(): { keys: Buffer; values: Buffer; count: number } {
    return this.#raw.dump();
  }

  pin(path: string): void {
    this.#raw.pin(path);
  }

  close(): void {
    this.#raw.close();
  }
}

/** Sums numeric fields across CPUs: the usual way to read per-CPU counters. */
export function sumPerCpu<V extends Record<string, number>>(values: readonly V[]): V {
  const total = {} as Record<string, number>;
  for (const v of values) for (const [k, n] of Object.entries(v)) total[k] = (total[k] ?? 0) + n;
  return total as V;
}

/** An attachment of a program to a hook. Pinned links outlive the process; unpinned ones die with it. */
export class BpfLink {
  readonly #raw: NativeLink;

  constructor(raw: NativeLink) {
    this.#raw = raw;
  }

  static openPinned(path: string): BpfLink {
    return new BpfLink(native().BpfLink.openPinned(path));
  }

  info(): NativeLinkInfo {
    return this.#raw.info();
  }

  pin(path: string): void {
    this.#raw.pin(path);
  }

  /** Replaces the attached program atomically: no packet sees the hook empty. */
  update(program: BpfProgram): void {
    this.#raw.update(program.raw);
  }

  /** Ends the attachment now (also when pinned); the pin file, if any, is the caller's to remove. */
  detach(): void {
    this.#raw.detach();
  }

  close(): void {
    this.#raw.close();
  }
}

export type XdpMode = 'native' | 'generic' | 'auto';
export type TcDirection = 'ingress' | 'egress';

/** Where to attach: an interface by name, in a network namespace by path (null: the caller's). */
export interface InterfaceTarget {
  netns: string | null;
  ifname: string;
}

/** A loaded program. */
export class BpfProgram {
  readonly #raw: NativeProgram;
  readonly name: string;

  constructor(raw: NativeProgram, name: string) {
    this.#raw = raw;
    this.name = name;
  }

  static openPinned(path: string): BpfProgram {
    const raw = native().BpfProgram.openPinned(path);
    return new BpfProgram(raw, raw.info().name);
  }

  info(): { name: string; id: number; type: number; tag: string } {
    return this.#raw.info();
  }

  /** The underlying handle, for BpfLink.update. */
  get raw(): NativeProgram {
    return this.#raw;
  }

  /** Runs the program once (or `repeat` times) on a packet via BPF_PROG_TEST_RUN, optionally inside a namespace. */
  testRun(data: Buffer, opts: { repeat?: number; ctx?: Buffer; dataOutSize?: number; netns?: string } = {}): NativeTestRunResult {
    return this.#raw.testRun({ data, ...opts });
  }

  attachXdp(target: InterfaceTarget, mode: XdpMode = 'native'): BpfLink {
    return new BpfLink(this.#raw.attachXdp(target.netns, target.ifname, mode));
  }

  /** Attaches at tc ingress or egress through a tcx link (kernel 6.6+). */
  attachTc(target: InterfaceTarget, direction: TcDirection): BpfLink {
    return new BpfLink(this.#raw.attachTcx(target.netns, target.ifname, direction));
  }

  /**
   * Attaches as a classic clsact filter (direct action) at `priority`: it stays with the device
   * without a pin, re-attaching at the same priority swaps the program atomically, and neither
   * attach nor detach waits for an RCU grace period (a tcx link's do, ~14 ms each here).
   */
  attachTcFilter(target: InterfaceTarget, direction: TcDirection, priority: number): { ifindex: number; progId: number } {
    return this.#raw.attachTcFilter(target.netns, target.ifname, direction, priority);
  }

  attachCgroup(cgroupPath: string, attachType: number): BpfLink {
    return new BpfLink(this.#raw.attachCgroup(cgroupPath, attachType));
  }

  pin(path: string): void {
    this.#raw.pin(path);
  }

  close(): void {
    this.#raw.close();
  }
}

export interface OpenOptions {
  /** Directory under a bpffs where LIBBPF_PIN_BY_NAME maps are pinned and reused. Without it nothing is pinned. */
  pinRoot?: string;
  /** `const volatile` globals to set before load, by name. */
  consts?: Record<string, Buffer>;
  /** Map sizes to override before load. */
  maxEntries?: Record<string, number>;
  /** Maps to take from existing pins instead of creating them (e.g. devmaps). */
  reuse?: Record<string, string>;
  /**
   * Pinned maps that an earlier version may have made in another shape (flags, size): when the
   * pin under pinRoot differs from what this object declares, its entries are read, the old pin
   * removed, and the entries written into the map the load creates in its place (libbpf would
   * refuse to reuse it). Only for maps whose key and value layouts are unchanged.
   */
  carryOver?: readonly string[];
}

/** A pinned map of another shape, taken out of the pin root until the load that replaces it succeeds. */
interface Reshaped {
  old: NativeMap;
  pinPath: string;
  entries: { keys: Buffer; values: Buffer; count: number };
}

/** Each pinned map in `names` whose shape differs from the object's: its entries read and its pin removed. */
function takeReshapedPins(raw: NativeObject, names: readonly string[]): Map<string, Reshaped> {
  const taken = new Map<string, Reshaped>();
  try {
    for (const want of raw.maps().filter((m) => names.includes(m.name) && m.pinPath && existsSync(m.pinPath))) {
      const old = native().BpfMap.openPinned(want.pinPath!);
      const have = old.info();
      if (have.type === want.type && have.keySize === want.keySize && have.valueSize === want.valueSize && have.maxEntries === want.maxEntries && have.flags === want.flags) {
        old.close();
        continue;
      }
      if (have.keySize !== want.keySize || have.valueSize !== want.valueSize) {
        old.close();
        throw new TypeError(`pinned map ${want.pinPath}: its entries are ${have.keySize}+${have.valueSize} bytes, this object's ${want.keySize}+${want.valueSize}: cannot carry them over`);
      }
      taken.set(want.name, { old, pinPath: want.pinPath!, entries: old.dump() });
      rmSync(want.pinPath!);
    }
  } catch (err) {
    putBack(taken);
    throw err;
  }
  return taken;
}

/** A load that failed leaves the older maps pinned where they were, entries and all. */
function putBack(taken: Map<string, Reshaped>): void {
  for (const { old, pinPath } of taken.values()) {
    try {
      if (!existsSync(pinPath)) old.pin(pinPath);
    } finally {
      old.close();
    }
  }
  taken.clear();
}

/** A BPF ELF object: opened, configured, then loaded. */
export class BpfObject {
  readonly #raw: NativeObject;
  readonly path: string;

  private constructor(raw: NativeObject, path: string) {
    this.#raw = raw;
    this.path = path;
  }

  /** Opens path, applies the options and loads it into the kernel. */
  static load(path: string, opts: OpenOptions = {}): BpfObject {
    const raw = new (native().BpfObject)(path, opts.pinRoot);
    try {
      for (const [name, value] of Object.entries(opts.consts ?? {})) raw.setConst(name, value);
      for (const [name, n] of Object.entries(opts.maxEntries ?? {})) raw.setMaxEntries(name, n);
      for (const [name, pin] of Object.entries(opts.reuse ?? {})) raw.reuseMap(name, pin);
      const taken = takeReshapedPins(raw, opts.carryOver ?? []);
      try {
        raw.load();
      } catch (err) {
        putBack(taken);
        throw err;
      }
      for (const [name, { old, entries }] of taken) {
        old.close();
        if (entries.count === 0) continue;
        const map = raw.map(name);
        try {
          map.updateBatch(entries.keys, entries.values);
        } finally {
          map.close();
        }
      }
    } catch (err) {
      raw.close();
      throw err;
    }
    return new BpfObject(raw, path);
  }

  programs(): Array<{ name: string; section: string; type: number }> {
    return this.#raw.programs();
  }

  maps(): NativeObjectMap[] {
    return this.#raw.maps();
  }

  map<K, V>(name: string, key: Codec<K>, value: Codec<V>): BpfMap<K, V> {
    return new BpfMap(this.#raw.map(name), key, value);
  }

  perCpuMap<K, V>(name: string, key: Codec<K>, value: Codec<V>): PerCpuMap<K, V> {
    return new PerCpuMap(this.#raw.map(name), key, value);
  }

  /** A map's raw handle when no codec applies (ring buffers). */
  rawMap(name: string): NativeMap {
    return this.#raw.map(name);
  }

  program(name: string): BpfProgram {
    return new BpfProgram(this.#raw.program(name), name);
  }

  /** Releases the object's own handles; maps, programs and links taken from it stay valid. */
  close(): void {
    this.#raw.close();
  }
}

/** A map pinned at path, untyped: for ring buffers, which have no keys or values to check. */
export function openPinnedRaw(path: string): NativeMap {
  return native().BpfMap.openPinned(path);
}

/** Records from a BPF ring buffer, decoded and delivered on the event loop. */
export class RingBuffer<T> {
  readonly #raw: NativeRingBuffer;

  constructor(map: NativeMap, codec: Codec<T>, onRecord: (record: T) => void, onError?: (err: unknown) => void) {
    this.#raw = new (native().BpfRingBuffer)(map, (sample) => {
      try {
        onRecord(decode(codec, sample));
      } catch (err) {
        if (onError) onError(err);
        else throw err;
      }
    });
  }

  /** Delivers whatever is queued now; returns how many records. */
  drain(): number {
    return this.#raw.consume();
  }

  /** Whether an open ring buffer keeps the process alive (default: yes). */
  ref(keepAlive: boolean): void {
    if (keepAlive) this.#raw.ref();
    else this.#raw.unref();
  }

  close(): void {
    this.#raw.close();
  }
}

/** Removes the clsact filter at `priority` (absent filters and devices are fine); true if one went. */
export function detachTcFilter(target: InterfaceTarget, direction: TcDirection, priority: number): boolean {
  return native().detachTcFilter(target.netns, target.ifname, direction, priority);
}

/** The index of an interface inside a network namespace (null: the caller's). */
export function interfaceIndex(netns: string | null, ifname: string): number {
  return native().ifindex(netns, ifname);
}

/** Possible CPUs, as the kernel sizes per-CPU values. */
export function possibleCpus(): number {
  return native().numPossibleCpus();
}

export function libbpfVersion(): string {
  return native().libbpfVersion();
}

export { isBpfError };
