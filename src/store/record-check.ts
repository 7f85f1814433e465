/**
 * What a stored record must look like to be usable: the daemon checks every row at start and
 * quarantines the ones that fail (a hand-edited database, a row from a buggy version), so one
 * bad row is logged and skipped instead of stopping the daemon. The shapes use the API's
 * validator (api/validate.ts): the same bounded checks on the way in and on the way back.
 */
import { ipamConfigSchema } from '../api/schemas.js';
import { bool, dict, int, list, obj, opt, str, type Schema } from '../api/validate.js';
import { parseIp, parsePrefix, prefixContains } from '../ipam/ip.js';
import { parseCidr, parseIPv4 } from '../ipam/ipv4.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord } from '../networks/model.js';

const id = str({ min: 1, max: 128 });
const text = str();
const strings = list(str(), 4096);
const stringMap = dict(str(), 4096);

const networkSchema = obj({
  id,
  name: str({ min: 1, max: 256 }),
  created: text,
  // Any driver name: whether one is registered is the daemon's question (its registry), not the store's.
  driver: str({ min: 1, max: 64 }),
  // global: an overlay network whose identity is the cluster's (--cluster-store).
  scope: str({ oneOf: ['local', 'global'] }),
  internal: bool(),
  attachable: bool(),
  ingress: bool(),
  configOnly: bool(),
  enableIPv4: bool(),
  enableIPv6: bool(),
  ipamDriver: text,
  ipamOptions: opt(stringMap),
  ipamConfig: list(ipamConfigSchema, 16),
  options: stringMap,
  labels: stringMap,
  predefined: bool(),
  subnet: opt(text),
  ipRange: opt(text),
  gateway: opt(text),
  device: opt(str({ min: 1, max: 15 })),
  subnet6: opt(text),
  ipRange6: opt(text),
  gateway6: opt(text),
  moreSubnets6: opt(list(obj({ subnet: text, ipRange: opt(text), gateway: text }), 15)),
  dnsAddress: opt(text),
  dnsAddress6: opt(text),
});

const sandboxSchema = obj({
  id,
  name: str({ min: 1, max: 256 }),
  created: text,
  networkMode: text,
  hostname: text,
  extraHosts: strings,
  dns: strings,
  dnsSearch: strings,
  command: list(str({ max: 65536 }), 4096),
  state: str({ oneOf: ['creating', 'created', 'running', 'exited', 'removing'] }),
  netns: opt(str({ min: 1, max: 255 })),
  pid: opt(int(1, 2 ** 31)),
  pidStart: opt(text),
  exitCode: opt(int(-(2 ** 31), 2 ** 31)),
  startedAt: opt(text),
  finishedAt: opt(text),
  problem: opt(str({ max: 4096 })),
});

const endpointSchema = obj({
  id,
  networkId: id,
  sandboxId: id,
  state: str({ oneOf: ['creating', 'active'] }),
  seq: int(0, 2 ** 31),
  ifname: str({ min: 1, max: 15 }),
  hostIfname: opt(str({ min: 1, max: 15 })),
  mac: opt(text),
  ipv4: opt(text),
  prefixLength: opt(int(0, 32)),
  ipv6: opt(text),
  prefixLength6: opt(int(0, 128)),
  staticIp6: opt(bool()),
  aliases: list(str({ max: 255 }), 4096),
  staticIp: bool(),
});

/** A run of bindings (port-rows.ts): [protocol, hostIp, hostPort, containerPort, count?]. */
const portRow: Schema<unknown> = {
  expected: '[protocol, hostIp, hostPort, containerPort, count?]',
  check(value, path) {
    const [protocol, hostIp, hostPort, containerPort, count = 1] = Array.isArray(value) ? value : [];
    const run = (p: unknown) => Number.isInteger(p) && (p as number) >= 1 && (p as number) + (count as number) - 1 <= 65535;
    if (
      !Array.isArray(value) ||
      (value.length !== 4 && value.length !== 5) ||
      (protocol !== 'tcp' && protocol !== 'udp') ||
      typeof hostIp !== 'string' ||
      (hostIp !== '' && parseIp(hostIp) === undefined) ||
      !Number.isInteger(count) ||
      count < 1 ||
      !run(hostPort) ||
      !run(containerPort)
    )
      throw new Error(`invalid ${path}: expected ${portRow.expected}`);
    return value;
  },
};
const portsSchema = list(portRow, 2 * 65536);

