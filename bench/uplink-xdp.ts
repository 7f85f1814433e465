/**
 * XDP or TC on the uplink? The eBPF datapath's published-port path runs in TC. This section
 * measures what XDP would cost before it could gain anything: one TCP stream from the external
 * client to the published iperf3 port, with the datapath's TC programs alone and with a no-op
 * XDP program (XDP_PASS, build/bpf/probe_xdp.bpf.o) attached natively to the uplink as well,
 * alternating per repetition. Any XDP implementation of this path pays at least that.
 */
import { UPLINK } from '../src/lab/lab.js';
import { BpfObject } from '../src/datapath/libbpf/bpf.js';
import { bpfObject } from '../src/paths.js';
import type { UplinkXdpResults } from './results-model.js';
import type { Setup } from './setups/setup.js';
import { runIperf } from './workloads/iperf.js';
import type { Durations } from './workloads/workload.js';

/** One paired repetition: TC alone, then TC with XDP (the order flips every repetition). */
export async function measureUplinkXdp(setup: Setup, rep: number, d: Durations, into: UplinkXdpResults): Promise<void> {
  const target = setup.targets.published;
  if (!target) throw new Error(`setup ${setup.name} has no published-port path`);
  const obj = BpfObject.load(bpfObject('probe_xdp'));
  try {
    const prog = obj.program('probe_xdp');
    const order: Array<'tc' | 'xdp'> = rep % 2 === 0 ? ['tc', 'xdp'] : ['xdp', 'tc'];
    for (const mode of order) {
      const link = mode === 'xdp' ? prog.attachXdp({ netns: setup.lab.host.path, ifname: UPLINK.hostIf }, 'native') : undefined;
      try {
        const sample = await runIperf(setup.lab, target, 1, d);
        (mode === 'xdp' ? into.tcXdpGbps : into.tcGbps)[rep] = sample.metrics.gbps;
      } finally {
        link?.detach();
      }
    }
  } finally {
    obj.close();
  }
}
