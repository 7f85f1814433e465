/**
 * libnetwork's remote plugin protocol as dockerd 20.10 speaks it (moby's
 * libnetwork/drivers/remote/api and libnetwork/ipams/remote/api): the request and response
 * shapes, and the checks every request body passes before anything acts on it (dockerd is
 * trusted, but the socket is a file anyone with access to the directory can write to).
 * IPv6 fields (IPv6Data, AddressIPv6, V6) are part of the shapes; bpfnet refuses them until
 * its network model takes IPv6 addresses.
 */

/** What /Plugin.Activate announces. */
export const IMPLEMENTS = ['NetworkDriver', 'IpamDriver'] as const;
/** The plugin protocol's media type (pkg/plugins: VersionMimetype). */
export const PLUGIN_MEDIA_TYPE = 'application/vnd.docker.plugins.v1+json';

/** A malformed or refused request: answered as {"Err"} (network) or {"Error"} (IPAM). */
export class PluginError extends Error {}

/** One pool's addresses as dockerd passes them to CreateNetwork (driverapi.IPAMData). */
export interface IpamData {
  AddressSpace?: string;
  /** CIDR. */
  Pool: string;
  /** CIDR: the gateway address with the pool's prefix length. */
  Gateway?: string;
  /** name -> CIDR. */
  AuxAddresses?: Record<string, string>;
}

export interface CreateNetworkRequest {
  NetworkID: string;
  Options?: Record<string, unknown>;
  IPv4Data?: IpamData[];
  IPv6Data?: IpamData[];
}

export interface EndpointInterface {
  /** CIDR. */
  Address?: string;
  AddressIPv6?: string;
  MacAddress?: string;
}

export interface CreateEndpointRequest {
  NetworkID: string;
  EndpointID: string;
  Interface?: EndpointInterface;
  Options?: Record<string, unknown>;
}

export interface JoinRequest {
  NetworkID: string;
  EndpointID: string;
  /** The container's network namespace (a path in dockerd's mount namespace). */
  SandboxKey: string;
  Options?: Record<string, unknown>;
}

export interface StaticRoute {
  Destination: string;
  /** 0: next hop, 1: connected. */
  RouteType: number;
  NextHop?: string;
}

export interface JoinResponse {
  InterfaceName: { SrcName: string; DstPrefix: string };
  Gateway?: string;
  GatewayIPv6?: string;
  StaticRoutes?: StaticRoute[];
  DisableGatewayService?: boolean;
}

/** types.PortBinding as JSON: Proto 6 (tcp) or 17 (udp); IP the container's; HostPortEnd > HostPort: any one of the range. */
export interface PortBindingJson {
  Proto: number;
  IP?: string;
  Port: number;
  HostIP?: string;
  HostPort?: number;
  HostPortEnd?: number;
}

export interface RequestPoolRequest {
  AddressSpace?: string;
  Pool?: string;
  SubPool?: string;
  Options?: Record<string, string> | null;
  V6?: boolean;
}

export interface RequestAddressRequest {
  PoolID: string;
  Address?: string;
  Options?: Record<string, string> | null;
}

/** Options keys dockerd sets (libnetwork/netlabel). */
export const Label = {
  generic: 'com.docker.network.generic',
  enableIPv6: 'com.docker.network.enable_ipv6',
  internal: 'com.docker.network.internal',
  portMap: 'com.docker.network.portmap',
  exposedPorts: 'com.docker.network.endpoint.exposedports',
  requestAddressType: 'RequestAddressType',
  gatewayRequest: 'com.docker.network.gateway',
} as const;

const ID = /^[a-zA-Z0-9_.-]{1,128}$/;
const MAX_ENTRIES = 4096;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The body as an object, or a PluginError naming what is wrong. */
export function body(raw: unknown): Record<string, unknown> {
  if (raw === undefined || raw === null) return {};
  if (!isObject(raw)) throw new PluginError('request body must be a JSON object');
  return raw;
}

export function id(b: Record<string, unknown>, field: string): string {
  const v = b[field];
  if (typeof v !== 'string' || !ID.test(v)) throw new PluginError(`${field} must be an id of 1-128 characters of [a-zA-Z0-9_.-], not ${JSON.stringify(v)?.slice(0, 80)}`);
  return v;
}

export function optString(b: Record<string, unknown>, field: string, max = 256): string | undefined {
  const v = b[field];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || v.length > max) throw new PluginError(`${field} must be a string of at most ${max} characters`);
  return v;
}

export function optObject(b: Record<string, unknown>, field: string): Record<string, unknown> {
  const v = b[field];
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new PluginError(`${field} must be an object`);
  if (Object.keys(v).length > MAX_ENTRIES) throw new PluginError(`${field} has more than ${MAX_ENTRIES} entries`);
  return v;
}

/** A map of strings (driver options, IPAM options, aux addresses). */
export function stringMap(v: unknown, field: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new PluginError(`${field} must be an object of strings`);
  const out: Record<string, string> = {};
  const entries = Object.entries(v);
  if (entries.length > MAX_ENTRIES) throw new PluginError(`${field} has more than ${MAX_ENTRIES} entries`);
  for (const [k, val] of entries) {
    if (typeof val !== 'string' || k.length > 256 || val.length > 4096) throw new PluginError(`${field}["${k.slice(0, 64)}"] must be a string`);
    out[k] = val;
  }
  return out;
}

export function optArray(v: unknown, field: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new PluginError(`${field} must be an array`);
  if (v.length > MAX_ENTRIES) throw new PluginError(`${field} has more than ${MAX_ENTRIES} entries`);
  return v;
}

/** A flag dockerd sends as a JSON boolean (or, from some callers, the string "true"). */
export function flag(v: unknown): boolean {
  return v === true || v === 'true';
}

export function ipamData(v: unknown, field: string): IpamData[] {
  return optArray(v, field).map((d, i) => {
    if (!isObject(d)) throw new PluginError(`${field}[${i}] must be an object`);
    const pool = optString(d, 'Pool', 64);
    if (!pool) throw new PluginError(`${field}[${i}].Pool is missing`);
    return {
      AddressSpace: optString(d, 'AddressSpace'),
      Pool: pool,
      Gateway: optString(d, 'Gateway', 64),
      AuxAddresses: stringMap(d.AuxAddresses, `${field}[${i}].AuxAddresses`),
    };
  });
}

export function portBindings(v: unknown, field: string): PortBindingJson[] {
  return optArray(v, field).map((p, i) => {
    if (!isObject(p)) throw new PluginError(`${field}[${i}] must be an object`);
    const port = (name: string, required: boolean): number => {
      const n = p[name];
      if ((n === undefined || n === null) && !required) return 0;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535 || (required && n === 0)) throw new PluginError(`${field}[${i}].${name} must be a port number, not ${JSON.stringify(n)}`);
      return n;
    };
    const proto = p.Proto;
    if (typeof proto !== 'number' || !Number.isInteger(proto)) throw new PluginError(`${field}[${i}].Proto must be a protocol number`);
    return { Proto: proto, IP: optString(p, 'IP', 64), Port: port('Port', true), HostIP: optString(p, 'HostIP', 64), HostPort: port('HostPort', false), HostPortEnd: port('HostPortEnd', false) };
  });
}
