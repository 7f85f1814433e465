/**
 * The macvlan driver's eBPF programs (bpf/vlan.bpf.c) and their maps: 802.1Q trunks tagged in
 * eBPF, the anti-spoofing guard on each child, and the resolver hairpin on each lower device.
 * Maps are pinned under the instance's bpffs directory, so trunks keep tagging and guards keep
 * guarding while the daemon is down; filters live with their devices. The far side of a trunk
 * in a lab (a VLAN-aware switch port) uses the same class without a pin directory.
 */
import { mkdirSync } from 'node:fs';
import { BpfObject, detachTcFilter, interfaceIndex, isBpfError, type BpfMap, type BpfProgram, type PerCpuMap } from '../../datapath/libbpf/bpf.js';
import { u32, u64 } from '../../datapath/libbpf/codec.js';
import { bpfObject } from '../../paths.js';
import { hairpinValue, MVG_HAS_IPV4, MVG_HAS_IPV6, mvgMac, mvgOwner, VLAN_STATS, vlanPort, vlanPortKey, type VlanStat } from './vlan-abi.js';

/** Our tc filter priority: before the datapath's (0xb9f) and the in-kernel resolver's (0xb9e) on a shared uplink. */
export const VLAN_FILTER_PRIORITY = 0xb9c;
/** The hairpin's, one before: on a VLAN's stand-in it shares the egress hook with the tagging, and goes first. */
export const HAIRPIN_FILTER_PRIORITY = VLAN_FILTER_PRIORITY - 1;

/**
 * Where a trunk's VLAN enters and leaves, by name in a namespace: the trunk, and the stand-in
 * that carries the VLAN's children (one end of a veth pair whose other end only keeps it up:
 * frames are tagged on the stand-in's egress and sent out of the trunk, and untagged on the
 * trunk's ingress and received by the stand-in, never crossing the pair).
 */
export interface TrunkPort {
  /** Network namespace path (null: the caller's). */
  netns: string | null;
  trunk: string;
  standIn: string;
  vid: number;
}

/** What a child may send from (per family; an absent family may not be sent at all). */
export interface ChildAddresses {
  mac: string;
  ipv4?: string;
  /** 16 bytes, once the endpoint has an IPv6 address. */
  ipv6?: Buffer;
}

const ZERO16 = Buffer.alloc(16);

export class VlanPrograms {
  readonly #object: BpfObject;
  readonly #ports: BpfMap<{ ifindex: number; vid: number }, { ifindex: number; vid: number }>;
  readonly #owners: BpfMap<{ addr: string }, { flags: number; ipv4: string; ipv6: Buffer }>;
  readonly #hairpin: BpfMap<{ addr: string }, number>;
  readonly #passthruOut: BpfMap<{ addr: string }, number>;
  readonly #passthruIn: BpfMap<number, number>;
  readonly #stats: PerCpuMap<number, number>;
  readonly #progs: Record<'trunkIn' | 'memberOut' | 'guard' | 'hairpin' | 'passthruIn', BpfProgram>;

