/** Records -> the kernel-facing specs the datapath takes. */
import type { EndpointSpec, NetworkSpec, PortSpec } from '../datapath/datapath.js';
import { BridgeOption, type EndpointRecord, type NetworkRecord, type PortRun } from './model.js';
import { vniOf } from '../drivers/overlay/vni.js';

export function networkSpec(net: NetworkRecord): NetworkSpec {
  const binding = net.options[BridgeOption.hostBinding] ?? '';
  return {
    id: net.id,
    name: net.name,
    device: net.device!,
    subnet: net.subnet ?? '',
    gateway: net.gateway ?? '',
    subnet6: net.subnet6 ?? '',
    gateway6: net.gateway6 ?? '',
    ...(net.moreSubnets6?.length ? { moreSubnets6: net.moreSubnets6.map((s) => ({ subnet: s.subnet, gateway: s.gateway })) } : {}),
    masquerade6: net.options[BridgeOption.gatewayModeIPv6] !== 'routed',
    internal: net.internal,
    icc: net.options[BridgeOption.icc] !== 'false',
    masquerade: net.options[BridgeOption.masquerade] !== 'false',
    hostBinding: binding === '0.0.0.0' ? '' : binding,
    // A network that spans hosts carries its VXLAN id (the same on every host).
    ...(net.scope === 'global' ? { vni: vniOf(net) } : {}),
  };
}

export function endpointSpec(ep: EndpointRecord, netnsPath: string): EndpointSpec {
  return {
    id: ep.id,
    networkId: ep.networkId,
    sandboxId: ep.sandboxId,
    hostIfname: ep.hostIfname!,
    ifname: ep.ifname,
    netnsPath,
    ipv4: ep.ipv4 ?? '',
    ipv6: ep.ipv6 ?? '',
    mac: ep.mac!,
  };
}

/** A sandbox's published ports (runs stay runs), aimed at its primary bridge endpoint. */
export function portSpecs(ports: readonly PortRun[], primary: EndpointRecord, net: NetworkRecord): PortSpec[] {
  const binding = networkSpec(net).hostBinding;
  return ports.map((p) => {
    const spec: PortSpec = {
      protocol: p.protocol,
      hostIp: p.hostIp || binding,
      hostPort: p.hostPort,
      endpointId: primary.id,
      networkId: primary.networkId,
      containerIp: primary.ipv4 ?? '',
      containerIp6: primary.ipv6 ?? '',
      containerPort: p.containerPort,
    };
    if ((p.count ?? 1) > 1) spec.count = p.count;
    return spec;
  });
}
