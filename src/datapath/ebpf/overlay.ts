/**
 * Overlay networks in the ebpf datapath: the host's one collect_md VXLAN device (its TC
 * ingress decapsulates into sandboxes, bpf/overlay.bpf.c), the VNI of each local overlay
 * network (ovl_net4) and where every remote endpoint lives (ovl_remote4, ovl_remote6), which the
 * sandboxes' from_container program reads to encapsulate (bpf/lib/overlay.h).
 */
import { BpfObject, interfaceIndex, isBpfError, type BpfMap, type BpfProgram } from '../libbpf/bpf.js';
import { formatIPv6, ipv4, ipv4Word, ipv6, ipv6Bytes, u32 } from '../libbpf/codec.js';
import type { RemoteEndpointSpec } from '../datapath.js';
import { bpfObject } from '../../paths.js';
import { ip, ipBatch, link } from '../../system/ip.js';
import type { Hooks } from './hooks.js';
import { OVERLAY_PROGRAM, OverlayMaps, VXLAN_OVERHEAD, VXLAN_PORT, overlayConfig, overlayNet, overlayRemote } from './overlay-abi.js';

type Decoded<C> = C extends { decodeFrom(b: Buffer, o: number): infer T } ? T : never;

interface OverlayMapsOpen {
  cfg: BpfMap<number, Decoded<typeof overlayConfig>>;
  nets: BpfMap<number, Decoded<typeof overlayNet>>;
  remotes: BpfMap<string, Decoded<typeof overlayRemote>>;
  remotes6: BpfMap<string, Decoded<typeof overlayRemote>>;
}

/** One spelling per IPv6 address (the map's keys come back in formatIPv6's). */
const canonical6 = (a: string): string => formatIPv6(ipv6Bytes(a));

/** The VXLAN device of a daemon: its link prefix + "vx" (within IFNAMSIZ). */
export function vxlanDevice(linkPrefix: string): string {
  return `${linkPrefix}vx`;
}

/** The MTU sandboxes on an overlay get: the uplink's minus what VXLAN adds (1450 behind a 1500 uplink). */
export function overlayMtu(uplinkMtu: number): number {
  return uplinkMtu - VXLAN_OVERHEAD;
}

export interface EbpfOverlayOptions {
  linkPrefix: string;
  pinRoot: string;
  uplink: string;
  hooks: Hooks;
  /** Makes sure the stats slot of an ifindex exists (drops on the VXLAN device are counted there). */
  ensureStats(slot: number): void;
}

export class EbpfOverlay {
  readonly #opts: EbpfOverlayOptions;
  #object?: BpfObject;
  #program?: BpfProgram;
  #maps?: OverlayMapsOpen;
  #device?: number;

  constructor(opts: EbpfOverlayOptions) {
    this.#opts = opts;
  }

