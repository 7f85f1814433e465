/**
 * The CNI protocol as bpfnet-cni speaks it (containernetworking/cni SPEC.md, versions 0.3.1 to
 * 1.1.0): the well-known error codes, the environment of one call, the plugin configuration it
 * reads and the result it writes. Pure: main.ts does the I/O and talks to the daemon.
 */

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export const LATEST_VERSION = '1.1.0';

/** SPEC.md "Error": 0-99 are the spec's, 100+ this plugin's. */
export const CniCode = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnv: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  /** STATUS: the plugin cannot serve ADD now. */
  notAvailable: 50,
  /** The daemon refused the request (a port already published, an address in use). */
  refused: 100,
  /** CHECK found the endpoint other than ADD built it. */
  checkFailed: 101,
} as const;

export class CniError extends Error {
  override readonly name = 'CniError';
  constructor(
    readonly code: number,
    message: string,
    readonly details = '',
  ) {
    super(message);
  }

  json(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';
const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'];

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifname: string;
  args: string;
  path: string;
}

// SPEC.md: the container id starts alphanumeric, then alphanumerics, _ . -; the ifname is a Linux interface name.
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const IFNAME = /^[a-zA-Z0-9_.-]{1,15}$/;

/** The CNI_* variables of one call, checked for what the command needs (code 4 otherwise). */
export function readEnv(env: Readonly<Record<string, string | undefined>>): CniEnv {
  const command = env.CNI_COMMAND ?? '';
  if (!COMMANDS.includes(command as CniCommand)) throw new CniError(CniCode.invalidEnv, `invalid CNI_COMMAND "${command.slice(0, 32)}"`, `one of ${COMMANDS.join(', ')}`);
  const e: CniEnv = {
    command: command as CniCommand,
    containerId: env.CNI_CONTAINERID ?? '',
    netns: env.CNI_NETNS ?? '',
    ifname: env.CNI_IFNAME ?? '',
    args: env.CNI_ARGS ?? '',
    path: env.CNI_PATH ?? '',
  };
  if (e.command === 'ADD' || e.command === 'DEL' || e.command === 'CHECK') {
    const missing = [!e.containerId && 'CNI_CONTAINERID', !e.ifname && 'CNI_IFNAME', e.command !== 'DEL' && !e.netns && 'CNI_NETNS'].filter(Boolean);
    if (missing.length > 0) throw new CniError(CniCode.invalidEnv, `required environment variables missing: ${missing.join(', ')}`);
    if (e.containerId.length > 255 || !CONTAINER_ID.test(e.containerId)) throw new CniError(CniCode.invalidEnv, `invalid CNI_CONTAINERID "${e.containerId.slice(0, 64)}"`, 'must start with a letter or digit, then letters, digits, _ . -; at most 255');
    if (!IFNAME.test(e.ifname) || ['.', '..', 'lo'].includes(e.ifname)) throw new CniError(CniCode.invalidEnv, `invalid CNI_IFNAME "${e.ifname.slice(0, 32)}"`, '1-15 characters of [a-zA-Z0-9_.-], not lo');
    if (e.netns && !e.netns.startsWith('/')) throw new CniError(CniCode.invalidEnv, `invalid CNI_NETNS "${e.netns.slice(0, 128)}": an absolute path`);
  }
  return e;
}

/** What bpfnet-cni takes from CNI_ARGS ("K=V;K=V"): IP and MAC, as podman 4 and the reference plugins pass --ip and --mac-address. */
export interface CniArgs {
  ips: string[];
  mac?: string;
}

// Keys runtimes commonly send that mean nothing here; others fail unless IgnoreUnknown is set, as the reference plugins do.
const KNOWN_ARGS = new Set(['IgnoreUnknown', 'IP', 'MAC', 'K8S_POD_NAME', 'K8S_POD_NAMESPACE', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID']);

export function parseCniArgs(text: string): CniArgs {
  const out: CniArgs = { ips: [] };
  if (text.trim() === '') return out;
  if (text.length > 4096) throw new CniError(CniCode.invalidEnv, 'CNI_ARGS longer than 4096 characters');
  const pairs = text.split(';').filter((p) => p !== '').map((p) => {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new CniError(CniCode.invalidEnv, `invalid CNI_ARGS pair "${p.slice(0, 64)}": KEY=VALUE`);
    return [p.slice(0, eq), p.slice(eq + 1)] as const;
  });
  const ignoreUnknown = pairs.some(([k, v]) => k === 'IgnoreUnknown' && ['1', 'true'].includes(v.toLowerCase()));
  for (const [k, v] of pairs) {
    if (k === 'IP') out.ips = v.split(',').filter(Boolean);
    else if (k === 'MAC') out.mac = v;
    else if (!KNOWN_ARGS.has(k) && !ignoreUnknown) throw new CniError(CniCode.invalidEnv, `unknown CNI_ARGS key "${k.slice(0, 64)}"`, 'set IgnoreUnknown=1 to pass keys bpfnet-cni does not use');
  }
  if (out.mac !== undefined && !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(out.mac)) throw new CniError(CniCode.invalidEnv, `invalid CNI_ARGS MAC "${out.mac.slice(0, 64)}"`);
  if (out.ips.length > 8) throw new CniError(CniCode.invalidEnv, 'CNI_ARGS IP: at most 8 addresses');
  return out;
}

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
  hostIP: string;
}

export interface DnsConf {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** What bpfnet-cni reads of its configuration (the list's name and cniVersion are in it, as libcni sends them). */
export interface PluginConf {
  cniVersion: string;
  /** The CNI network's name (the conflist's). */
  name: string;
  type: string;
  /** The daemon's socket (default the CLI's). */
  socket: string;
  /** The bpfnet network (default: name). */
  network: string;
  /** Creates the bpfnet network when it is missing; when it exists, must be its subnet. */
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  /**
   * The IPv6 subnets of a network bpfnet-cni may create ("subnet6": one, or a list), with their
   * gateways by position ("gateway6"); when the network exists, must be its IPv6 subnets. With no
   * "subnet" the network is IPv6-only.
   */
  subnet6: string[];
  gateway6: string[];
  dns?: DnsConf;
  portMappings: PortMapping[];
  /** runtimeConfig.ips: static addresses asked for (CIDR or bare). */
  ips: string[];
  mac?: string;
  prevResult?: CniResult;
  /** GC: the attachments the runtime still has. */
  validAttachments?: Array<{ containerID: string; ifname: string }>;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const bad = (msg: string, details = '') => new CniError(CniCode.invalidConfig, msg, details);

function optString(c: Record<string, unknown>, key: string, max = 256): string | undefined {
  const v = c[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > max) throw bad(`invalid "${key}": a string of at most ${max} characters`);
  return v;
}

/** A string or a list of them under key (none: empty). */
function oneOrList(c: Record<string, unknown>, key: string, max: number): string[] {
  const v = c[key];
  if (v === undefined || v === null) return [];
  if (typeof v === 'string' && v.length <= 64) return [v];
  if (Array.isArray(v) && v.length > 0 && v.length <= max && v.every((s) => typeof s === 'string' && s.length <= 64)) return v as string[];
  throw bad(`invalid "${key}": a string or a list of at most ${max} strings`);
}

function stringList(v: unknown, what: string, max = 32): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.length > max || v.some((s) => typeof s !== 'string' || s.length > 256)) throw bad(`invalid ${what}: a list of at most ${max} strings`);
  return v as string[];
}

/** The cniVersion of a configuration text, checked against the versions this plugin speaks (code 1). */
export function parseJson(stdin: string): Record<string, unknown> {
  let c: unknown;
  try {
    c = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CniCode.decodeFailure, 'could not decode the network configuration on stdin', (err as Error).message.slice(0, 200));
  }
  if (!isObj(c)) throw new CniError(CniCode.decodeFailure, 'the network configuration on stdin is not a JSON object');
  return c;
}

export function checkVersion(version: unknown): string {
  if (typeof version !== 'string' || version === '') throw bad('"cniVersion" is required');
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version))
    throw new CniError(CniCode.incompatibleVersion, 'incompatible CNI versions', `config is "${version.slice(0, 32)}", plugin supports [${SUPPORTED_VERSIONS.join(' ')}]`);
  return version;
}

