/**
 * Validation of a network's IPAM configuration with moby's messages (ValidateIPAM),
 * which users and scripts match on: "invalid network config:\n" + one line per problem.
 */
import { invalid } from '../errors.js';
import { contains, formatCidr, isMasked, masked, overlaps, parseCidr, parseIPv4, type Cidr } from './ipv4.js';

/** One IPAM config block as the Engine API carries it. */
export interface IpamConfigInput {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

/** The parsed IPv4 pool of a network. */
export interface PoolSpec {
  subnet: Cidr;
  range?: Cidr;
  gateway?: number;
  aux: Record<string, number>;
}

function looksIPv6(text: string): boolean {
  return text.includes(':');
}

function validateAddress(text: string, subnet: Cidr): string | undefined {
  if (looksIPv6(text)) return 'parent subnet is an IPv4 block';
  const ip = parseIPv4(text);
  if (ip === undefined) return 'invalid address';
  if (!contains(subnet, ip)) return `parent subnet ${formatCidr(subnet)} doesn't contain this address`;
  return undefined;
}

/**
 * Checks every config block and returns the IPv4 pools; throws an `invalid` error with all
 * problems found. IPv6 blocks are refused by the caller while IPv6 is unsupported.
 */
export function validateIpamConfig(configs: readonly IpamConfigInput[]): PoolSpec[] {
  const errs: string[] = [];
  const pools: PoolSpec[] = [];
  for (const cfg of configs) {
    const subnetText = cfg.Subnet ?? '';
    const subnet = parseCidr(subnetText);
    if (!subnet) {
      errs.push(`invalid subnet ${subnetText}: invalid CIDR block notation`);
      continue;
    }
    if (!isMasked(subnet)) errs.push(`invalid subnet ${formatCidr(subnet)}: it should be ${formatCidr(masked(subnet))}`);
    const pool: PoolSpec = { subnet: masked(subnet), aux: {} };
    if (cfg.IPRange) {
      const range = parseCidr(cfg.IPRange);
      if (!range) {
        errs.push(`invalid ip-range ${cfg.IPRange}: invalid CIDR block notation`);
      } else {
        if (range.bits < subnet.bits) errs.push(`invalid ip-range ${cfg.IPRange}: CIDR block is bigger than its parent subnet ${formatCidr(subnet)}`);
        if (!isMasked(range)) errs.push(`invalid ip-range ${formatCidr(range)}: it should be ${formatCidr(masked(range))}`);
        if (!overlaps(subnet, range)) errs.push(`invalid ip-range ${cfg.IPRange}: parent subnet ${formatCidr(subnet)} doesn't contain ip-range`);
        pool.range = masked(range);
      }
    }
    if (cfg.Gateway) {
      const problem = validateAddress(cfg.Gateway, subnet);
      if (problem) errs.push(`invalid gateway ${cfg.Gateway}: ${problem}`);
      else pool.gateway = parseIPv4(cfg.Gateway);
    }
    for (const [name, text] of Object.entries(cfg.AuxiliaryAddresses ?? {})) {
      const problem = validateAddress(text, subnet);
      if (problem) errs.push(`invalid auxiliary address ${name}: ${problem}`);
      else pool.aux[name] = parseIPv4(text)!;
    }
    pools.push(pool);
  }
  if (errs.length === 1) throw invalid(`invalid network config:\n${errs[0]}`);
  if (errs.length > 1) throw invalid(`invalid network config:\n* ${errs.join('\n* ')}`);
  return pools;
}
