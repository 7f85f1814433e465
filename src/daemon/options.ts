/** `bpfnet daemon` flags -> the engine's configuration, with DESIGN.md's defaults. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { formatCidr, formatIPv4, isMasked, masked, parseCidr, parseIPv4 } from '../ipam/ipv4.js';
import { firstOf, formatIp, formatPrefix, isMaskedPrefix, maskedPrefix, parsePrefix } from '../ipam/ip.js';
import { DEFAULT_POOLS, parseIpAddressPool, pickIpSubnet, ulaPoolFor, type AddressPool } from '../ipam/pools.js';
import type { EbpfTuning } from '../datapath/datapath.js';
import type { EngineConfig } from '../networks/config.js';
import { ipJson } from '../system/ip.js';
import { parseClusterStore } from '../cluster/etcd-cluster.js';
import type { ClusterSettings } from '../cluster/cluster-service.js';

export interface DaemonFlags {
  root?: string;
  socket?: string;
  datapath?: string;
  uplink?: string;
  bip?: string;
  defaultAddressPool?: string[];
  /** IPv6 on the default bridge (docker's --ipv6), with --fixed-cidr-v6 as its subnet (else one of the IPv6 pools). */
  ipv6?: boolean;
  fixedCidrV6?: string;
  instance?: string;
  logLevel?: string;
  /** ebpf tuning: connection-table entries, GC interval (s), timeouts "udp=30,tcp-established=3600". */
  ebpfCtMax?: string | number;
  ebpfGcInterval?: string | number;
  ebpfTimeouts?: string;
  /** "on" (default) or "off": bpf_redirect_peer to a veth uplink's peer. */
  ebpfUplinkShortcut?: string;
  /** Default upstream DNS servers (repeatable --dns), instead of the host's resolv.conf. */
  dns?: string[];
  /** logfmt (default) or json lines on stderr. */
  logFormat?: string;
  /** HOST:PORT for GET /metrics over TCP as well (off by default: the API socket serves it). */
  metricsAddr?: string;
  /** Per-endpoint series (one per endpoint: more series, so off by default). */
  metricsPerEndpoint?: boolean;
  /** Serve Docker's network and IPAM plugin protocol (dockerd's `-d bpfnet --ipam-driver bpfnet`). */
  dockerPlugin?: boolean;
  /** Where dockerd looks for plugin sockets (default /run/docker/plugins). */
  dockerPluginDir?: string;
  /** The config file to read (default /etc/bpfnet/daemon.json, which may be absent). */
  configFile?: string;
  /** etcd://HOST:PORT[,HOST:PORT...]: join a cluster (global-scope state in etcd). */
  clusterStore?: string;
  /** The address other hosts reach this one at (default: the uplink's). */
  advertiseAddr?: string;
  /** Seconds this host's endpoints outlive its last keepalive (default 10). */
  clusterLeaseTtl?: string | number;
}

export interface DaemonSettings {
  socket: string;
  datapath: 'iptables' | 'ebpf';
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  engine: EngineConfig;
  ebpf: EbpfTuning;
  /** --dns: the upstreams of the embedded DNS and the nameservers of sandboxes outside it; empty: the host's. */
  dns: string[];
  logFormat: 'logfmt' | 'json';
  metrics: { address?: { host: string; port: number }; perEndpoint: boolean };
  /** --cluster-store and friends; absent: single host. */
  cluster?: ClusterSettings;
  /** The Docker plugin socket's directory, when --docker-plugin is on. */
  dockerPlugin?: { dir: string };
}

/** "HOST:PORT" or "[V6]:PORT" -> its parts; throws naming the flag. */
export function parseListenAddress(flag: string, text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) throw new Error(`--${flag} must be HOST:PORT, like 127.0.0.1:9490, not "${text}"`);
  return { host: m[1] ?? m[2], port };
}

const TIMEOUT_NAMES = ['tcp-syn', 'tcp-established', 'tcp-fin', 'tcp-closed', 'udp', 'udp-stream', 'icmp'];

export function parseTuning(flags: DaemonFlags): EbpfTuning {
  const tuning: EbpfTuning = {};
  if (flags.ebpfCtMax !== undefined) {
    const n = Number(flags.ebpfCtMax);
    if (!Number.isInteger(n) || n < 16 || n > 16 * 1024 * 1024) throw new Error(`--ebpf-ct-max must be an integer between 16 and 16777216, not "${flags.ebpfCtMax}"`);
    tuning.ctMax = n;
  }
  if (flags.ebpfGcInterval !== undefined) {
    const s = Number(flags.ebpfGcInterval);
    if (!(s > 0 && s <= 3600)) throw new Error(`--ebpf-gc-interval must be seconds between 0 and 3600, not "${flags.ebpfGcInterval}"`);
    tuning.gcIntervalMs = Math.round(s * 1000);
  }
  if (flags.ebpfTimeouts) {
    tuning.timeouts = {};
    for (const kv of flags.ebpfTimeouts.split(',')) {
      const [name, value] = kv.split('=');
      const n = Number(value);
      if (!TIMEOUT_NAMES.includes(name) || !Number.isInteger(n) || n < 1)
        throw new Error(`--ebpf-timeouts: "${kv}" is not NAME=SECONDS with NAME one of ${TIMEOUT_NAMES.join(', ')}`);
      tuning.timeouts[name] = n;
    }
  }
  if (flags.ebpfUplinkShortcut !== undefined) {
    if (flags.ebpfUplinkShortcut !== 'on' && flags.ebpfUplinkShortcut !== 'off') throw new Error(`--ebpf-uplink-shortcut must be on or off, not "${flags.ebpfUplinkShortcut}"`);
    tuning.uplinkShortcut = flags.ebpfUplinkShortcut === 'on';
  }
  return tuning;
}

