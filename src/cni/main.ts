/**
 * bpfnet-cni: a CNI plugin (bin/bpfnet-cni) whose work the bpfnet daemon does. A runtime (podman,
 * containerd, cnitool) runs it with CNI_* in the environment and the network configuration on
 * stdin; it asks the daemon over its socket for an endpoint keyed "CONTAINERID:IFNAME" on the
 * configured bpfnet network (made from "subnet" when missing), joined into CNI_NETNS, with the
 * runtime's portMappings published on the datapath; it prints the CNI result or error on stdout.
 */
import { readFileSync } from 'node:fs';
import { isNetnsFile } from '../system/nsfs.js';
import { ApiError, Client, DaemonUnreachableError, DEFAULT_HOST, parseHost, segment } from '../cli/client.js';
import type { EndpointView } from '../api/routes/endpoints.js';
import { formatPrefix, parsePrefix } from '../ipam/ip.js';
import {
  addResult,
  attachmentKey,
  checkVersion,
  CniCode,
  CniError,
  compareVersion,
  LATEST_VERSION,
  ownerOf,
  parseCniArgs,
  parseConf,
  parseJson,
  readEnv,
  SUPPORTED_VERSIONS,
  type CniEnv,
  type CniResult,
  type PluginConf,
} from './spec.js';

/** Longer than any daemon call should take; a daemon that does not answer is "try again later". */
const CALL_TIMEOUT_MS = 60_000;

interface NetworkJson {
  Name: string;
  Id: string;
  IPAM?: { Config?: Array<{ Subnet?: string }> };
}