  get device(): string {
    return vxlanDevice(this.#opts.linkPrefix);
  }

  /** Opens bpf/overlay.bpf.o on first use; its maps are the ones lxc's programs read (pinned by name). */
  #load(): OverlayMapsOpen {
    if (this.#maps) return this.#maps;
    const obj = BpfObject.load(bpfObject('overlay'), { pinRoot: this.#opts.pinRoot });
    this.#object = obj;
    this.#program = obj.program(OVERLAY_PROGRAM);
    this.#maps = {
      cfg: obj.map(OverlayMaps.config, u32, overlayConfig),
      nets: obj.map(OverlayMaps.networks, u32, overlayNet),
      remotes: obj.map(OverlayMaps.remotes, ipv4, overlayRemote),
      remotes6: obj.map(OverlayMaps.remotes6, ipv6, overlayRemote),
    };
    return this.#maps;
  }

  /** The program for pinning next to the others (bpftool, the record). */
  program(): BpfProgram {
    this.#load();
    return this.#program!;
  }

  /** The collect_md VXLAN device (one per host, whatever the number of overlay networks), up, with the decapsulating program. */
  async ensureDevice(): Promise<number> {
    const maps = this.#load();
    const dev = this.device;
    const uplink = await link(null, this.#opts.uplink);
    const mtu = String(uplink?.mtu ?? 1500);
    if (!(await link(null, dev))) {
      try {
        await ip(null, ['link', 'add', 'name', dev, 'type', 'vxlan', 'external', 'dstport', String(VXLAN_PORT)]);
      } catch (err) {
        if (!/File exists/.test((err as Error).message)) throw new Error(`could not create VXLAN device "${dev}": ${(err as Error).message}`);
      }
    }
    // The device's MTU bounds the inner frame: the uplink's less the encapsulation.
    try {
      await ipBatch(null, [['link', 'set', 'dev', dev, 'addrgenmode', 'none', 'mtu', String(overlayMtu(Number(mtu)))], ['link', 'set', 'dev', dev, 'up']]);
    } catch (err) {
      throw new Error(`could not set up VXLAN device "${dev}": ${(err as Error).message}`);
    }
    const ifindex = interfaceIndex(null, dev);
    this.#opts.ensureStats(ifindex);
    this.#opts.hooks.ensure(null, dev, 'ingress', this.#program!);
    maps.cfg.set(0, { vxlan_ifindex: ifindex, flags: 0 });
    this.#device = ifindex;
    return ifindex;
  }

  /** A local overlay network: its bridge carries VNI `vni` between hosts. */
  async ensureNetwork(bridgeIfindex: number, vni: number): Promise<void> {
    const maps = this.#load();
    if (this.#device === undefined) await this.ensureDevice();
    maps.nets.set(bridgeIfindex, { vni });
  }

  removeNetwork(bridgeIfindex: number): void {
    const maps = this.#load();
    try {
      maps.nets.delete(bridgeIfindex);
    } catch (err) {
      if (!isBpfError(err, 'ENOENT')) throw err;
    }
  }

  /** The bridges with an overlay entry (start() removes those of networks that are gone). */
  networkKeys(): number[] {
    return [...this.#load().nets.keys()];
  }

  /** One entry per address the endpoint has (IPv4, IPv6 or both), with the same VNI, VTEP and MAC. */
  ensureRemote(r: RemoteEndpointSpec): void {
    const maps = this.#load();
    const value = { vni: r.vni, vtep: ipv4Word(r.vtep) >>> 0, mac: r.mac };
    if (r.ipv4) maps.remotes.set(r.ipv4, value);
    if (r.ipv6) maps.remotes6.set(r.ipv6, value);
  }

  removeRemote(r: Pick<RemoteEndpointSpec, 'ipv4' | 'ipv6'>): void {
    const maps = this.#load();
    const drop = <K>(m: BpfMap<K, unknown>, k: K) => {
      try {
        m.delete(k);
      } catch (err) {
        if (!isBpfError(err, 'ENOENT')) throw err;
      }
    };
    if (r.ipv4) drop(maps.remotes, r.ipv4);
    if (r.ipv6) drop(maps.remotes6, r.ipv6);
  }

  replaceRemotes(remotes: readonly RemoteEndpointSpec[]): void {
    const maps = this.#load();
    const want4 = new Set(remotes.map((r) => r.ipv4).filter(Boolean));
    const want6 = new Set(remotes.flatMap((r) => (r.ipv6 ? [canonical6(r.ipv6)] : [])));
    for (const k of maps.remotes.keys()) if (!want4.has(k)) this.removeRemote({ ipv4: k });
    for (const k of maps.remotes6.keys()) if (!want6.has(canonical6(k))) this.removeRemote({ ipv4: '', ipv6: k });
    for (const r of remotes) this.ensureRemote(r);
  }

  close(): void {
    this.#object?.close();
    this.#object = undefined;
    this.#maps = undefined;
    this.#program = undefined;
    this.#device = undefined;
  }

  /** Removes the VXLAN device (and with it its filter). */
  async teardown(): Promise<void> {
    if (await link(null, this.device)) await ip(null, ['link', 'delete', this.device]).catch(() => undefined);
  }
}
