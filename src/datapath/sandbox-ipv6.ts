/**
 * IPv6 inside a sandbox follows its endpoints: an endpoint without an IPv6 address must not
 * speak it (the ebpf datapath drops it; addrgenmode none still lets a process configure an
 * address and send), so IPv6 is disabled in the namespace; an endpoint with one needs it on.
 * Written inside the sandbox's namespace only, never the host's.
 */
import type { EndpointSpec } from './datapath.js';
import { writeSysctls } from '../system/sysctl.js';

const KEYS = ['net.ipv6.conf.all.disable_ipv6', 'net.ipv6.conf.default.disable_ipv6'] as const;

async function setSandboxIPv6(ep: EndpointSpec, disabled: boolean): Promise<void> {
  if (!ep.netnsPath) return;
  const target = { netnsPath: ep.netnsPath };
  const keys: string[] = [...KEYS];
  // The endpoint's own interface was made while the namespace default may have been "off".
  if (!disabled && ep.ifname) keys.push(`net.ipv6.conf.${ep.ifname}.disable_ipv6`);
  try {
    await writeSysctls(target, Object.fromEntries(keys.map((k) => [k, disabled ? '1' : '0'])));
  } catch (err) {
    throw new Error(`could not ${disabled ? 'disable' : 'enable'} IPv6 in sandbox namespace ${ep.netnsPath}: ${(err as Error).message}`);
  }
}

/** Idempotent (writing 1 again changes nothing); one process. */
export async function disableSandboxIPv6(ep: EndpointSpec): Promise<void> {
  await setSandboxIPv6(ep, true);
}

/** For an endpoint with an IPv6 address: on in the namespace and on its interface. Idempotent. */
export async function enableSandboxIPv6(ep: EndpointSpec): Promise<void> {
  await setSandboxIPv6(ep, false);
}

/** What the endpoint needs: on with an IPv6 address, off without. */
export async function applySandboxIPv6(ep: EndpointSpec): Promise<void> {
  await (ep.ipv6 ? enableSandboxIPv6(ep) : disableSandboxIPv6(ep));
}