async function call<T>(client: Client, what: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CniError(CniCode.tryAgainLater, `the bpfnet daemon at ${client.address.url} did not answer ${what} within ${CALL_TIMEOUT_MS / 1000} s`)), CALL_TIMEOUT_MS);
  });
  try {
    return await Promise.race([fn(), timeout]);
  } catch (err) {
    if (err instanceof DaemonUnreachableError) throw new CniError(CniCode.tryAgainLater, `bpfnet daemon unreachable at ${client.address.url}`, err.message);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** An error status of the daemon as a CNI error: its input checks are configuration errors, the rest refusals. */
function fromApi(err: unknown, what: string): Error {
  if (!(err instanceof ApiError)) return err as Error;
  if (err.status === 400) return new CniError(CniCode.invalidConfig, `${what}: ${err.message}`);
  if (err.status === 503) return new CniError(CniCode.tryAgainLater, `${what}: ${err.message}`);
  return new CniError(CniCode.refused, `${what}: ${err.message}`);
}

/** The bpfnet network the configuration names: made from "subnet" when missing, checked against it when present. */
async function ensureNetwork(client: Client, conf: PluginConf): Promise<void> {
  const get = () => client.json<NetworkJson>('GET', `/networks/${segment(conf.network)}`);
  let net: NetworkJson | undefined;
  try {
    net = await call(client, 'GET /networks', get);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw fromApi(err, `network ${conf.network}`);
  }
  if (!net) {
    if (!conf.subnet && conf.subnet6.length === 0)
      throw new CniError(CniCode.invalidConfig, `bpfnet network "${conf.network}" does not exist`, 'create it (bpfnet network create --subnet ... NAME) or give "subnet" or "subnet6" in the CNI configuration');
    const ipam = [
      ...(conf.subnet ? [{ Subnet: conf.subnet, ...(conf.gateway ? { Gateway: conf.gateway } : {}), ...(conf.ipRange ? { IPRange: conf.ipRange } : {}) }] : []),
      ...conf.subnet6.map((subnet, i) => ({ Subnet: subnet, ...(conf.gateway6[i] ? { Gateway: conf.gateway6[i] } : {}) })),
    ];
    const body = {
      Name: conf.network,
      Driver: 'bridge',
      EnableIPv4: conf.subnet !== undefined,
      EnableIPv6: conf.subnet6.length > 0,
      IPAM: { Driver: 'default', Config: ipam },
      Labels: { 'dev.bpfnet.cni.network': conf.name },
    };
    try {
      await call(client, 'POST /networks/create', () => client.send('POST', '/networks/create', { body }));
    } catch (err) {
      // Another ADD made it first: use that one.
      if (!(err instanceof ApiError && err.status === 409)) throw fromApi(err, `could not create network ${conf.network}`);
    }
    net = await call(client, 'GET /networks', get).catch((err: unknown) => Promise.reject(fromApi(err, `network ${conf.network}`)));
  }
  const subnets = (net?.IPAM?.Config ?? []).map((c) => c.Subnet ?? '');
  const subnet = subnets.find((t) => t !== '' && !t.includes(':'));
  if (conf.subnet && subnet !== conf.subnet) throw new CniError(CniCode.invalidConfig, `bpfnet network "${conf.network}" has subnet ${subnet ?? 'none'}, the CNI configuration says ${conf.subnet}`);
  // The same IPv6 subnets in any order, compared as canonical text.
  const canonical = (list: string[]) =>
    list
      .map((t) => {
        const p = parsePrefix(t);
        return p ? formatPrefix(p) : t;
      })
      .sort();
  const has6 = canonical(subnets.filter((t) => t.includes(':')));
  const says6 = canonical(conf.subnet6);
  if (says6.length > 0 && has6.join(' ') !== says6.join(' '))
    throw new CniError(CniCode.invalidConfig, `bpfnet network "${conf.network}" has IPv6 subnets ${has6.join(', ') || 'none'}, the CNI configuration says ${says6.join(', ')}`);
}

/** The static addresses asked for (runtimeConfig.ips or CNI_ARGS IP=): at most one per family. */
function staticIps(ips: readonly string[]): { ipv4?: string; ipv6?: string } {
  const bare = ips.map((a) => a.split('/')[0]);
  const v4 = bare.filter((a) => !a.includes(':'));
  const v6 = bare.filter((a) => a.includes(':'));
  if (v4.length > 1 || v6.length > 1) throw new CniError(CniCode.invalidConfig, 'runtimeConfig.ips: one address per family per attachment');
  return { ...(v4[0] ? { ipv4: v4[0] } : {}), ...(v6[0] ? { ipv6: v6[0] } : {}) };
}

async function add(client: Client, env: CniEnv, conf: PluginConf): Promise<CniResult> {
  if (!isNetnsFile(env.netns)) throw new CniError(CniCode.invalidEnv, `CNI_NETNS ${env.netns} is no network namespace`);
  await ensureNetwork(client, conf);
  // runtimeConfig (the ips and mac capabilities) wins over CNI_ARGS (IP=, MAC=: podman 4's way).
  const args = parseCniArgs(env.args);
  const { ipv4, ipv6 } = staticIps(conf.ips.length > 0 ? conf.ips : args.ips);
  const mac = conf.mac ?? args.mac;
  const body = {
    Network: conf.network,
    Netns: env.netns,
    Ifname: env.ifname,
    Owner: ownerOf(conf),
    ...(ipv4 ? { IPv4Address: ipv4 } : {}),
    ...(ipv6 ? { IPv6Address: ipv6 } : {}),
    ...(mac ? { MacAddress: mac } : {}),
    Ports: conf.portMappings.map((p) => ({ Protocol: p.protocol, HostIp: p.hostIP, HostPort: p.hostPort, ContainerPort: p.containerPort })),
  };
  const key = attachmentKey(env.containerId, env.ifname);
  const view = await call(client, 'PUT /endpoints', () => client.json<EndpointView>('PUT', `/endpoints/${segment(key)}`, { body })).catch((err: unknown) =>
    Promise.reject(fromApi(err, `could not attach ${key} to network ${conf.network}`)),
  );
  return addResult(conf, { hostIfname: view.HostIfname, ifname: view.Ifname, mac: view.MacAddress, netns: view.Netns, ipv4: view.IPv4Address, gateway: view.Gateway, ipv6: view.IPv6Address, gateway6: view.Gateway6 });
}

async function del(client: Client, env: CniEnv): Promise<void> {
  const key = attachmentKey(env.containerId, env.ifname);
  try {
    await call(client, 'DELETE /endpoints', () => client.send('DELETE', `/endpoints/${segment(key)}`));
  } catch (err) {
    // Already deleted (or never added): DEL succeeds, as the spec asks.
    if (err instanceof ApiError && err.status === 404) return;
    throw fromApi(err, `could not delete ${key}`);
  }
}

async function check(client: Client, env: CniEnv, conf: PluginConf): Promise<void> {
  if (compareVersion(conf.cniVersion, '0.4.0') < 0) throw new CniError(CniCode.incompatibleVersion, `config version ${conf.cniVersion} does not allow CHECK`, 'CHECK needs cniVersion 0.4.0 or later');
  if (!conf.prevResult) throw new CniError(CniCode.invalidConfig, 'CHECK needs prevResult (the result of ADD)');
  const key = attachmentKey(env.containerId, env.ifname);
  let view: EndpointView;
  try {
    view = await call(client, 'GET /endpoints', () => client.json<EndpointView>('GET', `/endpoints/${segment(key)}`));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) throw new CniError(CniCode.unknownContainer, `no bpfnet endpoint for container ${env.containerId} interface ${env.ifname}`);
    throw fromApi(err, `could not check ${key}`);
  }
  const fail = (msg: string) => new CniError(CniCode.checkFailed, msg);
  if (view.Netns !== env.netns) throw fail(`endpoint ${key} is joined to ${view.Netns}, not ${env.netns}`);
  if (view.Network !== conf.network) throw fail(`endpoint ${key} is on network ${view.Network}, not ${conf.network}`);
  const prev = conf.prevResult;
  const idx = (prev.interfaces ?? []).findIndex((i) => i.name === env.ifname && (i.sandbox ?? env.netns) === env.netns);
  if (idx < 0) throw fail(`prevResult has no interface ${env.ifname} in ${env.netns}`);
  if (prev.interfaces![idx].mac && prev.interfaces![idx].mac!.toLowerCase() !== view.MacAddress.toLowerCase()) throw fail(`interface ${env.ifname} has MAC ${view.MacAddress}, prevResult says ${prev.interfaces![idx].mac}`);
  const mine = (prev.ips ?? []).filter((ip) => ip.interface === idx).map((ip) => ip.address);
  const have = [view.IPv4Address, view.IPv6Address].filter(Boolean);
  if (mine.length !== have.length || mine.some((a) => !have.includes(a))) throw fail(`interface ${env.ifname} has addresses [${have.join(' ')}], prevResult says [${mine.join(' ')}]`);
  const wanted = conf.portMappings.map((p) => `${p.protocol}/${p.hostIP}:${p.hostPort}->${p.containerPort}`).sort();
  const published = view.Ports.map((p) => `${p.Protocol}/${p.HostIp}:${p.HostPort}->${p.ContainerPort}`).sort();
  if (wanted.join() !== published.join()) throw fail(`endpoint ${key} publishes [${published.join(' ')}], runtimeConfig asks [${wanted.join(' ')}]`);
  const { Problems } = await call(client, 'GET /endpoints/check', () => client.json<{ Problems: string[] }>('GET', `/endpoints/${segment(key)}/check`)).catch((err: unknown) => Promise.reject(fromApi(err, `could not check ${key}`)));
  if (Problems.length > 0) throw fail(Problems.join('; '));
}