  /** Loads the programs; with pinDir, their maps are pinned there (and taken over from an earlier daemon). */
  constructor(pinDir: string | null) {
    if (pinDir) mkdirSync(pinDir, { recursive: true });
    this.#object = BpfObject.load(bpfObject('vlan'), pinDir ? { pinRoot: pinDir } : {});
    this.#ports = this.#object.map('vlan_ports', vlanPortKey, vlanPort);
    this.#owners = this.#object.map('mvg_owners', mvgMac, mvgOwner);
    this.#hairpin = this.#object.map('mvg_hairpin', mvgMac, hairpinValue);
    this.#passthruOut = this.#object.map('mvg_passthru_out', mvgMac, u32);
    this.#passthruIn = this.#object.map('mvg_passthru_in', u32, u32);
    this.#stats = this.#object.perCpuMap('vlan_stats', u32, u64);
    this.#progs = {
      trunkIn: this.#object.program('vlan_trunk_in'),
      memberOut: this.#object.program('vlan_member_out'),
      guard: this.#object.program('macvlan_guard'),
      hairpin: this.#object.program('macvlan_hairpin'),
      passthruIn: this.#object.program('macvlan_passthru_in'),
    };
  }

  /** Tags and untags one VLAN between a trunk and its stand-in (idempotent). */
  ensureTrunkPort(p: TrunkPort): void {
    const trunk = interfaceIndex(p.netns, p.trunk);
    const standIn = interfaceIndex(p.netns, p.standIn);
    this.#ports.set({ ifindex: trunk, vid: p.vid }, { ifindex: standIn, vid: 0 });
    this.#ports.set({ ifindex: standIn, vid: 0 }, { ifindex: trunk, vid: p.vid });
    this.#progs.memberOut.attachTcFilter({ netns: p.netns, ifname: p.standIn }, 'egress', VLAN_FILTER_PRIORITY);
    this.#progs.trunkIn.attachTcFilter({ netns: p.netns, ifname: p.trunk }, 'ingress', VLAN_FILTER_PRIORITY);
  }

  /**
   * Stops one VLAN on a trunk; when it was the trunk's last, the trunk's filter goes too (its
   * untagged traffic was never ours). The stand-in's filter goes with the stand-in.
   */
  removeTrunkPort(p: TrunkPort): void {
    let trunk: number | undefined;
    try {
      trunk = interfaceIndex(p.netns, p.trunk);
    } catch (err) {
      if (!isBpfError(err, 'ENODEV')) throw err;
    }
    for (const [k, v] of this.#ports.entries()) {
      if ((trunk !== undefined && k.ifindex === trunk && k.vid === p.vid) || (k.vid === 0 && v.ifindex === trunk && v.vid === p.vid)) this.#ports.delete(k);
    }
    if (trunk !== undefined && !this.#ports.keys().some((k) => k.ifindex === trunk)) detachTcFilter({ netns: p.netns, ifname: p.trunk }, 'ingress', VLAN_FILTER_PRIORITY);
  }

  /** Lets a child send only from its own MAC and addresses, guarding its egress inside its namespace. */
  guard(netns: string | null, ifname: string, child: ChildAddresses): void {
    this.allow(child);
    this.#progs.guard.attachTcFilter({ netns, ifname }, 'egress', VLAN_FILTER_PRIORITY);
  }

  /** The guard's entry for a child, without attaching (the filter is already there). */
  allow(child: ChildAddresses): void {
    const flags = (child.ipv4 ? MVG_HAS_IPV4 : 0) | (child.ipv6 ? MVG_HAS_IPV6 : 0);
    this.#owners.set({ addr: child.mac }, { flags, ipv4: child.ipv4 ?? '0.0.0.0', ipv6: child.ipv6 ?? ZERO16 });
  }

  /** Forgets a child (its frames, if any were still sent, are dropped as spoofed). */
  forget(mac: string): void {
    this.#owners.delete({ addr: mac });
  }

  /**
   * Drops the guard's entries of MACs no child holds and the hairpin's of MACs no resolver
   * interface holds (left by a daemon killed before it forgot them). Returns how many went.
   */
  sweepEntries(children: ReadonlySet<string>, resolvers: ReadonlySet<string>): number {
    let n = 0;
    for (const k of this.#owners.keys()) if (!children.has(k.addr) && this.#owners.delete(k)) n++;
    for (const k of this.#hairpin.keys()) if (!resolvers.has(k.addr) && this.#hairpin.delete(k)) n++;
    for (const [k, peer] of this.#passthruOut.entries()) {
      if (resolvers.has(k.addr)) continue;
      this.#passthruOut.delete(k);
      this.#passthruIn.delete(peer);
      n++;
    }
    return n;
  }

  /** Turns frames between children and the resolver interface `mac` back in on `lower` (idempotent). */
  ensureHairpin(netns: string | null, lower: string, mac: string): void {
    this.#hairpin.set({ addr: mac }, 1);
    this.#progs.hairpin.attachTcFilter({ netns, ifname: lower }, 'egress', HAIRPIN_FILTER_PRIORITY);
  }

  /** Forgets a resolver's MAC; detaches from `lower` when asked (no network uses that lower any more). */
  removeHairpin(netns: string | null, lower: string | undefined, mac: string): void {
    this.#hairpin.delete({ addr: mac });
    if (lower) detachTcFilter({ netns, ifname: lower }, 'egress', HAIRPIN_FILTER_PRIORITY);
  }

  /**
   * passthru: joins the resolver's veth pair to the parent (idempotent). The child's frames to
   * `mac` leave the parent by `peer` (arriving on the resolver interface); what the resolver
   * sends comes out of `peer` and is received by the parent, which hands it to the child.
   */
  ensurePassthru(netns: string | null, parent: string, peer: string, mac: string): void {
    const parentIdx = interfaceIndex(netns, parent);
    const peerIdx = interfaceIndex(netns, peer);
    this.#passthruIn.set(peerIdx, parentIdx);
    this.#passthruOut.set({ addr: mac }, peerIdx);
    this.#progs.passthruIn.attachTcFilter({ netns, ifname: peer }, 'ingress', VLAN_FILTER_PRIORITY);
    this.#progs.hairpin.attachTcFilter({ netns, ifname: parent }, 'egress', HAIRPIN_FILTER_PRIORITY);
  }

  /** Undoes ensurePassthru (the peer's filter goes with the pair); the parent's filter goes when no private/vepa resolver needs it. */
  removePassthru(netns: string | null, parent: string | undefined, mac: string): void {
    const peer = this.#passthruOut.get({ addr: mac });
    this.#passthruOut.delete({ addr: mac });
    if (peer !== undefined) this.#passthruIn.delete(peer);
    if (parent) detachTcFilter({ netns, ifname: parent }, 'egress', HAIRPIN_FILTER_PRIORITY);
  }

  /** Packets counted by slot, summed over CPUs. */
  stats(): Record<VlanStat, number> {
    const out = {} as Record<VlanStat, number>;
    VLAN_STATS.forEach((name, slot) => (out[name] = (this.#stats.get(slot) ?? []).reduce((a, b) => a + b, 0)));
    return out;
  }

  /** Releases the handles; pinned maps and attached filters stay. */
  close(): void {
    this.#object.close();
  }
}
