/**
 * Overlay networks on the iptables datapath: not carried (yet). Docker's way — a kernel
 * VXLAN device per network enslaved to the network's bridge, with the kernel's FDB filled
 * per remote endpoint — is what the benchmark builds by hand as its reference; the daemon
 * refuses such networks clearly instead of creating one that reaches no other host.
 */
import { invalid } from '../../errors.js';
import type { NetworkSpec } from '../datapath.js';

export function refuseOverlay(net: NetworkSpec): void {
  if (net.vni !== undefined)
    throw invalid(`network ${net.name}: overlay networks need the ebpf datapath (this daemon runs --datapath iptables); restart the daemon with --datapath ebpf`);
}