export const DEFAULTS = {
  root: '/var/lib/bpfnet',
  socket: '/run/bpfnet.sock',
  datapath: 'ebpf',
  bip: '172.17.0.1/16',
  instance: 'bpfnet',
  defaultBridgeName: 'bpfnet0',
} as const;

/** Short, stable prefix for objects inside the host namespace, derived from the instance name. */
export function linkPrefixFor(instance: string): string {
  return `bn${createHash('sha1').update(instance).digest('hex').slice(0, 4)}`;
}

async function defaultUplink(): Promise<string> {
  const routes = await ipJson<Array<{ dev?: string }>>(null, ['-4', 'route', 'show', 'default']);
  const dev = routes.find((r) => r.dev)?.dev;
  if (!dev) throw new Error('no default route in this namespace: give the uplink interface with --uplink IFACE');
  return dev;
}

/** The uplink's global IPv6 address (the source of NAT66), '' when it has none; deprecated and tentative ones are skipped. */
async function uplinkAddress6(ifname: string): Promise<string> {
  type Info = { family: string; local: string; scope: string; deprecated?: boolean; tentative?: boolean; temporary?: boolean };
  const addrs = await ipJson<Array<{ addr_info?: Info[] }>>(null, ['-6', 'addr', 'show', 'dev', ifname]).catch(() => []);
  const a = (addrs[0]?.addr_info ?? []).find((i) => i.family === 'inet6' && i.scope === 'global' && !i.deprecated && !i.tentative && !i.temporary);
  return a?.local ?? '';
}

/** This host's id for the default IPv6 pool: /etc/machine-id (and the instance, so daemons sharing a host differ). */
function hostId(instance: string): string {
  let machine = '';
  try {
    machine = readFileSync('/etc/machine-id', 'utf8').trim();
  } catch {
    /* no machine id: the instance alone */
  }
  return `${machine}:${instance}`;
}

/** --default-address-pool entries split by family; IPv6 defaults to a ULA /48 of this host (Docker 27+). */
export function resolvePools(entries: readonly string[] | undefined, id: string): Pick<EngineConfig, 'pools' | 'pools6'> {
  const parsed = (entries ?? []).map(parseIpAddressPool);
  const four = parsed.filter((p) => p.base.family === 4).map((p): AddressPool => ({ base: { addr: Number(p.base.addr), bits: p.base.bits }, size: p.size }));
  const six = parsed.filter((p) => p.base.family === 6);
  return { pools: parsed.length > 0 && four.length > 0 ? four : parsed.length > 0 ? [] : DEFAULT_POOLS, pools6: six.length > 0 ? six : [ulaPoolFor(id)] };
}

/** The default bridge's IPv6 subnet and gateway (--ipv6 [--fixed-cidr-v6]); undefined without --ipv6. */
export function resolveBridge6(flags: Pick<DaemonFlags, 'ipv6' | 'fixedCidrV6'>, pools6: EngineConfig['pools6']): EngineConfig['bridge6'] {
  if (!flags.ipv6) {
    if (flags.fixedCidrV6) throw new Error('--fixed-cidr-v6 needs --ipv6');
    return undefined;
  }
  const given = flags.fixedCidrV6 ? parsePrefix(flags.fixedCidrV6) : pickIpSubnet(pools6, []);
  if (!given || given.family !== 6 || given.bits > 126) throw new Error(`--fixed-cidr-v6 must be an IPv6 subnet like fd00:1::/64, not "${flags.fixedCidrV6}"`);
  if (!isMaskedPrefix(given)) throw new Error(`--fixed-cidr-v6 ${flags.fixedCidrV6}: it should be ${formatPrefix(maskedPrefix(given))}`);
  return { subnet: formatPrefix(given), gateway: formatIp({ family: 6, value: firstOf(given) + 1n }) };
}

