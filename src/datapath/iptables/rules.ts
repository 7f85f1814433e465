/**
 * The iptables datapath's rule set, rendered from the desired state. Pure: no I/O, so the
 * whole layout is checked against golden files (test/unit/testdata/iptables/).
 *
 * The layout is Docker 28.2's with userland-proxy=false (moby calls it "hairpin") and
 * gateway mode nat, under bpfnet's own chain names, PREFIX = DatapathContext.linkPrefix
 * uppercased:
 *
 *   filter FORWARD     -> PREFIX-USER (the user's, never flushed), PREFIX-FORWARD
 *   PREFIX-FORWARD     -> PREFIX-CT, PREFIX-ISOLATION-STAGE-1, PREFIX-BRIDGE, then per-bridge icc/egress
 *   PREFIX-BRIDGE      -o br -> PREFIX (published-port ACCEPTs, then "no direct access from outside")
 *   nat PREROUTING/OUTPUT (dst-type LOCAL, 127.0.0.1 included) -> PREFIX (DNAT per published port)
 *   nat POSTROUTING    -> PREFIX-POSTROUTING (masquerade, host-local source, hairpin)
 *   raw PREROUTING     -> PREFIX-PREROUTING (drop direct access to sandbox addresses and
 *                         to loopback-bound ports from anywhere else)
 *
 * Docker writes its POSTROUTING and raw rules straight into the built-in chains; bpfnet
 * owns only chains carrying its prefix plus one jump per hook, so those rules live in
 * PREFIX-POSTROUTING (nat) and PREFIX-PREROUTING (raw).
 *
 * Every rule is written in the canonical form iptables-save prints, so what is applied can
 * be compared with what the kernel reports, rule for rule.
 */
import { isIP } from 'node:net';
import { portFamilies, type DesiredState, type EndpointSpec, type NetworkSpec, type PortSpec } from '../datapath.js';
import { contains, formatCidr, formatIPv4, masked, parseCidr, parseIPv4 } from '../../ipam/ipv4.js';
import { formatIPv6, ipv6Bytes } from '../libbpf/codec.js';

export type Table = 'raw' | 'filter' | 'nat';

/** The tables bpfnet writes, in the order iptables-save lists them. */
export const TABLES: readonly Table[] = ['raw', 'filter', 'nat'];

/** iptables refuses longer chain names (XT_EXTENSION_MAXNAMELEN - 1). */
const MAX_CHAIN_NAME = 28;
/** Linux interface names (IFNAMSIZ - 1); no characters that need quoting in a rule. */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

export interface ChainNames {
  /** PREFIX: the filter chain of published-port ACCEPTs and the nat chain of DNATs. */
  readonly main: string;
  readonly forward: string;
  readonly bridge: string;
  readonly ct: string;
  readonly isolation1: string;
  readonly isolation2: string;
  /** The user's chain: created once, never flushed, removed only by teardown. */
  readonly user: string;
  /** nat: masquerade and hairpin. */
  readonly postrouting: string;
  /** raw: direct-access drops. */
  readonly prerouting: string;
}

export function chainNames(linkPrefix: string): ChainNames {
  const p = linkPrefix.toUpperCase();
  if (!/^[A-Z0-9]+$/.test(p)) throw new Error(`invalid chain prefix "${linkPrefix}": letters and digits only`);
  const names: ChainNames = {
    main: p,
    forward: `${p}-FORWARD`,
    bridge: `${p}-BRIDGE`,
    ct: `${p}-CT`,
    isolation1: `${p}-ISOLATION-STAGE-1`,
    isolation2: `${p}-ISOLATION-STAGE-2`,
    user: `${p}-USER`,
    postrouting: `${p}-POSTROUTING`,
    prerouting: `${p}-PREROUTING`,
  };
  const longest = Object.values(names).reduce((a, b) => (b.length > a.length ? b : a));
  if (longest.length > MAX_CHAIN_NAME)
    throw new Error(`invalid chain prefix "${linkPrefix}": chain "${longest}" is longer than ${MAX_CHAIN_NAME} characters`);
  return names;
}

/** True when a chain name carries the prefix (PREFIX itself or PREFIX-anything). */
export function isOurChain(names: ChainNames, chain: string): boolean {
  return chain === names.main || chain.startsWith(`${names.main}-`);
}