async function status(client: Client, conf: PluginConf): Promise<void> {
  if (compareVersion(conf.cniVersion, '1.1.0') < 0) throw new CniError(CniCode.incompatibleVersion, `config version ${conf.cniVersion} does not allow STATUS`, 'STATUS needs cniVersion 1.1.0');
  try {
    await call(client, 'GET /_ping', () => client.send('GET', '/_ping'));
  } catch (err) {
    throw new CniError(CniCode.notAvailable, `bpfnet daemon unavailable at ${client.address.url}`, (err as Error).message);
  }
  if (conf.subnet || conf.subnet6.length > 0) return;
  try {
    await call(client, 'GET /networks', () => client.send('GET', `/networks/${segment(conf.network)}`));
  } catch (err) {
    throw new CniError(CniCode.notAvailable, `bpfnet network "${conf.network}" does not exist and the configuration gives no "subnet" or "subnet6" to make it`, (err as Error).message);
  }
}

async function gc(client: Client, conf: PluginConf): Promise<void> {
  if (compareVersion(conf.cniVersion, '1.1.0') < 0) throw new CniError(CniCode.incompatibleVersion, `config version ${conf.cniVersion} does not allow GC`, 'GC needs cniVersion 1.1.0');
  const valid = new Set((conf.validAttachments ?? []).map((a) => attachmentKey(a.containerID, a.ifname)));
  const mine = await call(client, 'GET /endpoints', () => client.json<EndpointView[]>('GET', '/endpoints', { query: { owner: ownerOf(conf) } })).catch((err: unknown) =>
    Promise.reject(fromApi(err, 'could not list endpoints')),
  );
  const errors: string[] = [];
  for (const ep of mine) {
    if (valid.has(ep.Key)) continue;
    try {
      await call(client, 'DELETE /endpoints', () => client.send('DELETE', `/endpoints/${segment(ep.Key)}`));
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) errors.push(`${ep.Key}: ${(err as Error).message}`);
    }
  }
  if (errors.length > 0) throw new CniError(CniCode.refused, `GC could not delete ${errors.length} endpoints`, errors.join('; '));
}