async function uplinkAddress(ifname: string): Promise<string> {
  const addrs = await ipJson<Array<{ addr_info?: Array<{ family: string; local: string; scope: string }> }>>(null, ['-4', 'addr', 'show', 'dev', ifname]).catch(() => {
    throw new Error(`uplink interface "${ifname}" does not exist in this namespace`);
  });
  const a = addrs[0]?.addr_info?.find((i) => i.family === 'inet' && i.scope === 'global');
  if (!a) throw new Error(`uplink interface "${ifname}" has no global IPv4 address`);
  return a.local;
}

export async function resolveDaemonSettings(flags: DaemonFlags): Promise<DaemonSettings> {
  const datapath = flags.datapath ?? DEFAULTS.datapath;
  if (datapath !== 'ebpf' && datapath !== 'iptables') throw new Error(`--datapath must be ebpf or iptables, not "${datapath}"`);
  const bipText = flags.bip ?? DEFAULTS.bip;
  const bip = parseCidr(bipText);
  if (!bip || bip.bits > 30 || isMasked(bip)) throw new Error(`--bip must be the bridge's gateway address with its prefix, like 172.17.0.1/16, not "${bipText}"`);
  const instance = flags.instance ?? DEFAULTS.instance;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,31}$/.test(instance)) throw new Error(`--instance must be 1-32 characters of [a-zA-Z0-9_.-], not "${instance}"`);
  const { pools, pools6 } = resolvePools(flags.defaultAddressPool, hostId(instance));
  const bridge6 = resolveBridge6(flags, pools6);
  const uplinkIf = flags.uplink ?? (await defaultUplink());
  const uplinkIp = await uplinkAddress(uplinkIf);
  const uplinkIp6 = await uplinkAddress6(uplinkIf);
  const logLevel = (flags.logLevel ?? 'info') as DaemonSettings['logLevel'];
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new Error(`--log-level must be debug, info, warn or error, not "${logLevel}"`);
  let resolv = '';
  try {
    resolv = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    /* no host resolvers: sandboxes get none */
  }
  const ebpf = parseTuning(flags);
  const dns = flags.dns ?? [];
  for (const server of dns) if (parseIPv4(server) === undefined) throw new Error(`--dns must be an IPv4 address, not "${server}"`);
  const logFormat = (flags.logFormat ?? 'logfmt') as DaemonSettings['logFormat'];
  if (logFormat !== 'logfmt' && logFormat !== 'json') throw new Error(`--log-format must be logfmt or json, not "${flags.logFormat}"`);
  const metricsAddress = flags.metricsAddr ? parseListenAddress('metrics-addr', flags.metricsAddr) : undefined;
  const cluster = parseClusterFlags(flags, uplinkIp);
  if (flags.dockerPluginDir !== undefined && !flags.dockerPluginDir.startsWith('/')) throw new Error(`--docker-plugin-dir must be an absolute path, not "${flags.dockerPluginDir}"`);
  return {
    ...(cluster ? { cluster } : {}),
    ...(flags.dockerPlugin || flags.dockerPluginDir ? { dockerPlugin: { dir: flags.dockerPluginDir ?? '/run/docker/plugins' } } : {}),
    socket: flags.socket ?? DEFAULTS.socket,
    datapath,
    logLevel,
    logFormat,
    metrics: { ...(metricsAddress ? { address: metricsAddress } : {}), perEndpoint: flags.metricsPerEndpoint ?? false },
    ebpf,
    dns,
    engine: {
      root: flags.root ?? DEFAULTS.root,
      instance,
      linkPrefix: linkPrefixFor(instance),
      bip: { gateway: formatIPv4(bip.addr), subnet: formatCidr(masked(bip)) },
      defaultBridgeName: DEFAULTS.defaultBridgeName,
      pools,
      pools6,
      ...(bridge6 ? { bridge6 } : {}),
      uplink: { ifname: uplinkIf, ipv4: uplinkIp, ipv6: uplinkIp6 },
      hostNetnsPath: `/proc/${process.pid}/ns/net`,
      hostResolvConf: resolv,
    },
  };
}

/** --cluster-store, --advertise-addr, --cluster-lease-ttl -> ClusterSettings (undefined without a store). */
export function parseClusterFlags(flags: DaemonFlags, uplinkIp: string): ClusterSettings | undefined {
  if (flags.clusterStore === undefined) {
    if (flags.advertiseAddr !== undefined) throw new Error('--advertise-addr needs --cluster-store');
    return undefined;
  }
  const endpoints = parseClusterStore(flags.clusterStore);
  const advertiseAddr = flags.advertiseAddr ?? uplinkIp;
  if (parseIPv4(advertiseAddr) === undefined) throw new Error(`--advertise-addr must be an IPv4 address, not "${advertiseAddr}"`);
  const ttl = Number(flags.clusterLeaseTtl ?? 10);
  if (!Number.isInteger(ttl) || ttl < 2 || ttl > 3600) throw new Error(`--cluster-lease-ttl must be whole seconds between 2 and 3600, not "${flags.clusterLeaseTtl}"`);
  return { endpoints, advertiseAddr, leaseTtl: ttl };
}