/** One chain bpfnet owns and refills on every apply; rules are the text after `-A NAME `. */
export interface Chain {
  readonly table: Table;
  readonly name: string;
  readonly rules: readonly string[];
}

/** A jump from a built-in chain into ours; a built-in chain's hooks sit together, in this order. */
export interface Hook {
  readonly table: Table;
  readonly chain: string;
  readonly rule: string;
}

export interface RuleSet {
  readonly names: ChainNames;
  /** Every owned chain (all but the user's), grouped by table in TABLES order. */
  readonly chains: readonly Chain[];
  readonly hooks: readonly Hook[];
}

export interface RenderContext {
  /** DatapathContext.linkPrefix; uppercased for chain names. */
  linkPrefix: string;
}

/** Which rule set: iptables (4) or ip6tables (6). Both have the same chains and layout, as Docker's. */
export type Family = 4 | 6;

/** A published port after defaults are applied: the host address it binds ('' = every local address). */
interface Binding {
  protocol: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
  net: NetworkSpec;
}

const ANY_V4 = new Set(['', '0.0.0.0']);
const LOOPBACK = parseCidr('127.0.0.0/8')!;

function checkNetwork(net: NetworkSpec): void {
  const where = `network "${net.name}" (${net.id})`;
  if (!IFNAME.test(net.device)) throw new Error(`${where}: invalid bridge device name "${net.device}"`);
  if (!net.subnet && !net.subnet6) throw new Error(`${where}: neither an IPv4 nor an IPv6 subnet`);
  if (net.subnet && !parseCidr(net.subnet)) throw new Error(`${where}: invalid IPv4 subnet "${net.subnet}"`);
  if (net.subnet6 && !cidr6(net.subnet6)) throw new Error(`${where}: invalid IPv6 subnet "${net.subnet6}"`);
  if (net.hostBinding !== '' && parseIPv4(net.hostBinding) === undefined)
    throw new Error(`${where}: invalid host binding address "${net.hostBinding}"`);
}

function checkEndpoint(ep: EndpointSpec): void {
  if (!IFNAME.test(ep.hostIfname)) throw new Error(`endpoint ${ep.id}: invalid host interface name "${ep.hostIfname}"`);
  if (!ep.ipv4 && !ep.ipv6) throw new Error(`endpoint ${ep.id}: neither an IPv4 nor an IPv6 address`);
  if (ep.ipv4 && parseIPv4(ep.ipv4) === undefined) throw new Error(`endpoint ${ep.id}: invalid IPv4 address "${ep.ipv4}"`);
  if (ep.ipv6 && isIP(ep.ipv6) !== 6) throw new Error(`endpoint ${ep.id}: invalid IPv6 address "${ep.ipv6}"`);
}

/** A port's identity as the host sees it: one DNAT per (protocol, host address, host port). */
export function portLabel(p: PortSpec): string {
  return `${p.protocol}/${p.hostIp === '' ? '' : `${p.hostIp}:`}${p.hostPort}`;
}

function checkPort(p: PortSpec): void {
  const ok =
    (p.protocol === 'tcp' || p.protocol === 'udp') &&
    Number.isInteger(p.hostPort) && p.hostPort >= 1 && p.hostPort <= 65535 &&
    Number.isInteger(p.containerPort) && p.containerPort >= 1 && p.containerPort <= 65535;
  if (!ok) throw new Error(`published port ${portLabel(p)} -> ${p.containerIp}:${p.containerPort}: invalid protocol or port number`);
  if (p.hostIp !== '' && isIP(p.hostIp) === 0) throw new Error(`published port ${portLabel(p)}: host address "${p.hostIp}" is not an IP address`);
  if (isIP(p.hostIp) === 6 && !p.containerIp6) throw new Error(`published port ${portLabel(p)}: host address "${p.hostIp}" is IPv6 and the sandbox has no IPv6 address`);
  if (isIP(p.hostIp) === 4 && !p.containerIp) throw new Error(`published port ${portLabel(p)}: host address "${p.hostIp}" is IPv4 and the sandbox has no IPv4 address`);
  if (!p.containerIp && !p.containerIp6) throw new Error(`published port ${portLabel(p)}: the sandbox has neither an IPv4 nor an IPv6 address`);
  if (p.containerIp && parseIPv4(p.containerIp) === undefined)
    throw new Error(`published port ${portLabel(p)}: invalid sandbox address "${p.containerIp}"`);
  if (p.containerIp6 && isIP(p.containerIp6) !== 6)
    throw new Error(`published port ${portLabel(p)}: invalid sandbox IPv6 address "${p.containerIp6}"`);
}

