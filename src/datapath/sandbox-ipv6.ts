/**
 * IPv6 is not supported yet by either datapath: the ebpf one drops it, and the sandbox must
 * not speak it either (addrgenmode none still lets a process configure an address and send).
 * Disabled inside the sandbox's namespace only, never the host's.
 */
import type { EndpointSpec } from './datapath.js';
import { writeSysctls } from '../system/sysctl.js';

const KEYS = ['net.ipv6.conf.all.disable_ipv6', 'net.ipv6.conf.default.disable_ipv6'] as const;

/** Idempotent (writing 1 again changes nothing); one process. */
export async function disableSandboxIPv6(ep: EndpointSpec): Promise<void> {
  if (!ep.netnsPath) return;
  const target = { netnsPath: ep.netnsPath };
  try {
    await writeSysctls(target, Object.fromEntries(KEYS.map((k) => [k, '1'])));
  } catch (err) {
    throw new Error(`could not disable IPv6 in sandbox namespace ${ep.netnsPath}: ${(err as Error).message}`);
  }
}