/** -1, 0, 1 as a is older, the same, newer than b (x.y.z). */
export function compareVersion(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) < (pb[i] ?? 0) ? -1 : 1;
  return 0;
}

function parsePortMappings(v: unknown): PortMapping[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.length > 1024) throw bad('invalid runtimeConfig.portMappings: a list of at most 1024 mappings');
  return v.map((m, i) => {
    if (!isObj(m)) throw bad(`invalid runtimeConfig.portMappings[${i}]: an object`);
    const port = (k: string) => {
      const n = m[k];
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) throw bad(`invalid runtimeConfig.portMappings[${i}].${k}: an integer 1-65535`);
      return n;
    };
    const protocol = m.protocol === undefined || m.protocol === '' ? 'tcp' : m.protocol;
    if (protocol !== 'tcp' && protocol !== 'udp') throw bad(`invalid runtimeConfig.portMappings[${i}].protocol: tcp or udp`, 'bpfnet publishes tcp and udp; sctp is not supported');
    const hostIP = m.hostIP ?? '';
    if (typeof hostIP !== 'string' || hostIP.length > 64) throw bad(`invalid runtimeConfig.portMappings[${i}].hostIP: an address`);
    return { hostPort: port('hostPort'), containerPort: port('containerPort'), protocol, hostIP };
  });
}