/** An IPv6 CIDR, masked and canonical ("fd00:1::/64"), or undefined. */
function cidr6(text: string): string | undefined {
  const [addr, len] = text.split('/');
  const bits = Number(len);
  if (isIP(addr ?? '') !== 6 || len === undefined || !Number.isInteger(bits) || bits < 0 || bits > 128) return undefined;
  const b = ipv6Bytes(addr);
  for (let i = 0; i < 16; i++) b[i] &= bits >= (i + 1) * 8 ? 0xff : bits > i * 8 ? (0xff << (8 - (bits - i * 8))) & 0xff : 0;
  return `${formatIPv6(b)}/${bits}`;
}

const canon6 = (ip: string) => formatIPv6(ipv6Bytes(ip));

/**
 * The desired state as one family sees it: networks, endpoints and ports with an address of
 * that family, IPv6 ones restated in the IPv4 fields (subnet, gateway, ipv4, containerIp) so
 * one renderer writes both rule sets. NAT66 follows masquerade6 (gateway_mode_ipv6).
 */
function familyView(state: DesiredState, family: Family): DesiredState {
  if (family === 4)
    return {
      networks: state.networks.filter((n) => n.subnet),
      endpoints: state.endpoints.filter((e) => e.ipv4),
      ports: state.ports.filter((p) => portFamilies(p).v4).map((p) => (p.hostIp === '0.0.0.0' ? { ...p, hostIp: '' } : p)),
    };
  const nets = state.networks.filter((n) => n.subnet6);
  return {
    networks: nets.map((n) => ({ ...n, subnet: cidr6(n.subnet6!) ?? n.subnet6!, gateway: n.gateway6 ?? '', masquerade: n.masquerade6 !== false, hostBinding: '' })),
    endpoints: state.endpoints.filter((e) => e.ipv6).map((e) => ({ ...e, ipv4: canon6(e.ipv6!) })),
    ports: state.ports
      .filter((p) => portFamilies(p).v6)
      .map((p) => ({ ...p, hostIp: p.hostIp === '' || p.hostIp === '::' ? '' : canon6(p.hostIp), containerIp: canon6(p.containerIp6!) })),
  };
}

/** How one family writes addresses in rules, as iptables-save / ip6tables-save print them. */
interface AddressForm {
  host(ip: string): string;
  subnet(net: NetworkSpec): string;
  dnatTo(ip: string, port: number): string;
  loopback(ip: string): boolean;
  compare(a: string, b: string): number;
}

const FORM: Record<Family, AddressForm> = {
  4: {
    host: (ip) => `${ip}/32`,
    subnet: (net) => formatCidr(masked(parseCidr(net.subnet)!)),
    dnatTo: (ip, port) => `${ip}:${port}`,
    loopback: (ip) => contains(LOOPBACK, parseIPv4(ip) ?? 0),
    compare: (a, b) => (parseIPv4(a) ?? 0) - (parseIPv4(b) ?? 0),
  },
  6: {
    host: (ip) => `${ip}/128`,
    subnet: (net) => net.subnet,
    dnatTo: (ip, port) => `[${ip}]:${port}`,
    loopback: (ip) => ip === '::1',
    compare: (a, b) => Buffer.compare(ipv6Bytes(a || '::'), ipv6Bytes(b || '::')),
  },
};

