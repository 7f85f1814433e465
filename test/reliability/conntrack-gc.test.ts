// Connection-table GC against a live flow: the programs reuse an expired key in place for a new
// flow, so a key the GC saw expired in its dump may be live by the time it deletes. The GC must
// delete only what is still expired. The table is the real pinned ct4 of the lxc object; the
// program's in-place reuse is reproduced by writing the key between the dump and the delete.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { Lab } from '../../src/lab/lab.js';
import { BpfObject, type BpfMap } from '../../src/datapath/libbpf/bpf.js';
import { CtKind, DatapathMaps, ctEntry4, ctKey4 } from '../../src/datapath/abi.js';
import { bpfObject } from '../../src/paths.js';
import { UNTRACKED_MARGIN_NS, clearUntracked, collectExpired, monotonicNs, writeUntracked } from '../../src/datapath/ebpf/conntrack.js';
import { u32, u64n } from '../../src/datapath/libbpf/codec.js';

type Key = ReturnType<typeof ctKey4.decodeFrom>;
type Entry = ReturnType<typeof ctEntry4.decodeFrom>;

describe('connection-table GC', () => {
  let lab: Lab;
  let lxc: BpfObject;
  let ct: BpfMap<Key, Entry>;

  beforeAll(async () => {
    lab = await Lab.create({ uplink: false });
    const pinRoot = join(lab.pinDir(), 'gc');
    mkdirSync(pinRoot, { recursive: true });
    lxc = BpfObject.load(bpfObject('lxc'), { pinRoot });
    ct = lxc.map(DatapathMaps.conntrack, ctKey4, ctEntry4);
  });

  afterAll(async () => {
    ct?.close();
    lxc?.close();
    await lab?.destroy();
  });

  const key = (sport: number): Key => ({ saddr: '10.1.0.2', daddr: '198.18.0.2', sport, dport: 80, proto: 6, hook: 1 });
  const entry = (expires: bigint): Entry => ({ saddr: '198.18.0.1', daddr: '198.18.0.2', sport: 40000, dport: 80, deliver: 0, kind: CtKind.SNAT, state: 1, dir: 0, fin_acked: 0, fin_ack: 0, expires });

  it('keeps a key that became live between its dump and its deletion, and removes what is still expired', () => {
    const now = monotonicNs();
    ct.set(key(1001), entry(now - 1_000_000_000n));
    ct.set(key(1002), entry(now - 1_000_000_000n));
    const reused = entry(now + 60_000_000_000n);
    // The table as the GC sees it, with a program reusing key 1001 for a new flow right after the dump.
    const racing = {
      dumpPacked: () => {
        const dump = ct.dumpPacked();
        ct.set(key(1001), reused);
        return dump;
      },
      getEncoded: (k: Buffer) => ct.getEncoded(k),
      deleteEncoded: (k: Buffer) => ct.deleteEncoded(k),
      deletePacked: (k: Buffer) => ct.deletePacked(k),
    } as unknown as BpfMap<Key, Entry>;
    const result = collectExpired(racing, now);
    expect(result).toEqual({ scanned: 2, removed: 1 });
    expect(ct.get(key(1001))).toEqual(reused);
    expect(ct.get(key(1002))).toBeUndefined();
    ct.delete(key(1001));
  });

  it('gathers the TCP ports sandboxes send live flows from, and marks clean only the stateless targets\' ports none sends from', () => {
    const now = monotonicNs();
    const live = entry(now + 60_000_000_000n);
    ct.set(key(443), live); // a sandbox's side, TCP
    ct.set({ ...key(444), proto: 17 }, live); // UDP: no stateless port is UDP
    ct.set({ ...key(445), hook: 2 }, live); // the uplink's side
    ct.set(key(446), entry(now - 1_000_000_000n)); // expired: collected, so not sending
    const clean = lxc.map(DatapathMaps.conntrackPortClean, u32, u64n);
    try {
      const sending = new Set<number>();
      collectExpired(ct, now, undefined, { sending });
      expect([...sending].sort()).toEqual([443]);
      const from = now - UNTRACKED_MARGIN_NS;
      clean.set(447, 5n);
      writeUntracked(clean, [443, 445, 446, 445], sending, from);
      expect([443, 445, 446, 447].map((p) => clean.get(p))).toEqual([0n, from, from, 5n]);
      clearUntracked(clean);
      expect([443, 445, 446, 447].map((p) => clean.get(p))).toEqual([0n, 0n, 0n, 0n]);
    } finally {
      for (const k of [key(443), { ...key(444), proto: 17 }, { ...key(445), hook: 2 }]) ct.delete(k);
      clean.close();
    }
  });
});