function versionInfo(requested: unknown): Record<string, unknown> {
  const v = typeof requested === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(requested) ? requested : LATEST_VERSION;
  return { cniVersion: v, supportedVersions: [...SUPPORTED_VERSIONS] };
}

/** One plugin call: what to print on stdout and the exit code. */
export async function runCni(env: Readonly<Record<string, string | undefined>>, stdin: string): Promise<{ out: unknown; code: number }> {
  let version = LATEST_VERSION;
  try {
    const e = readEnv(env);
    const raw = parseJson(stdin.trim() === '' && e.command === 'VERSION' ? '{}' : stdin);
    if (typeof raw.cniVersion === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(raw.cniVersion)) version = raw.cniVersion;
    if (e.command === 'VERSION') return { out: versionInfo(raw.cniVersion), code: 0 };
    checkVersion(raw.cniVersion);
    const conf = parseConf(raw, parseHost(DEFAULT_HOST).socketPath);
    const client = new Client(parseHost(conf.socket), 'bpfnet-cni');
    switch (e.command) {
      case 'ADD':
        return { out: await add(client, e, conf), code: 0 };
      case 'DEL':
        await del(client, e);
        return { out: undefined, code: 0 };
      case 'CHECK':
        await check(client, e, conf);
        return { out: undefined, code: 0 };
      case 'STATUS':
        await status(client, conf);
        return { out: undefined, code: 0 };
      case 'GC':
        await gc(client, conf);
        return { out: undefined, code: 0 };
    }
  } catch (err) {
    const ce = err instanceof CniError ? err : new CniError(CniCode.ioFailure, (err as Error).message ?? String(err));
    return { out: ce.json(version), code: 1 };
  }
}

async function main(): Promise<void> {
  let stdin = '';
  try {
    stdin = readFileSync(0, 'utf8');
  } catch {
    stdin = '';
  }
  const { out, code } = await runCni(process.env, stdin);
  if (out !== undefined) process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exitCode = code;
}

await main();