/** The plugin configuration of an ADD, DEL, CHECK, STATUS or GC (code 7 for what is wrong in it). */
export function parseConf(c: Record<string, unknown>, defaultSocket: string): PluginConf {
  const cniVersion = checkVersion(c.cniVersion);
  const name = optString(c, 'name');
  if (!name) throw bad('"name" is required: the CNI network\'s name');
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw bad(`invalid "name" "${name.slice(0, 64)}": letters, digits, _ . -`);
  const type = optString(c, 'type') ?? '';
  if (isObj(c.ipam) && c.ipam.type !== undefined)
    throw new CniError(CniCode.unsupportedField, 'bpfnet-cni does its own IPAM: remove "ipam"', 'give "subnet" (and "gateway", "ipRange") and/or "subnet6" (one or a list, with "gateway6") for a network bpfnet-cni may create, or create it with bpfnet network create');
  const socket = optString(c, 'socket', 1024) ?? defaultSocket;
  if (!socket.startsWith('/')) throw bad(`invalid "socket" "${socket.slice(0, 64)}": an absolute path`);
  const rc = isObj(c.runtimeConfig) ? c.runtimeConfig : {};
  if (c.runtimeConfig !== undefined && c.runtimeConfig !== null && !isObj(c.runtimeConfig)) throw bad('invalid "runtimeConfig": an object');
  let dns: DnsConf | undefined;
  if (c.dns !== undefined && c.dns !== null) {
    if (!isObj(c.dns)) throw bad('invalid "dns": an object');
    dns = {};
    const ns = stringList(c.dns.nameservers, 'dns.nameservers');
    if (ns.length) dns.nameservers = ns;
    const search = stringList(c.dns.search, 'dns.search');
    if (search.length) dns.search = search;
    const options = stringList(c.dns.options, 'dns.options');
    if (options.length) dns.options = options;
    const domain = optString(c.dns, 'domain');
    if (domain) dns.domain = domain;
  }
  const mac = rc.mac === undefined || rc.mac === null ? undefined : rc.mac;
  if (mac !== undefined && (typeof mac !== 'string' || !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac))) throw bad('invalid runtimeConfig.mac: six hex bytes as aa:bb:cc:dd:ee:ff');
  let validAttachments: PluginConf['validAttachments'];
  const va = c['cni.dev/valid-attachments'];
  if (va !== undefined && va !== null) {
    if (!Array.isArray(va) || va.length > 100_000) throw bad('invalid "cni.dev/valid-attachments": a list');
    validAttachments = va.map((a, i) => {
      if (!isObj(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') throw bad(`invalid "cni.dev/valid-attachments"[${i}]: {containerID, ifname}`);
      return { containerID: a.containerID, ifname: a.ifname };
    });
  }
  if (c.prevResult !== undefined && c.prevResult !== null && !isObj(c.prevResult)) throw bad('invalid "prevResult": an object');
  const subnet6 = oneOrList(c, 'subnet6', 16);
  const gateway6 = oneOrList(c, 'gateway6', 16);
  if (gateway6.length > subnet6.length) throw bad('invalid "gateway6": one per "subnet6" entry at most, by position');
  return {
    cniVersion,
    name,
    type,
    socket,
    network: optString(c, 'network') ?? name,
    subnet: optString(c, 'subnet', 64),
    gateway: optString(c, 'gateway', 64),
    ipRange: optString(c, 'ipRange', 64),
    subnet6,
    gateway6,
    dns,
    portMappings: parsePortMappings(rc.portMappings),
    ips: stringList(rc.ips, 'runtimeConfig.ips', 8),
    ...(mac !== undefined ? { mac: mac as string } : {}),
    ...(isObj(c.prevResult) ? { prevResult: c.prevResult as unknown as CniResult } : {}),
    ...(validAttachments ? { validAttachments } : {}),
  };
}

export interface CniInterface {
  name: string;
  mac?: string;
  sandbox?: string;
  mtu?: number;
}

export interface CniIp {
  /** Only before 1.0.0: "4" or "6". */
  version?: '4' | '6';
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIp[];
  routes?: CniRoute[];
  dns?: DnsConf;
}

/** What the daemon made for one attachment, in the plugin's terms. */
export interface Attachment {
  hostIfname: string;
  ifname: string;
  mac: string;
  netns: string;
  /** CIDR or ''. */
  ipv4: string;
  gateway: string;
  /** CIDR or '' (filled once networks carry IPv6). */
  ipv6: string;
  gateway6: string;
}

/** The ADD result in the configuration's version, after prevResult's interfaces, ips and routes when there is one. */
export function addResult(conf: PluginConf, att: Attachment): CniResult {
  const old = compareVersion(conf.cniVersion, '1.0.0') < 0;
  const prev = conf.prevResult;
  const interfaces: CniInterface[] = [...(prev?.interfaces ?? [])];
  const base = interfaces.length;
  interfaces.push({ name: att.hostIfname }, { name: att.ifname, mac: att.mac, sandbox: att.netns });
  const ips: CniIp[] = (prev?.ips ?? []).map((ip) => (old ? { version: ip.version ?? (ip.address.includes(':') ? '6' : '4'), ...ip } : withoutVersion(ip)));
  const routes: CniRoute[] = [...(prev?.routes ?? [])];
  const family = (address: string, gateway: string, v: '4' | '6', dst: string) => {
    if (!address) return;
    ips.push({ ...(old ? { version: v } : {}), address, ...(gateway ? { gateway } : {}), interface: base + 1 });
    if (gateway && !routes.some((r) => r.dst === dst)) routes.push({ dst, gw: gateway });
  };
  family(att.ipv4, att.gateway, '4', '0.0.0.0/0');
  family(att.ipv6, att.gateway6, '6', '::/0');
  const dns = conf.dns ?? prev?.dns;
  return { cniVersion: conf.cniVersion, interfaces, ips, routes, ...(dns ? { dns } : {}) };
}

function withoutVersion(ip: CniIp): CniIp {
  const { version: _v, ...rest } = ip;
  return rest;
}

/** The daemon's key of a CNI attachment. */
export function attachmentKey(containerId: string, ifname: string): string {
  return `${containerId}:${ifname}`;
}

/** The daemon-side owner of a CNI network's endpoints (GC lists by it). */
export function ownerOf(conf: PluginConf): string {
  return `cni:${conf.name}`.slice(0, 64);
}
