/**
 * Flag values as the docker CLI parses them: repeatable and comma-separated flags, key=value
 * maps, --filter, and the validators docker runs on the client (labels, --add-host, --dns,
 * -e). Validators throw commander's InvalidArgumentError, which ends in a usage error (125).
 */
import { BlockList, isIP } from 'node:net';
import { InvalidArgumentError } from 'commander';

/** A repeatable flag. */
export function collect(value: string, previous: readonly string[] = []): string[] {
  return [...previous, value];
}

/** A repeatable flag that also splits on commas, like pflag's StringSlice (--subnet a,b). */
export function collectCsv(value: string, previous: readonly string[] = []): string[] {
  return [...previous, ...value.split(',')];
}

/** A repeatable flag whose every value goes through `validate` first. */
export function collectValid(validate: (value: string) => string) {
  return (value: string, previous: readonly string[] = []): string[] => [...previous, validate(value)];
}

/** opts.ConvertKVStringsToMap: "k=v" -> {k: v}, a bare "k" -> {k: ""}; keys sorted as Go encodes maps. */
export function keyValueMap(entries: readonly string[]): Record<string, string> {
  const map = new Map<string, string>();
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    map.set(eq < 0 ? entry : entry.slice(0, eq), eq < 0 ? '' : entry.slice(eq + 1));
  }
  return sortedRecord(map);
}

export function sortedRecord(map: ReadonlyMap<string, string>): Record<string, string> {
  return Object.fromEntries([...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** opts.ValidateLabel. */
export function validateLabel(value: string): string {
  const key = value.split('=', 1)[0].trim();
  if (key === '') throw new InvalidArgumentError(`invalid label '${value}': empty name`);
  return value;
}

/** opts.ValidateIPAddress: the address in canonical form. */
export function validateIpAddress(value: string): string {
  const canonical = canonicalIp(value.trim());
  if (canonical === undefined) throw new InvalidArgumentError(`IP address is not correctly formatted: ${value}`);
  return canonical;
}

/** opts.ValidateExtraHost: NAME:IP or NAME=IP (IPv6 may be bracketed), sent as NAME:IP. */
export function validateExtraHost(value: string): string {
  let sep = value.indexOf('=');
  if (sep < 0) sep = value.indexOf(':');
  const name = sep < 0 ? '' : value.slice(0, sep);
  let address = sep < 0 ? '' : value.slice(sep + 1);
  if (sep < 0 || name === '' || name.includes(':')) throw new InvalidArgumentError(`bad format for add-host: "${value}"`);
  if (address !== 'host-gateway') {
    if (address.length > 2 && address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
    if (canonicalIp(address) === undefined) throw new InvalidArgumentError(`invalid IP address in add-host: "${address}"`);
  }
  return `${name}:${address}`;
}

/** opts.ValidateEnv: a bare NAME takes its value from the client's environment when set there. */
export function expandEnv(value: string, env: Readonly<Record<string, string | undefined>>): string {
  const eq = value.indexOf('=');
  const name = eq < 0 ? value : value.slice(0, eq);
  if (name === '') throw new InvalidArgumentError(`invalid environment variable: ${value}`);
  if (eq >= 0) return value;
  const fromEnv = env[name];
  return fromEnv === undefined ? value : `${name}=${fromEnv}`;
}

/** Go's integer flags. */
export function parseInteger(value: string): number {
  if (!/^[+-]?\d+$/.test(value.trim())) throw new InvalidArgumentError(`strconv.ParseInt: parsing "${value}": invalid syntax`);
  return Number(value);
}

/** --filter name=value, repeatable: docker's filters.Args. */
export class Filters {
  readonly #values = new Map<string, Set<string>>();

  add(name: string, value: string): this {
    const set = this.#values.get(name) ?? new Set<string>();
    set.add(value);
    this.#values.set(name, set);
    return this;
  }

  get size(): number {
    return this.#values.size;
  }

  /** {"name":{"value":true}} with sorted keys, as Go encodes filters.Args. */
  toJSON(): Record<string, Record<string, true>> {
    const names = [...this.#values.keys()].sort();
    return Object.fromEntries(names.map((n) => [n, Object.fromEntries([...this.#values.get(n)!].sort().map((v) => [v, true]))]));
  }

  /** The `filters` query parameter, or undefined when there is none (docker then sends no query). */
  toQuery(): string | undefined {
    return this.size === 0 ? undefined : JSON.stringify(this);
  }
}

/** Commander collector for --filter (opts.FilterOpt.Set). */
export function collectFilter(value: string, previous: Filters = new Filters()): Filters {
  if (value === '') return previous;
  const eq = value.indexOf('=');
  if (eq < 0) throw new InvalidArgumentError('bad format of filter (expected name=value)');
  return previous.add(value.slice(0, eq).trim().toLowerCase(), value.slice(eq + 1).trim());
}

// ---------- Go's net.ParseIP / ParseCIDR / IPNet.Contains, for network create's checks ----------

export interface IpAddress {
  readonly address: string;
  readonly family: 'ipv4' | 'ipv6';
}

export interface IpNetwork {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

export function parseIp(text: string): IpAddress | undefined {
  if (text.includes('%')) return undefined; // Go's ParseIP has no zones
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  if (mapped) return parseIp(mapped[1]);
  const family = isIP(text);
  if (family === 4) return { address: text, family: 'ipv4' };
  if (family === 6) return { address: text, family: 'ipv6' };
  return undefined;
}

/** Go's net.ParseCIDR; undefined where Go says "invalid CIDR address: TEXT". */
export function parseCidr(text: string): IpNetwork | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const bits = text.slice(slash + 1);
  if (!ip || !/^\d+$/.test(bits)) return undefined;
  const prefix = Number(bits);
  if (prefix > (ip.family === 'ipv4' ? 32 : 128)) return undefined;
  return { address: ip.address, prefix, family: ip.family };
}

export function networkContains(network: IpNetwork, ip: IpAddress | undefined): boolean {
  if (!ip || ip.family !== network.family) return false;
  const list = new BlockList();
  list.addSubnet(network.address, network.prefix, network.family);
  return list.check(ip.address, ip.family);
}

function canonicalIp(text: string): string | undefined {
  const ip = parseIp(text);
  if (!ip) return undefined;
  return ip.family === 'ipv4' ? ip.address : new URL(`http://[${ip.address}]`).hostname.slice(1, -1);
}
