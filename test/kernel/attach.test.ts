// XDP and TC programs attached inside a lab count real packets exactly; ring buffer
// events arrive on the event loop; detach leaves nothing behind; no thread changes namespace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readlinkSync, rmSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { BpfLink, BpfObject, RingBuffer, interfaceIndex, sumPerCpu, type PerCpuMap } from '../../src/datapath/libbpf/bpf.js';
import { u32, u8 } from '../../src/datapath/libbpf/codec.js';
import { probeCounter, probeEvent, ProbeSlot, ProbeMaps } from '../../src/datapath/abi.js';
import { Lab, UPLINK } from '../../src/lab/lab.js';
import { bpfObject, projectRoot } from '../../src/paths.js';
import { run } from '../../src/system/exec.js';

let lab: Lab;
const target = () => ({ netns: lab.host.path, ifname: UPLINK.hostIf });

beforeAll(async () => {
  lab = await Lab.create();
});
afterAll(async () => {
  await lab?.destroy();
});

/** Loads both probe objects sharing one counters map under pinDir, counting IPv4 `proto` only. */
function loadProbes(pinDir: string, proto: number, events = false) {
  mkdirSync(pinDir, { recursive: true });
  const consts = { probe_match_proto: Buffer.from([proto]), probe_emit_events: Buffer.from([events ? 1 : 0]) };
  const xdp = BpfObject.load(bpfObject('probe_xdp'), { pinRoot: pinDir, consts });
  const tc = BpfObject.load(bpfObject('probe_tc'), { pinRoot: pinDir, consts });
  const counters = tc.perCpuMap(ProbeMaps.counters, u32, probeCounter);
  const count = (slot: number) => sumPerCpu(counters.get(slot) ?? []);
  return { xdp, tc, counters, count };
}

function closeAll(...things: Array<{ close(): void } | undefined>): void {
  for (const t of things) t?.close();
}

async function bpftoolIds(kind: 'link' | 'prog'): Promise<number[]> {
  const out = await run('bpftool', ['-j', kind, 'show']);
  return (JSON.parse(out || '[]') as Array<{ id: number }>).map((x) => x.id);
}

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function threadNamespaces(): Set<string> {
  return new Set(readdirSync('/proc/self/task').map((tid) => readlinkSync(`/proc/self/task/${tid}/ns/net`)));
}

describe('counting real packets', () => {
  it('counts pings exactly at XDP (native), TC ingress and TC egress', async () => {
    const p = loadProbes(join(lab.pinDir(), 'icmp'), 1);
    const links: BpfLink[] = [];
    try {
      links.push(p.xdp.program('probe_xdp').attachXdp(target(), 'native'));
      links.push(p.tc.program('probe_tc_ingress').attachTc(target(), 'ingress'));
      links.push(p.tc.program('probe_tc_egress').attachTc(target(), 'egress'));
      await lab.exec(lab.external, 'ping', ['-c', '5', '-i', '0.05', '-W', '1', '-q', UPLINK.hostAddress]);
      // 56 bytes of payload + 8 ICMP + 20 IPv4 + 14 Ethernet = 98 bytes on the wire.
      expect(p.count(ProbeSlot.XDP)).toEqual({ packets: 5, bytes: 5 * 98 });
      expect(p.count(ProbeSlot.TC_INGRESS)).toEqual({ packets: 5, bytes: 5 * 98 });
      expect(p.count(ProbeSlot.TC_EGRESS)).toEqual({ packets: 5, bytes: 5 * 98 });
      const ifindex = interfaceIndex(lab.host.path, UPLINK.hostIf);
      for (const l of links) expect(l.info().ifindex).toBe(ifindex);
    } finally {
      for (const l of links) l.detach();
      closeAll(p.counters, p.xdp, p.tc);
    }
  });

  it('counts UDP datagrams exactly with XDP in generic mode', async () => {
    const p = loadProbes(join(lab.pinDir(), 'udp'), 17);
    const links: BpfLink[] = [];
    try {
      links.push(p.xdp.program('probe_xdp').attachXdp(target(), 'generic'));
      links.push(p.tc.program('probe_tc_ingress').attachTc(target(), 'ingress'));
      links.push(p.tc.program('probe_tc_egress').attachTc(target(), 'egress'));
      const send = `const s=require('dgram').createSocket('udp4');let n=0;const go=()=>{if(n++===7)return s.close();s.send(Buffer.alloc(100),9999,'${UPLINK.hostAddress}',go)};go();`;
      await lab.exec(lab.external, process.execPath, ['-e', send]);
      // 100 bytes of payload + 8 UDP + 20 IPv4 + 14 Ethernet = 142 bytes.
      expect(p.count(ProbeSlot.XDP)).toEqual({ packets: 7, bytes: 7 * 142 });
      expect(p.count(ProbeSlot.TC_INGRESS)).toEqual({ packets: 7, bytes: 7 * 142 });
      expect(p.count(ProbeSlot.TC_EGRESS)).toEqual({ packets: 0, bytes: 0 }); // replies are ICMP port unreachable
    } finally {
      for (const l of links) l.detach();
      closeAll(p.counters, p.xdp, p.tc);
    }
  });

  it('streams ring buffer events on the event loop', async () => {
    const p = loadProbes(join(lab.pinDir(), 'events'), 1, true);
    const seen: Array<ReturnType<typeof probeEvent.decodeFrom>> = [];
    const rb = new RingBuffer(p.tc.rawMap(ProbeMaps.events), probeEvent, (e) => seen.push(e));
    const link = p.tc.program('probe_tc_ingress').attachTc(target(), 'ingress');
    try {
      await lab.exec(lab.external, 'ping', ['-c', '3', '-i', '0.05', '-q', UPLINK.hostAddress]);
      await waitFor(() => seen.length >= 3, 'three ring buffer events');
      const ifindex = interfaceIndex(lab.host.path, UPLINK.hostIf);
      expect(seen).toEqual(
        Array.from({ length: 3 }, () => ({
          slot: ProbeSlot.TC_INGRESS,
          ifindex,
          len: 98,
          protocol: 1,
          saddr: UPLINK.externalAddress,
          daddr: UPLINK.hostAddress,
        })),
      );
      expect(rb.drain()).toBe(0);
    } finally {
      link.detach();
      rb.close();
      closeAll(p.counters, p.xdp, p.tc);
    }
  });
});

