/** The daemon's configuration as the services see it (parsed from `bpfnet daemon` flags). */
import type { AddressPool, IpAddressPool } from '../ipam/pools.js';

export interface EngineConfig {
  /** State directory (SQLite store, sandbox logs). */
  root: string;
  /** Names global kernel objects: namespaces `<instance>-<id>`, pins /sys/fs/bpf/<instance>. */
  instance: string;
  /** Short prefix for objects inside the host namespace: veths, bridges, chains (e.g. "bn3f2a"). */
  linkPrefix: string;
  /** The default bridge: gateway address and subnet (--bip), device name. */
  bip: { gateway: string; subnet: string };
  defaultBridgeName: string;
  pools: readonly AddressPool[];
  /** Where IPv6 subnets come from when none is given (default: the host's ULA /48 in /64s, as Docker 27+). */
  pools6: readonly IpAddressPool[];
  /** The default bridge's IPv6 (daemon --ipv6 --fixed-cidr-v6): its subnet, and the gateway on it. */
  bridge6?: { subnet: string; gateway: string };
  /** The uplink (default route), its IPv4 address and its global IPv6 address ('' or absent: none). */
  uplink: { ifname: string; ipv4: string; ipv6?: string };
  /** The daemon's own network namespace (host-mode sandboxes live here). */
  hostNetnsPath: string;
  /** The host's resolvers, for sandboxes that do not use the embedded DNS. */
  hostResolvConf: string;
}

/** The namespace name of a sandbox. */
export function sandboxNetnsName(cfg: EngineConfig, sandboxId: string): string {
  return `${cfg.instance}-${sandboxId.slice(0, 12)}`;
}

/** Host-side veth of an endpoint: prefix + endpoint id, within IFNAMSIZ (15). */
export function hostIfname(cfg: Pick<EngineConfig, 'linkPrefix'>, endpointId: string): string {
  return `${cfg.linkPrefix}${endpointId.slice(0, 15 - cfg.linkPrefix.length)}`;
}

/** Bridge device of a user-defined network without an explicit name. */
export function bridgeName(cfg: Pick<EngineConfig, 'linkPrefix'>, networkId: string): string {
  return `${cfg.linkPrefix}-${networkId.slice(0, 14 - cfg.linkPrefix.length)}`;
}
