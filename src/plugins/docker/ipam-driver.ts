/**
 * Docker's IPAM driver verbs backed by bpfnet's IPAM: a pool dockerd requests is stored
 * (documents, kind "docker-pool") and checked against every bpfnet network and every other
 * pool for overlap; its addresses are held in the store's IPAM table under the pool's id with
 * the same allocator bpfnet's own networks use. A pool without a subnet comes from the
 * daemon's default address pools, as `docker network create` without --subnet does.
 */
import { Ipv4Allocator, type Pool } from '../../ipam/allocator.js';
import { contains, formatCidr, formatIPv4, isMasked, overlaps, parseCidr, parseIPv4, type Cidr } from '../../ipam/ipv4.js';
import { pickSubnet, type AddressPool } from '../../ipam/pools.js';
import type { Store } from '../../store/store.js';
import { newId } from '../../util/ids.js';
import { Label, PluginError, body, optString, stringMap } from './protocol.js';

const KIND = 'docker-pool';

/** A pool handed to dockerd. */
export interface DockerPool {
  id: string;
  subnet: string;
  range?: string;
}

export interface IpamDriverOptions {
  store: Store;
  /** The daemon's default address pools (--default-address-pool). */
  pools: readonly AddressPool[];
}

export class DockerIpamDriver {
  readonly #store: Store;
  readonly #defaults: readonly AddressPool[];
  readonly #allocator: Ipv4Allocator;

  constructor(opts: IpamDriverOptions) {
    this.#store = opts.store;
    this.#defaults = opts.pools;
    this.#allocator = new Ipv4Allocator(opts.store.ipam);
  }

  pools(): DockerPool[] {
    return this.#store.documents.all(KIND).map((d) => JSON.parse(d.doc) as DockerPool);
  }

  #pool(poolId: string): { rec: DockerPool; pool: Pool } {
    const doc = this.#store.documents.get(KIND, poolId);
    if (!doc) throw new PluginError(`no pool ${poolId}`);
    const rec = JSON.parse(doc) as DockerPool;
    return { rec, pool: { id: `docker:${rec.id}`, label: `pool ${rec.subnet}`, subnet: parseCidr(rec.subnet)!, range: rec.range ? parseCidr(rec.range) : undefined } };
  }

  getCapabilities(): object {
    return { RequiresMACAddress: false, RequiresRequestReplay: false };
  }

  getDefaultAddressSpaces(): object {
    return { LocalDefaultAddressSpace: 'bpfnet', GlobalDefaultAddressSpace: 'bpfnet-global' };
  }

  requestPool(raw: unknown): object {
    const b = body(raw);
    if (b.V6 === true) throw new PluginError('IPv6 pools are not supported by bpfnet\'s Docker IPAM driver yet');
    const poolText = optString(b, 'Pool', 64);
    const subText = optString(b, 'SubPool', 64);
    stringMap(b.Options, 'Options');
    const taken: Cidr[] = [
      ...this.#store.networks.all().filter((n) => n.subnet).map((n) => parseCidr(n.subnet!)!),
      ...this.pools().map((p) => parseCidr(p.subnet)!),
    ];
    return this.#store.transaction(() => {
      let subnet: Cidr;
      if (poolText) {
        const c = parseCidr(poolText);
        if (!c || c.bits > 30) throw new PluginError(`invalid pool "${poolText}": an IPv4 subnet of /30 or larger`);
        if (!isMasked(c)) throw new PluginError(`invalid pool "${poolText}": host bits are set (did you mean ${formatCidr({ addr: c.addr & (c.bits === 0 ? 0 : (~0 << (32 - c.bits)) >>> 0), bits: c.bits })}?)`);
        if (taken.some((t) => overlaps(t, c))) throw new PluginError(`invalid pool request: Pool overlaps with other one on this address space`);
        subnet = c;
      } else {
        if (subText) throw new PluginError('invalid pool request: a sub-pool (ip_range) needs a pool (subnet)');
        const picked = pickSubnet(this.#defaults, taken);
        if (!picked) throw new PluginError('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
        subnet = picked;
      }
      let range: Cidr | undefined;
      if (subText) {
        range = parseCidr(subText);
        if (!range || !isMasked(range) || range.bits < subnet.bits || !contains(subnet, range.addr)) throw new PluginError(`invalid sub-pool "${subText}": a block inside ${formatCidr(subnet)}`);
      }
      const rec: DockerPool = { id: newId().slice(0, 24), subnet: formatCidr(subnet), ...(range ? { range: formatCidr(range) } : {}) };
      this.#store.documents.put(KIND, rec.id, JSON.stringify(rec));
      return { PoolID: rec.id, Pool: rec.subnet, Data: {} };
    });
  }

  releasePool(raw: unknown): object {
    const b = body(raw);
    const poolId = optString(b, 'PoolID', 128);
    if (!poolId) throw new PluginError('PoolID is missing');
    // Releasing what is not there is done (dockerd retries after a crash).
    if (!this.#store.documents.get(KIND, poolId)) return {};
    this.#store.transaction(() => {
      this.#store.ipam.dropPool(`docker:${poolId}`);
      this.#store.documents.delete(KIND, poolId);
    });
    return {};
  }

  requestAddress(raw: unknown): object {
    const b = body(raw);
    const poolId = optString(b, 'PoolID', 128);
    if (!poolId) throw new PluginError('PoolID is missing');
    const options = stringMap(b.Options, 'Options');
    const wanted = optString(b, 'Address', 64);
    const { pool } = this.#pool(poolId);
    const gateway = options[Label.requestAddressType] === Label.gatewayRequest;
    const owner = gateway ? 'the gateway' : 'docker endpoint';
    const address = this.#store.transaction(() => {
      if (wanted !== undefined) {
        const a = parseIPv4(wanted.split('/')[0]);
        if (a === undefined) throw new PluginError(`invalid address "${wanted}"`);
        if (!contains(pool.subnet, a)) throw new PluginError(`address ${wanted} is not in pool ${formatCidr(pool.subnet)}`);
        // dockerd names no owner: every hold is Docker's, so any holder means the address is taken.
        const holder = this.#store.ipam.holder(pool.id, formatIPv4(a));
        const r = holder === undefined ? this.#store.ipam.reserve(pool.id, formatIPv4(a), owner) : { reserved: false as const, holder };
        if (!r.reserved) throw new PluginError(`Address already in use: ${formatIPv4(a)} (held by ${r.holder})`);
        return a;
      }
      // The gateway is the subnet's first address when free, as Docker's default IPAM gives it.
      if (gateway && this.#store.ipam.holder(pool.id, formatIPv4(pool.subnet.addr + 1)) === undefined && this.#store.ipam.reserve(pool.id, formatIPv4(pool.subnet.addr + 1), owner).reserved)
        return pool.subnet.addr + 1;
      try {
        return this.#allocator.allocate(gateway ? { ...pool, range: undefined } : pool, owner);
      } catch (err) {
        throw new PluginError((err as Error).message);
      }
    });
    return { Address: `${formatIPv4(address)}/${pool.subnet.bits}`, Data: {} };
  }

  releaseAddress(raw: unknown): object {
    const b = body(raw);
    const poolId = optString(b, 'PoolID', 128);
    const text = optString(b, 'Address', 64);
    if (!poolId || !text) throw new PluginError('PoolID and Address are required');
    const a = parseIPv4(text.split('/')[0]);
    if (a === undefined) throw new PluginError(`invalid address "${text}"`);
    if (!this.#store.documents.get(KIND, poolId)) return {};
    this.#store.ipam.release(`docker:${poolId}`, formatIPv4(a));
    return {};
  }
}
