/**
 * Where the datapath's programs sit: classic clsact filters (direct action) at one priority
 * that is bpfnet's. A filter lives with its device, so forwarding goes on while the daemon is
 * down without any pin; re-attaching at the same priority swaps in a restarted daemon's
 * programs atomically; and attach and detach take ~0.3 ms here, where a tcx link waits for an
 * RCU grace period (~14 ms each) — two per sandbox would dominate creating one.
 */
import { detachTcFilter, type BpfProgram, type TcDirection } from '../libbpf/bpf.js';

/** bpfnet's filter priority on every hook it uses (other tc users keep theirs). */
export const FILTER_PRIORITY = 0xb9f;

export class Hooks {
  /** Makes sure `program` is the bpfnet filter at ifname's direction hook in netns (null: ours). */
  ensure(netns: string | null, ifname: string, direction: TcDirection, program: BpfProgram): void {
    program.attachTcFilter({ netns, ifname }, direction, FILTER_PRIORITY);
  }

  /** Removes the bpfnet filter; an absent filter or device is fine. */
  remove(netns: string | null, ifname: string, direction: TcDirection): void {
    detachTcFilter({ netns, ifname }, direction, FILTER_PRIORITY);
  }
}

/** The in-kernel resolver's filter (bpf/dns.bpf.c) on a sandbox's host veth: just before ours, on either datapath. */
export const DNS_FILTER_PRIORITY = FILTER_PRIORITY - 1;
