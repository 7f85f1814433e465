/**
 * docker's createIPAMConfig (cli/command/network/create.go, docker 28): the IPAM Config list
 * of `network create`, with the checks docker makes on the client and its messages.
 */
import { UsageError } from './errors.js';
import { keyValueMap, networkContains, parseCidr, parseIp, sortedRecord } from './options.js';

interface IpamBlock {
  Subnet: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses: Map<string, string>;
}

/**
 * Pairs each --ip-range, --gateway and --aux-address with the --subnet that contains it.
 * Subnets themselves pass through unchecked: validating them is the daemon's job.
 */
export function ipamConfig(
  subnets: readonly string[],
  ipRanges: readonly string[],
  gateways: readonly string[],
  auxAddresses: readonly string[],
): Array<Record<string, unknown>> {
  if (subnets.length < ipRanges.length || subnets.length < gateways.length) {
    throw new UsageError('every ip-range or gateway must have a corresponding subnet');
  }
  const blocks = new Map<string, IpamBlock>();
  for (const subnet of subnets) {
    for (const seen of blocks.keys()) {
      if (subnetMatches(subnet, seen) || subnetMatches(seen, subnet)) {
        throw new UsageError('multiple overlapping subnet configuration is not supported');
      }
    }
    blocks.set(subnet, { Subnet: subnet, AuxiliaryAddresses: new Map() });
  }

  for (const range of ipRanges) {
    let matched = false;
    for (const subnet of subnets) {
      if (!parseCidr(range)) throw new UsageError(`invalid CIDR address: ${range}`);
      if (!subnetMatches(subnet, range)) continue;
      const block = blocks.get(subnet)!;
      if (block.IPRange) {
        throw new UsageError(`cannot configure multiple ranges (${range}, ${block.IPRange}) on the same subnet (${subnet})`);
      }
      block.IPRange = range;
      matched = true;
    }
    if (!matched) throw new UsageError(`no matching subnet for range ${range}`);
  }

  for (const gateway of gateways) {
    let matched = false;
    for (const subnet of subnets) {
      if (!subnetMatches(subnet, gateway)) continue;
      const block = blocks.get(subnet)!;
      if (block.Gateway) {
        throw new UsageError(`cannot configure multiple gateways (${gateway}, ${block.Gateway}) for the same subnet (${subnet})`);
      }
      block.Gateway = gateway;
      matched = true;
    }
    if (!matched) throw new UsageError(`no matching subnet for gateway ${gateway}`);
  }

  for (const [key, address] of Object.entries(keyValueMap(auxAddresses))) {
    let matched = false;
    for (const subnet of subnets) {
      if (!subnetMatches(subnet, address)) continue;
      blocks.get(subnet)!.AuxiliaryAddresses.set(key, address);
      matched = true;
    }
    if (!matched) throw new UsageError(`no matching subnet for aux-address ${address}`);
  }

  // Every field is omitempty in moby's IPAMConfig.
  return [...blocks.values()].map((b) => ({
    Subnet: b.Subnet,
    ...(b.IPRange ? { IPRange: b.IPRange } : {}),
    ...(b.Gateway ? { Gateway: b.Gateway } : {}),
    ...(b.AuxiliaryAddresses.size ? { AuxiliaryAddresses: sortedRecord(b.AuxiliaryAddresses) } : {}),
  }));
}

/** docker's subnetMatches: does subnet contain data (an address, or the address part of a CIDR)? */
function subnetMatches(subnet: string, data: string): boolean {
  const network = parseCidr(subnet);
  if (!network) throw new UsageError(`invalid subnet: invalid CIDR address: ${subnet}`);
  if (data.includes('/')) {
    const inner = parseCidr(data);
    if (!inner) throw new UsageError(`invalid CIDR address: ${data}`);
    return networkContains(network, parseIp(inner.address));
  }
  return networkContains(network, parseIp(data));
}