/** Parses a stored JSON document and checks it; returns the reason it is unusable, or undefined. */
function problem<T>(doc: string, schema: Schema<unknown>, semantic: (r: T) => string | undefined): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(doc);
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  try {
    schema.check(value, '');
  } catch (err) {
    // The validator names the top level "request body"; here it is a stored document.
    return (err as Error).message.replace(/^invalid request body/, 'invalid document');
  }
  return semantic(value as T);
}

export function networkProblem(doc: string): string | undefined {
  return problem<NetworkRecord>(doc, networkSchema, (n) => {
    // An IPv6 pool, when there is one, is a valid IPv6 subnet with a gateway inside it.
    if (n.subnet6 !== undefined || n.gateway6 !== undefined) {
      const s6 = parsePrefix(n.subnet6 ?? '');
      const g6 = parseIp(n.gateway6 ?? '');
      if (!s6 || s6.family !== 6 || !g6 || !prefixContains(s6, g6)) return `invalid IPv6 pool ${JSON.stringify(n.subnet6)} / ${JSON.stringify(n.gateway6)}`;
      if (n.ipRange6 !== undefined && parsePrefix(n.ipRange6)?.family !== 6) return `invalid IPv6 ip-range ${JSON.stringify(n.ipRange6)}`;
      if (!n.device) return 'network with a subnet but without a device';
      if (n.dnsAddress6 !== undefined && (parseIp(n.dnsAddress6)?.family !== 6 || !prefixContains(s6, parseIp(n.dnsAddress6)!))) return `invalid IPv6 resolver address ${JSON.stringify(n.dnsAddress6)}`;
    }
    for (const more of n.moreSubnets6 ?? []) {
      const s = parsePrefix(more.subnet);
      const g = parseIp(more.gateway);
      if (!n.subnet6 || !s || s.family !== 6 || !g || !prefixContains(s, g)) return `invalid further IPv6 pool ${JSON.stringify(more.subnet)} / ${JSON.stringify(more.gateway)}`;
      if (more.ipRange !== undefined && parsePrefix(more.ipRange)?.family !== 6) return `invalid IPv6 ip-range ${JSON.stringify(more.ipRange)}`;
    }
    // Driver-neutral: a network with addresses has a usable subnet, gateway and device.
    if (n.subnet === undefined && n.gateway === undefined) return undefined;
    if (!n.subnet || !parseCidr(n.subnet)) return `network with addresses but without a valid subnet (${JSON.stringify(n.subnet)})`;
    if (!n.gateway || parseIPv4(n.gateway) === undefined) return `network with a subnet but without a valid gateway (${JSON.stringify(n.gateway)})`;
    if (n.ipRange !== undefined && !parseCidr(n.ipRange)) return `invalid ip-range ${JSON.stringify(n.ipRange)}`;
    if (!n.device) return 'network with a subnet but without a device';
    if (n.dnsAddress !== undefined && parseIPv4(n.dnsAddress) === undefined) return `invalid resolver address ${JSON.stringify(n.dnsAddress)}`;
    return undefined;
  });
}

export function sandboxProblem(doc: string): string | undefined {
  return problem<SandboxRecord>(doc, sandboxSchema, (s) => (s.netns === undefined ? 'netns missing (null for the host namespace)' : undefined));
}

export function endpointProblem(doc: string): string | undefined {
  return problem<EndpointRecord>(doc, endpointSchema, (e) => {
    if (e.ipv4 !== undefined && parseIPv4(e.ipv4) === undefined) return `invalid address ${JSON.stringify(e.ipv4)}`;
    if (e.ipv6 !== undefined && parseIp(e.ipv6)?.family !== 6) return `invalid IPv6 address ${JSON.stringify(e.ipv6)}`;
    return undefined;
  });
}

export function portsProblem(doc: string): string | undefined {
  return problem<unknown>(doc, portsSchema, () => undefined);
}