/** Validates one spec of each kind; renderRules checks everything, these let callers refuse one bad input early. */
export const validate = { network: checkNetwork, endpoint: checkEndpoint, port: checkPort };

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Resolves host addresses (a port without one takes its network's host binding), drops
 * ports Docker does not publish (internal networks), refuses two different targets for one
 * host binding, and orders the rest: by host port, protocol, then specific addresses before
 * the wildcard so that a port bound to one address is not shadowed by a wildcard rule.
 */
function bindings(ports: readonly PortSpec[], nets: ReadonlyMap<string, NetworkSpec>, form: AddressForm): Binding[] {
  const seen = new Map<string, Binding>();
  for (const p of ports) {
    const net = nets.get(p.networkId);
    if (!net || net.internal) continue;
    let hostIp = p.hostIp === '' ? net.hostBinding : p.hostIp;
    if (ANY_V4.has(hostIp)) hostIp = '';
    const b: Binding = { protocol: p.protocol, hostIp, hostPort: p.hostPort, containerIp: p.containerIp, containerPort: p.containerPort, net };
    const key = `${b.protocol}/${hostIp}/${b.hostPort}`;
    const prev = seen.get(key);
    if (prev && (prev.containerIp !== b.containerIp || prev.containerPort !== b.containerPort))
      throw new Error(
        `published port ${portLabel(p)}: already published to ${prev.containerIp}:${prev.containerPort}, cannot also go to ${b.containerIp}:${b.containerPort}`,
      );
    seen.set(key, b);
  }
  return [...seen.values()].sort(
    (a, b) =>
      a.hostPort - b.hostPort ||
      byText(a.protocol, b.protocol) ||
      Number(a.hostIp === '') - Number(b.hostIp === '') ||
      form.compare(a.hostIp, b.hostIp),
  );
}

/** Each distinct string once, first occurrence wins (several host ports may share one container port). */
function unique(rules: string[]): string[] {
  return [...new Set(rules)];
}

const proto = (p: 'tcp' | 'udp', port: number) => `-p ${p} -m ${p} --dport ${port}`;

/** The full rule set of one family (iptables: 4, ip6tables: 6) for a desired state. Throws on an invalid spec, naming it. */
export function renderRules(full: DesiredState, ctx: RenderContext, family: Family = 4): RuleSet {
  const n = chainNames(ctx.linkPrefix);
  full.networks.forEach(checkNetwork);
  full.ports.forEach(checkPort);
  const state = familyView(full, family);
  const form = FORM[family];

  const nets = [...state.networks].sort((a, b) => byText(a.device, b.device) || byText(a.id, b.id));
  const devices = new Map<string, string>();
  for (const net of nets) {
    const other = devices.get(net.device);
    if (other !== undefined && other !== net.id) throw new Error(`network "${net.name}" (${net.id}): bridge "${net.device}" is also used by network ${other}`);
    devices.set(net.device, net.id);
  }
  const netById = new Map(nets.map((net) => [net.id, net]));
  const external = nets.filter((net) => !net.internal);
  const subnetOf = form.subnet;
  // Every subnet of a network of this family: IPv6 networks may have several.
  const subnetsOf = (net: NetworkSpec): string[] => [subnetOf(net), ...(family === 6 ? (net.moreSubnets6 ?? []).map((s) => cidr6(s.subnet) ?? s.subnet) : [])];

  full.endpoints.filter((ep) => full.networks.some((net) => net.id === ep.networkId)).forEach(checkEndpoint);
  const endpoints = state.endpoints.filter((ep) => netById.has(ep.networkId));
  endpoints.sort((a, b) => form.compare(a.ipv4, b.ipv4) || byText(a.id, b.id));

  const ports = bindings(state.ports, netById, form);

  // filter
  const main = [
    ...unique(ports.map((b) => `-d ${form.host(b.containerIp)} ! -i ${b.net.device} -o ${b.net.device} ${proto(b.protocol, b.containerPort)} -j ACCEPT`)),
    ...external.map((net) => `! -i ${net.device} -o ${net.device} -j DROP`),
  ];
  const forward = [`-j ${n.ct}`, `-j ${n.isolation1}`, `-j ${n.bridge}`];
  for (const net of nets) {
    const br = net.device;
    if (net.internal) forward.push(`-i ${br} -o ${br} -j ${net.icc ? 'ACCEPT' : 'DROP'}`);
    else if (net.icc) forward.push(`-i ${br} -j ACCEPT`);
    else forward.push(`-i ${br} -o ${br} -j DROP`, `-i ${br} ! -o ${br} -j ACCEPT`);
  }
  const bridge = external.map((net) => `-o ${net.device} -j ${n.main}`);
  const ct = external.map((net) => `-o ${net.device} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
  const isolation1 = [
    ...nets
      .filter((net) => net.internal)
      .flatMap((net) =>
        subnetsOf(net).length === 1
          ? [`! -s ${subnetOf(net)} -o ${net.device} -j DROP`, `! -d ${subnetOf(net)} -i ${net.device} -j DROP`]
          : // Several subnets: by device, as one "! -s" per subnet would drop the others.
            [`! -i ${net.device} -o ${net.device} -j DROP`, `-i ${net.device} ! -o ${net.device} -j DROP`],
      ),
    // A published port is the sanctioned way across networks (Docker 28, moby #49310): a
    // connection DNATed to it skips isolation; the target's own address stays blocked.
    ...(external.length > 0 ? ['-m conntrack --ctstate DNAT -j RETURN'] : []),
    ...external.map((net) => `-i ${net.device} ! -o ${net.device} -j ${n.isolation2}`),
  ];
  const isolation2 = external.map((net) => `-o ${net.device} -j DROP`);

  // nat: no "-i br -j RETURN" and no "! -i br" on the DNATs (userland-proxy=false), so a
  // sandbox reaches published ports through host addresses, its own included (hairpin).
  const dnat = ports.map(
    (b) => `${b.hostIp === '' ? '' : `-d ${form.host(b.hostIp)} `}${proto(b.protocol, b.hostPort)} -j DNAT --to-destination ${form.dnatTo(b.containerIp, b.containerPort)}`,
  );
  const postrouting = [
    ...external.flatMap((net) => [
      `-o ${net.device} -m addrtype --src-type LOCAL -j MASQUERADE`,
      ...(net.masquerade ? subnetsOf(net).map((s) => `-s ${s} ! -o ${net.device} -j MASQUERADE`) : []),
    ]),
    ...unique(ports.map((b) => `-s ${form.host(b.containerIp)} -d ${form.host(b.containerIp)} ${proto(b.protocol, b.containerPort)} -j MASQUERADE`)),
  ];

  // raw: with route_localnet=1 on the bridges, 127.0.0.1 is routable from them; and a
  // neighbour that routes a sandbox subnet via this host must not bypass the published ports.
  // IPv6 in gateway mode routed (no NAT66): sandbox addresses are reachable by route, and the
  // filter chains (published-port ACCEPTs, then DROP) decide, as Docker does.
  const nat = (net: NetworkSpec) => family === 4 || net.masquerade;
  const prerouting = [
    ...endpoints
      .filter((ep) => !netById.get(ep.networkId)!.internal && nat(netById.get(ep.networkId)!))
      .map((ep) => `-d ${form.host(ep.ipv4)} ! -i ${netById.get(ep.networkId)!.device} -j DROP`),
    ...unique(
      ports
        .filter((b) => b.hostIp !== '' && form.loopback(b.hostIp))
        .map((b) => `-d ${form.host(family === 4 ? formatIPv4(parseIPv4(b.hostIp)!) : b.hostIp)} ! -i lo ${proto(b.protocol, b.hostPort)} -j DROP`),
    ),
  ];

  const chains: Chain[] = [
    { table: 'raw', name: n.prerouting, rules: prerouting },
    { table: 'filter', name: n.main, rules: main },
    { table: 'filter', name: n.bridge, rules: bridge },
    { table: 'filter', name: n.ct, rules: ct },
    { table: 'filter', name: n.forward, rules: forward },
    { table: 'filter', name: n.isolation1, rules: isolation1 },
    { table: 'filter', name: n.isolation2, rules: isolation2 },
    { table: 'nat', name: n.main, rules: dnat },
    { table: 'nat', name: n.postrouting, rules: postrouting },
  ];
  const hooks: Hook[] = [
    { table: 'raw', chain: 'PREROUTING', rule: `-j ${n.prerouting}` },
    { table: 'filter', chain: 'FORWARD', rule: `-j ${n.user}` },
    { table: 'filter', chain: 'FORWARD', rule: `-j ${n.forward}` },
    { table: 'nat', chain: 'PREROUTING', rule: `-m addrtype --dst-type LOCAL -j ${n.main}` },
    { table: 'nat', chain: 'OUTPUT', rule: `-m addrtype --dst-type LOCAL -j ${n.main}` },
    { table: 'nat', chain: 'POSTROUTING', rule: `-j ${n.postrouting}` },
  ];
  return { names: n, chains, hooks };
}

// ---- iptables-save text and what to change in it ----

export interface SavedRule {
  readonly chain: string;
  /** The text after `-A CHAIN `. */
  readonly rule: string;
}

export interface SavedTable {
  readonly chains: Set<string>;
  readonly rules: SavedRule[];
}

/** iptables-save (or `iptables -S`) output by table. Counters and comments are dropped. */
export function parseSave(text: string, defaultTable?: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let current: SavedTable | undefined = defaultTable ? { chains: new Set(), rules: [] } : undefined;
  if (current) tables.set(defaultTable!, current);
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line.startsWith('*')) {
      current = { chains: new Set(), rules: [] };
      tables.set(line.slice(1), current);
    } else if (!current || line === '' || line.startsWith('#') || line === 'COMMIT') {
      continue;
    } else if (line.startsWith(':')) {
      current.chains.add(line.slice(1).split(' ')[0]);
    } else if (line.startsWith('-N ') || line.startsWith('-P ')) {
      current.chains.add(line.split(' ')[1]);
    } else if (line.startsWith('-A ')) {
      const rest = line.slice(3);
      const sp = rest.indexOf(' ');
      current.rules.push({ chain: rest.slice(0, sp), rule: rest.slice(sp + 1) });
    }
  }
  return tables;
}

/** The chain a rule jumps or goes to, if any. */
export function targetOf(rule: string): string | undefined {
  return /(?:^| )-[jg] (\S+)/.exec(rule)?.[1];
}

export interface RuleRef {
  readonly table: string;
  readonly chain: string;
  readonly rule: string;
}

/** What one iptables-restore --noflush transaction changes. */
export interface RestorePlan {
  /** Tables whose owned chains are (created if needed,) flushed and refilled. */
  readonly refill: readonly Table[];
  /** Rules to delete first: misplaced hooks, and jumps into chains that are going away. */
  readonly deletes: readonly RuleRef[];
  /** Hooks to insert at the head of their built-in chain, in order. */
  readonly inserts: readonly Hook[];
  /** Create the user's chain (it must not exist: declaring a chain flushes it). */
  readonly createUser: boolean;
  /** Chains to flush and delete: strays carrying the prefix, or everything on teardown. */
  readonly drop: ReadonlyArray<{ readonly table: string; readonly name: string }>;
}

/** The plan for a namespace without any of our chains: what the first apply sends. */
export function fullPlan(rs: RuleSet): RestorePlan {
  return { refill: TABLES, deletes: [], inserts: rs.hooks, createUser: true, drop: [] };
}

/**
 * Hooks whose built-in chain does not hold exactly ours, in order: every current jump into
 * our chains from there is deleted and the hooks are inserted again at the head.
 * `saved` needs only the hooked built-in chains (`iptables -S CHAIN` is enough).
 */
export function planHooks(rs: RuleSet, saved: ReadonlyMap<string, SavedTable>): { deletes: RuleRef[]; inserts: Hook[] } {
  const deletes: RuleRef[] = [];
  const inserts: Hook[] = [];
  const groups = new Map<string, Hook[]>();
  for (const h of rs.hooks) {
    const key = `${h.table}\0${h.chain}`;
    groups.set(key, [...(groups.get(key) ?? []), h]);
  }
  for (const hooks of groups.values()) {
    const { table, chain } = hooks[0];
    const current = (saved.get(table)?.rules ?? []).filter((r) => r.chain === chain && isOurChain(rs.names, targetOf(r.rule) ?? ''));
    const same = current.length === hooks.length && current.every((r, i) => r.rule === hooks[i].rule);
    if (same) continue;
    deletes.push(...current.map((r) => ({ table, chain, rule: r.rule })));
    inserts.push(...hooks);
  }
  return { deletes, inserts };
}

/**
 * Start: refill everything, put the hooks right, create the user's chain if missing, and
 * remove chains carrying the prefix that the rule set does not have (with every jump into them).
 */
export function planReconcile(rs: RuleSet, saved: ReadonlyMap<string, SavedTable>): RestorePlan {
  const wanted = new Set([...rs.chains.map((c) => `${c.table}\0${c.name}`), `filter\0${rs.names.user}`]);
  const drop: Array<{ table: string; name: string }> = [];
  for (const [table, t] of saved)
    for (const name of t.chains) if (isOurChain(rs.names, name) && !wanted.has(`${table}\0${name}`)) drop.push({ table, name });
  const { deletes, inserts } = planHooks(rs, saved);
  const dropping = new Set(drop.map((d) => `${d.table}\0${d.name}`));
  const deleted = new Set(deletes.map((d) => `${d.table}\0${d.chain}\0${d.rule}`));
  for (const [table, t] of saved) {
    for (const r of t.rules) {
      const target = targetOf(r.rule);
      if (!target || !dropping.has(`${table}\0${target}`)) continue;
      if (isOurChain(rs.names, r.chain) && (dropping.has(`${table}\0${r.chain}`) || rs.chains.some((c) => c.table === table && c.name === r.chain))) continue;
      const key = `${table}\0${r.chain}\0${r.rule}`;
      if (!deleted.has(key)) deletes.push({ table, chain: r.chain, rule: r.rule });
      deleted.add(key);
    }
  }
  return { refill: TABLES, deletes, inserts, createUser: !saved.get('filter')?.chains.has(rs.names.user), drop };
}

/** Teardown: every chain carrying the prefix, in any table, and every jump into them from elsewhere. */
export function planTeardown(names: ChainNames, saved: ReadonlyMap<string, SavedTable>): RestorePlan {
  const drop: Array<{ table: string; name: string }> = [];
  const deletes: RuleRef[] = [];
  for (const [table, t] of saved) {
    for (const name of t.chains) if (isOurChain(names, name)) drop.push({ table, name });
    for (const r of t.rules)
      if (!isOurChain(names, r.chain) && isOurChain(names, targetOf(r.rule) ?? '')) deletes.push({ table, chain: r.chain, rule: r.rule });
  }
  return { refill: [], deletes, inserts: [], createUser: false, drop };
}

/** True when the plan changes nothing. */
export function isEmptyPlan(plan: RestorePlan): boolean {
  return plan.refill.length === 0 && plan.deletes.length === 0 && plan.inserts.length === 0 && !plan.createUser && plan.drop.length === 0;
}

/**
 * The iptables-restore --noflush input for a plan. Per table: declare (create or flush) the
 * chains to refill, create and drop; delete stale rules; delete dropped chains; insert hooks;
 * append the owned chains' rules. One table block is one atomic commit.
 */
export function restoreText(rs: RuleSet, plan: RestorePlan): string {
  const tables = [...TABLES, ...new Set([...plan.deletes.map((d) => d.table), ...plan.drop.map((d) => d.table)])];
  const out: string[] = [];
  for (const table of new Set(tables)) {
    const refill = (plan.refill as readonly string[]).includes(table);
    const owned = refill ? rs.chains.filter((c) => c.table === table) : [];
    const user = plan.createUser && table === 'filter';
    const deletes = plan.deletes.filter((d) => d.table === table);
    const drop = plan.drop.filter((d) => d.table === table);
    const inserts = plan.inserts.filter((h) => h.table === table);
    if (owned.length + deletes.length + drop.length + inserts.length === 0 && !user) continue;
    out.push(`*${table}`);
    for (const c of owned) out.push(`:${c.name} - [0:0]`);
    if (user) out.push(`:${rs.names.user} - [0:0]`);
    for (const d of drop) out.push(`:${d.name} - [0:0]`);
    for (const d of deletes) out.push(`-D ${d.chain} ${d.rule}`);
    for (const d of drop) out.push(`-X ${d.name}`);
    const position = new Map<string, number>();
    for (const h of inserts) {
      const at = (position.get(h.chain) ?? 0) + 1;
      position.set(h.chain, at);
      out.push(`-I ${h.chain} ${at} ${h.rule}`);
    }
    for (const c of owned) for (const r of c.rules) out.push(`-A ${c.name} ${r}`);
    out.push('COMMIT');
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** The rules of our owned chains as iptables-save prints them (`-A NAME rule`), by table: for comparing with the kernel. */
export function ownedRules(rs: RuleSet): Map<Table, string[]> {
  const out = new Map<Table, string[]>(TABLES.map((t) => [t, []]));
  for (const c of rs.chains) for (const r of c.rules) out.get(c.table)!.push(`-A ${c.name} ${r}`);
  return out;
}
