/** Picks the datapath implementation the daemon was asked for. */
import type { Datapath, DatapathContext } from './datapath.js';

export async function createDatapath(kind: 'iptables' | 'ebpf', ctx: DatapathContext): Promise<Datapath> {
  if (kind === 'iptables') {
    const { IptablesDatapath } = await import('./iptables/iptables-datapath.js');
    return new IptablesDatapath(ctx);
  }
  const { EbpfDatapath } = await import('./ebpf/ebpf-datapath.js');
  return new EbpfDatapath(ctx);
}
