/**
 * Records -> Engine API JSON. Key order and omitted fields follow moby, because the docker CLI
 * prints `network inspect` byte for byte as the daemon sends it.
 */
import { gateway6For, type EndpointRecord, type NetworkRecord, type PortRecord, type SandboxRecord } from '../networks/model.js';
import { humanDuration } from '../util/human-duration.js';
import type { IpamConfigJson, NetworkContainerJson, NetworkInspectJson, PortJson, SandboxInspect, SandboxSummary } from './types.js';

function ipamConfigJson(c: IpamConfigJson): IpamConfigJson {
  // Every field is omitempty in moby.
  const out: IpamConfigJson = {};
  if (c.Subnet) out.Subnet = c.Subnet;
  if (c.IPRange) out.IPRange = c.IPRange;
  if (c.Gateway) out.Gateway = c.Gateway;
  if (c.AuxiliaryAddresses && Object.keys(c.AuxiliaryAddresses).length > 0) out.AuxiliaryAddresses = c.AuxiliaryAddresses;
  return out;
}

export function networkJson(
  net: NetworkRecord,
  containers: Record<string, NetworkContainerJson>,
): NetworkInspectJson {
  return {
    Name: net.name,
    Id: net.id,
    Created: net.created,
    Scope: net.scope,
    Driver: net.driver,
    EnableIPv4: net.enableIPv4,
    EnableIPv6: net.enableIPv6,
    IPAM: { Driver: net.ipamDriver, Options: net.ipamOptions, Config: net.ipamConfig.map(ipamConfigJson) },
    Internal: net.internal,
    Attachable: net.attachable,
    Ingress: net.ingress,
    ConfigFrom: { Network: '' },
    ConfigOnly: net.configOnly,
    Containers: containers,
    Options: net.options,
    Labels: net.labels,
  };
}

export function networkContainers(endpoints: readonly EndpointRecord[], sandboxName: (id: string) => string | undefined): Record<string, NetworkContainerJson> {
  const out: Record<string, NetworkContainerJson> = {};
  for (const ep of endpoints) {
    if (ep.state !== 'active') continue;
    out[ep.sandboxId] = {
      Name: sandboxName(ep.sandboxId) ?? '',
      EndpointID: ep.id,
      MacAddress: ep.mac ?? '',
      IPv4Address: ep.ipv4 ? `${ep.ipv4}/${ep.prefixLength}` : '',
      IPv6Address: ep.ipv6 ? `${ep.ipv6}/${ep.prefixLength6}` : '',
    };
  }
  return out;
}

export function sandboxStatus(sb: SandboxRecord, now = Date.now()): string {
  // Start-up could not rebuild its network: say so where `ps` users look.
  if (sb.problem !== undefined) return `${sandboxStatus({ ...sb, problem: undefined }, now)} (unusable)`;
  if (sb.state === 'running') return `Up ${humanDuration(now - Date.parse(sb.startedAt ?? sb.created))}`;
  if (sb.state === 'exited') return `Exited (${sb.exitCode ?? -1}) ${humanDuration(now - Date.parse(sb.finishedAt ?? sb.created))} ago`;
  return 'Created';
}

function portJson(p: PortRecord): PortJson {
  return { IP: p.hostIp || '0.0.0.0', PrivatePort: p.containerPort, PublicPort: p.hostPort, Type: p.protocol };
}

export interface SandboxView {
  sandbox: SandboxRecord;
  endpoints: EndpointRecord[];
  networks: Map<string, NetworkRecord>;
  ports: PortRecord[];
  sandboxKey: string;
}

export function sandboxSummary(v: SandboxView): SandboxSummary {
  return {
    Id: v.sandbox.id,
    Name: v.sandbox.name,
    Command: v.sandbox.command.join(' '),
    Created: v.sandbox.created,
    State: v.sandbox.state,
    Status: sandboxStatus(v.sandbox),
    Ports: v.ports.map(portJson),
    Networks: v.endpoints.map((e) => v.networks.get(e.networkId)?.name ?? e.networkId),
  };
}

export function sandboxInspect(v: SandboxView): SandboxInspect {
  const sb = v.sandbox;
  const ports: SandboxInspect['NetworkSettings']['Ports'] = {};
  for (const p of v.ports) (ports[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp || '0.0.0.0', HostPort: String(p.hostPort) });
  const networks: SandboxInspect['NetworkSettings']['Networks'] = {};
  for (const ep of v.endpoints) {
    const net = v.networks.get(ep.networkId);
    if (!net) continue;
    networks[net.name] = {
      NetworkID: net.id,
      EndpointID: ep.id,
      Gateway: ep.ipv4 ? (net.gateway ?? '') : '',
      IPAddress: ep.ipv4 ?? '',
      IPPrefixLen: ep.prefixLength ?? 0,
      // The gateway of the IPv6 subnet the address is in (a network may have several).
      IPv6Gateway: ep.ipv6 ? (gateway6For(net, ep.ipv6) ?? '') : '',
      GlobalIPv6Address: ep.ipv6 ?? '',
      GlobalIPv6PrefixLen: ep.prefixLength6 ?? 0,
      MacAddress: ep.mac ?? '',
      Aliases: ep.aliases,
      DNSNames: net.predefined ? [] : [sb.name, sb.id.slice(0, 12), ...ep.aliases],
      InterfaceName: ep.ifname,
    };
  }
  return {
    Id: sb.id,
    Name: sb.name,
    Created: sb.created,
    State: {
      Status: sb.state,
      Running: sb.state === 'running',
      Pid: sb.state === 'running' ? (sb.pid ?? 0) : 0,
      ExitCode: sb.exitCode ?? 0,
      StartedAt: sb.startedAt ?? '0001-01-01T00:00:00Z',
      FinishedAt: sb.finishedAt ?? '0001-01-01T00:00:00Z',
      ...(sb.problem !== undefined ? { Error: sb.problem } : {}),
    },
    Config: { Hostname: sb.hostname, Cmd: sb.command, ExtraHosts: sb.extraHosts, Dns: sb.dns, DnsSearch: sb.dnsSearch },
    HostConfig: { NetworkMode: sb.networkMode },
    NetworkSettings: { SandboxKey: v.sandboxKey, Ports: ports, Networks: networks },
  };
}
