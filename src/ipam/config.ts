/**
 * Validation of a network's IPAM configuration with moby's messages (ValidateIPAM),
 * which users and scripts match on: "invalid network config:\n" + one line per problem.
 * Blocks of either family; as moby, IPv6 blocks are only checked when IPv6 is enabled.
 */
import { invalid } from '../errors.js';
import { formatPrefix, isMaskedPrefix, maskedPrefix, parseIp, parsePrefix, prefixContains, prefixOverlaps, type Family, type IpAddress, type IpPrefix } from './ip.js';

/** One IPAM config block as the Engine API carries it. */
export interface IpamConfigInput {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

/** The parsed pool of one block, of either family. */
export interface PoolSpec {
  family: Family;
  subnet: IpPrefix;
  range?: IpPrefix;
  gateway?: IpAddress;
  aux: Record<string, IpAddress>;
}

const familyName = (f: Family) => (f === 4 ? 'IPv4' : 'IPv6');

function validateAddress(text: string, subnet: IpPrefix): string | undefined {
  const a = parseIp(text);
  if (a === undefined) return 'invalid address';
  if (a.family !== subnet.family) return `parent subnet is an ${familyName(subnet.family)} block`;
  if (!prefixContains(subnet, a)) return `parent subnet ${formatPrefix(subnet)} doesn't contain this address`;
  return undefined;
}

/**
 * Checks every config block and returns their pools (IPv6 ones only when enableIPv6, as
 * moby skips them otherwise); throws an `invalid` error listing every problem found.
 */
export function validateIpamConfig(configs: readonly IpamConfigInput[], enableIPv6 = false): PoolSpec[] {
  const errs: string[] = [];
  const pools: PoolSpec[] = [];
  for (const cfg of configs) {
    const subnetText = cfg.Subnet ?? '';
    const subnet = parsePrefix(subnetText);
    if (!subnet) {
      errs.push(`invalid subnet ${subnetText}: invalid CIDR block notation`);
      continue;
    }
    if (subnet.family === 6 && !enableIPv6) continue;
    if (!isMaskedPrefix(subnet)) errs.push(`invalid subnet ${formatPrefix(subnet)}: it should be ${formatPrefix(maskedPrefix(subnet))}`);
    const pool: PoolSpec = { family: subnet.family, subnet: maskedPrefix(subnet), aux: {} };
    if (cfg.IPRange) {
      const range = parsePrefix(cfg.IPRange);
      if (!range) {
        errs.push(`invalid ip-range ${cfg.IPRange}: invalid CIDR block notation`);
      } else if (range.family !== subnet.family) {
        errs.push(`invalid ip-range ${cfg.IPRange}: parent subnet is an ${familyName(subnet.family)} block`);
      } else {
        if (range.bits < subnet.bits) errs.push(`invalid ip-range ${cfg.IPRange}: CIDR block is bigger than its parent subnet ${formatPrefix(subnet)}`);
        if (!isMaskedPrefix(range)) errs.push(`invalid ip-range ${formatPrefix(range)}: it should be ${formatPrefix(maskedPrefix(range))}`);
        if (!prefixOverlaps(subnet, range)) errs.push(`invalid ip-range ${cfg.IPRange}: parent subnet ${formatPrefix(subnet)} doesn't contain ip-range`);
        pool.range = maskedPrefix(range);
      }
    }
    if (cfg.Gateway) {
      const problem = validateAddress(cfg.Gateway, subnet);
      if (problem) errs.push(`invalid gateway ${cfg.Gateway}: ${problem}`);
      else pool.gateway = parseIp(cfg.Gateway);
    }
    for (const [name, text] of Object.entries(cfg.AuxiliaryAddresses ?? {})) {
      const problem = validateAddress(text, subnet);
      if (problem) errs.push(`invalid auxiliary address ${name}: ${problem}`);
      else pool.aux[name] = parseIp(text)!;
    }
    pools.push(pool);
  }
  if (errs.length === 1) throw invalid(`invalid network config:\n${errs[0]}`);
  if (errs.length > 1) throw invalid(`invalid network config:\n* ${errs.join('\n* ')}`);
  return pools;
}
