// The only module that loads the native addon. Everything else in src/ goes
// through the typed layer in this folder (bpf.ts), never through these raw shapes.
import { createRequire } from 'node:module';
import { addonPath } from '../../paths.js';
import { BpfError } from './errors.js';

export interface NativeMapInfo {
  name: string;
  id: number;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  perCpu: boolean;
  /** Bytes one value occupies in a syscall buffer (per-CPU: 8-aligned size x CPUs). */
  valueBytes: number;
  cpus: number;
}

export interface NativeMap {
  readonly fd: number;
  info(): NativeMapInfo;
  lookup(key: Buffer): Buffer | null;
  update(key: Buffer, value: Buffer, flags?: number): void;
  delete(key: Buffer): boolean;
  keys(): Buffer[];
  entries(): Array<[Buffer, Buffer]>;
  /** Every entry packed back to back: count keys of keySize bytes, count values of valueBytes. */
  dump(): { keys: Buffer; values: Buffer; count: number };
  updateBatch(keys: Buffer, values: Buffer, flags?: number): number;
  deleteBatch(keys: Buffer): number;
  pin(path: string): void;
  close(): void;
}

export interface NativeLinkInfo {
  id: number;
  type: number;
  progId: number;
  ifindex?: number;
  description: string;
}

export interface NativeLink {
  info(): NativeLinkInfo;
  pin(path: string): void;
  update(program: NativeProgram): void;
  detach(): void;
  close(): void;
}

export interface NativeTestRunResult {
  retval: number;
  duration: number;
  data: Buffer;
  ctx?: Buffer;
}

export interface NativeProgram {
  readonly fd: number;
  info(): { name: string; id: number; type: number; tag: string };
  testRun(opts: { data: Buffer; repeat?: number; ctx?: Buffer; dataOutSize?: number; netns?: string }): NativeTestRunResult;
  attachXdp(netns: string | null, ifname: string, mode?: 'native' | 'generic' | 'auto'): NativeLink;
  attachTcx(netns: string | null, ifname: string, direction: 'ingress' | 'egress'): NativeLink;
  attachCgroup(cgroupPath: string, attachType: number): NativeLink;
  attachTcFilter(netns: string | null, ifname: string, direction: 'ingress' | 'egress', priority: number): { ifindex: number; handle: number; priority: number; progId: number };
  pin(path: string): void;
  close(): void;
}

export interface NativeObjectMap {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  internal: boolean;
  pinPath?: string;
}

export interface NativeObject {
  readonly name: string;
  readonly loaded: boolean;
  setConst(name: string, value: Buffer): void;
  setMaxEntries(map: string, n: number): void;
  reuseMap(map: string, pinnedPath: string): void;
  load(): void;
  programs(): Array<{ name: string; section: string; type: number }>;
  maps(): NativeObjectMap[];
  map(name: string): NativeMap;
  program(name: string): NativeProgram;
  close(): void;
}

export interface NativeRingBuffer {
  consume(): number;
  close(): void;
  ref(): void;
  unref(): void;
}

export interface NativeRtnlOutcome {
  /** 0, or the errno of the first refused request. */
  error: number;
  /** Its position in the batch. */
  failed: number;
  /** The kernel's extended acknowledgement, if any. */
  message: string;
  /** strerror(error). */
  text: string;
  /** What a dump answered. */
  replies: Buffer;
}

export interface NativeAddon {
  setErrorClass(ctor: typeof BpfError): void;
  ifindex(netns: string | null, ifname: string): number;
  detachTcFilter(netns: string | null, ifname: string, direction: 'ingress' | 'egress', priority: number): boolean;
  numPossibleCpus(): number;
  libbpfVersion(): string;
  /** rtnetlink requests sent in order inside a namespace, each acknowledged, stopping at the first refusal (src/system/rtnl.ts builds them). */
  rtnetlink(netns: string | null, requests: Buffer, patches: Array<[number, number, string]>): NativeRtnlOutcome;
  addNamedNetns(path: string): void;
  deleteNamedNetns(path: string): void;
  writeProcSys(netns: string | null, paths: string[], values: string[]): void;
  BpfObject: new (path: string, pinRoot?: string) => NativeObject;
  BpfMap: { openPinned(path: string): NativeMap };
  BpfProgram: { openPinned(path: string): NativeProgram };
  BpfLink: { openPinned(path: string): NativeLink };
  BpfRingBuffer: new (map: NativeMap, onSample: (sample: Buffer) => void) => NativeRingBuffer;
}

let loaded: NativeAddon | undefined;

/** The addon, loaded once, with BpfError registered as its error class. */
export function native(): NativeAddon {
  if (loaded === undefined) {
    const require = createRequire(import.meta.url);
    const addon = require(addonPath) as NativeAddon;
    addon.setErrorClass(BpfError);
    loaded = addon;
  }
  return loaded;
}
