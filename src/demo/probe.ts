/**
 * Demo, part 1: the platform. Loads the XDP and TC probe programs into a lab host,
 * sends real pings from the external namespace and shows what the programs counted.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { BpfObject, sumPerCpu, type BpfLink } from '../datapath/libbpf/bpf.js';
import { u32 } from '../datapath/libbpf/codec.js';
import { ProbeMaps, ProbeSlot, probeCounter } from '../datapath/abi.js';
import { UPLINK, type Lab } from '../lab/lab.js';
import { bpfObject } from '../paths.js';

export async function probeDemo(lab: Lab, say: (line: string) => void): Promise<void> {
  const pinDir = join(lab.pinDir(), 'probe');
  mkdirSync(pinDir, { recursive: true });
  const consts = { probe_match_proto: Buffer.from([1]) }; // ICMP only
  const xdp = BpfObject.load(bpfObject('probe_xdp'), { pinRoot: pinDir, consts });
  const tc = BpfObject.load(bpfObject('probe_tc'), { pinRoot: pinDir, consts });
  const target = { netns: lab.host.path, ifname: UPLINK.hostIf };
  const links: BpfLink[] = [];
  try {
    links.push(xdp.program('probe_xdp').attachXdp(target, 'native'));
    links.push(tc.program('probe_tc_ingress').attachTc(target, 'ingress'));
    links.push(tc.program('probe_tc_egress').attachTc(target, 'egress'));
    say(`attached probe_xdp (XDP, native) and probe_tc_ingress/egress (tcx) to ${UPLINK.hostIf} in ${lab.host.name}`);
    say(`$ ping -c 4 ${UPLINK.hostAddress}   (from ${lab.external.name})`);
    await lab.exec(lab.external, 'ping', ['-c', '4', '-i', '0.1', '-q', UPLINK.hostAddress]);
    const counters = tc.perCpuMap(ProbeMaps.counters, u32, probeCounter);
    const rows: Array<[string, number]> = [
      ['xdp', ProbeSlot.XDP],
      ['tc ingress', ProbeSlot.TC_INGRESS],
      ['tc egress', ProbeSlot.TC_EGRESS],
    ];
    say('HOOK         PACKETS  BYTES');
    for (const [label, slot] of rows) {
      const c = sumPerCpu(counters.get(slot) ?? []);
      say(`${label.padEnd(12)} ${String(c.packets).padStart(7)}  ${String(c.bytes).padStart(5)}`);
    }
    counters.close();
  } finally {
    for (const l of links) l.detach();
    xdp.close();
    tc.close();
  }
  say('detached the probes');
}