describe('attach and detach', () => {
  it('detach leaves no link or program behind', async () => {
    const p = loadProbes(join(lab.pinDir(), 'detach'), 1);
    const xdpProg = p.xdp.program('probe_xdp');
    const tcProg = p.tc.program('probe_tc_ingress');
    const progIds = [xdpProg.info().id, tcProg.info().id];
    const xdpLink = xdpProg.attachXdp(target(), 'native');
    const tcLink = tcProg.attachTc(target(), 'ingress');
    const linkIds = [xdpLink.info().id, tcLink.info().id];
    expect(await bpftoolIds('link')).toEqual(expect.arrayContaining(linkIds));
    xdpLink.detach();
    tcLink.detach();
    expect((await bpftoolIds('link')).filter((id) => linkIds.includes(id))).toEqual([]);
    const net = await run('bpftool', ['-j', 'net', 'show']);
    expect(net).not.toMatch(/probe_/);
    closeAll(xdpProg, tcProg, p.counters, p.xdp, p.tc);
    // Programs are freed after an RCU grace period once the last reference is gone.
    await waitFor(async () => (await bpftoolIds('prog')).every((id) => !progIds.includes(id)), 'programs to be freed');
  });

  it('a pinned link outlives the process that made it, until detached', async () => {
    const pinDir = join(lab.pinDir(), 'pinned');
    mkdirSync(pinDir, { recursive: true });
    const script = `
      import { BpfObject } from './src/datapath/libbpf/bpf.ts';
      const o = BpfObject.load(${JSON.stringify(bpfObject('probe_tc'))}, { pinRoot: ${JSON.stringify(pinDir)}, consts: { probe_match_proto: Buffer.from([1]) } });
      o.program('probe_tc_ingress').attachTc({ netns: ${JSON.stringify(lab.host.path)}, ifname: 'up0' }, 'ingress').pin(${JSON.stringify(join(pinDir, 'link'))});`;
    execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: projectRoot });
    const link = BpfLink.openPinned(join(pinDir, 'link'));
    const counters = (await import('../../src/datapath/libbpf/bpf.js')).PerCpuMap.openPinned(join(pinDir, ProbeMaps.counters), u32, probeCounter) as PerCpuMap<number, { packets: number; bytes: number }>;
    try {
      await lab.exec(lab.external, 'ping', ['-c', '2', '-i', '0.05', '-q', UPLINK.hostAddress]);
      expect(sumPerCpu(counters.get(ProbeSlot.TC_INGRESS) ?? []).packets).toBe(2);
      const id = link.info().id;
      link.detach();
      rmSync(join(pinDir, 'link'));
      expect(await bpftoolIds('link')).not.toContain(id);
    } finally {
      counters.close();
    }
  });

  it('refuses what cannot be attached, naming the interface and namespace', async () => {
    const p = loadProbes(join(lab.pinDir(), 'errors'), 1);
    const prog = p.xdp.program('probe_xdp');
    try {
      expect(() => prog.attachXdp({ netns: lab.host.path, ifname: 'nosuch0' })).toThrow(
        expect.objectContaining({ name: 'BpfError', code: 'ENODEV', message: expect.stringContaining(`"nosuch0" in netns "${lab.host.path}"`) }),
      );
      expect(() => prog.attachXdp({ netns: '/run/netns/bpfnet-no-such-ns', ifname: 'lo' })).toThrow(
        expect.objectContaining({ code: 'ENOENT', message: expect.stringMatching(/open network namespace/) }),
      );
      const first = prog.attachXdp(target(), 'native');
      expect(() => prog.attachXdp(target(), 'native')).toThrow(expect.objectContaining({ code: 'EBUSY' }));
      first.detach();
      expect(() => first.detach()).toThrow(expect.objectContaining({ code: 'EBADF' }));
      // A TC program cannot go on the XDP hook.
      const tcProg = p.tc.program('probe_tc_ingress');
      expect(() => tcProg.attachXdp(target())).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      tcProg.close();
    } finally {
      closeAll(prog, p.counters, p.xdp, p.tc);
    }
  });

  it('never leaves a thread of this process in another namespace', () => {
    const before = threadNamespaces();
    expect(before.size).toBe(1);
    const p = loadProbes(join(lab.pinDir(), 'threads'), 1);
    try {
      for (let i = 0; i < 20; i++) {
        p.tc.program('probe_tc_ingress').attachTc(target(), 'ingress').detach();
        interfaceIndex(lab.host.path, UPLINK.hostIf);
      }
      expect(threadNamespaces()).toEqual(before);
      expect(interfaceIndex(null, 'lo')).toBe(1);
    } finally {
      closeAll(p.counters, p.xdp, p.tc);
    }
  });
});
