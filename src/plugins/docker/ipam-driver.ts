/**
 * Docker's IPAM driver verbs backed by bpfnet's IPAM: a pool dockerd requests is stored
 * (documents, kind "docker-pool") and checked against every bpfnet network and every other
 * pool of its family for overlap; its addresses are held in the store's IPAM table under the
 * pool's id with the same allocator bpfnet's own networks use. A pool without a subnet comes
 * from the daemon's default address pools (V6: its IPv6 ones, a ULA /48 in /64s unless
 * configured), as `docker network create` without --subnet does.
 */
import { IpAllocator, type IpPool } from '../../ipam/allocator.js';
import { formatIp, formatPrefix, isMaskedPrefix, maskedPrefix, parseIp, parsePrefix, prefixContains, prefixOverlaps, type Family, type IpPrefix } from '../../ipam/ip.js';
import { pickIpSubnet, type AddressPool, type IpAddressPool } from '../../ipam/pools.js';
import type { ForeignEndpoint } from '../../networks/endpoints.js';
import type { Store } from '../../store/store.js';
import { newId } from '../../util/ids.js';
import { Label, PluginError, body, optString, stringMap } from './protocol.js';

const KIND = 'docker-pool';

/** A pool handed to dockerd (either family: the subnet's text says which). */
export interface DockerPool {
  id: string;
  subnet: string;
  range?: string;
}

export interface IpamDriverOptions {
  store: Store;
  /** The daemon's default IPv4 address pools (--default-address-pool). */
  pools: readonly AddressPool[];
  /** Its default IPv6 pools. */
  pools6?: readonly IpAddressPool[];
}

const familyName = (f: Family) => (f === 4 ? 'IPv4' : 'IPv6');

export class DockerIpamDriver {
  readonly #store: Store;
  readonly #defaults: Record<Family, readonly IpAddressPool[]>;
  readonly #allocator: IpAllocator;

  constructor(opts: IpamDriverOptions) {
    this.#store = opts.store;
    this.#defaults = {
      4: opts.pools.map((p) => ({ base: { family: 4 as const, addr: BigInt(p.base.addr), bits: p.base.bits }, size: p.size })),
      6: opts.pools6 ?? [],
    };
    this.#allocator = new IpAllocator(opts.store.ipam);
  }

  pools(): DockerPool[] {
    return this.#store.documents.all(KIND).map((d) => JSON.parse(d.doc) as DockerPool);
  }

  #pool(poolId: string): IpPool {
    const doc = this.#store.documents.get(KIND, poolId);
    if (!doc) throw new PluginError(`no pool ${poolId}`);
    const rec = JSON.parse(doc) as DockerPool;
    return { id: `docker:${rec.id}`, label: `pool ${rec.subnet}`, subnet: parsePrefix(rec.subnet)!, range: rec.range ? parsePrefix(rec.range) : undefined };
  }

  getCapabilities(): object {
    return { RequiresMACAddress: false, RequiresRequestReplay: false };
  }

  getDefaultAddressSpaces(): object {
    return { LocalDefaultAddressSpace: 'bpfnet', GlobalDefaultAddressSpace: 'bpfnet-global' };
  }

  requestPool(raw: unknown): object {
    const b = body(raw);
    const family: Family = b.V6 === true ? 6 : 4;
    const poolText = optString(b, 'Pool', 64);
    const subText = optString(b, 'SubPool', 64);
    stringMap(b.Options, 'Options');
    const taken: IpPrefix[] = [
      ...this.#store.networks.all().flatMap((n) => [n.subnet, n.subnet6]),
      ...this.pools().map((p) => p.subnet),
    ]
      .map((t) => (t ? parsePrefix(t) : undefined))
      .filter((p): p is IpPrefix => p !== undefined && p.family === family);
    // The smallest block with a gateway and one address besides (IPv6's first address is the subnet-router anycast).
    const maxBits = family === 4 ? 30 : 126;
    return this.#store.transaction(() => {
      let subnet: IpPrefix;
      if (poolText) {
        const c = parsePrefix(poolText);
        if (!c || c.family !== family || c.bits > maxBits)
          throw new PluginError(`invalid pool "${poolText}": an ${familyName(family)} subnet of /${maxBits} or larger${family === 6 ? '' : ' (IPv6 subnets need --ipv6)'}`);
        if (!isMaskedPrefix(c)) throw new PluginError(`invalid pool "${poolText}": host bits are set (did you mean ${formatPrefix(maskedPrefix(c))}?)`);
        if (taken.some((t) => prefixOverlaps(t, c))) throw new PluginError(`invalid pool request: Pool overlaps with other one on this address space`);
        subnet = c;
      } else {
        if (subText) throw new PluginError('invalid pool request: a sub-pool (ip_range) needs a pool (subnet)');
        const picked = pickIpSubnet(this.#defaults[family], taken);
        if (!picked) throw new PluginError(`could not find an available, non-overlapping ${familyName(family)} address pool among the defaults to assign to the network`);
        subnet = picked;
      }
      let range: IpPrefix | undefined;
      if (subText) {
        range = parsePrefix(subText);
        if (!range || range.family !== family || !isMaskedPrefix(range) || range.bits < subnet.bits || !prefixOverlaps(subnet, range))
          throw new PluginError(`invalid sub-pool "${subText}": a block inside ${formatPrefix(subnet)}`);
      }
      const rec: DockerPool = { id: newId().slice(0, 24), subnet: formatPrefix(subnet), ...(range ? { range: formatPrefix(range) } : {}) };
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
    const pool = this.#pool(poolId);
    const gateway = options[Label.requestAddressType] === Label.gatewayRequest;
    const owner = gateway ? 'the gateway' : 'docker endpoint';
    const address = this.#store.transaction(() => {
      if (wanted !== undefined) {
        const a = parseIp(wanted.split('/')[0]);
        if (a === undefined || a.family !== pool.subnet.family) throw new PluginError(`invalid address "${wanted}"`);
        if (!prefixContains(pool.subnet, a)) throw new PluginError(`address ${wanted} is not in pool ${formatPrefix(pool.subnet)}`);
        // dockerd names no owner: every hold is Docker's, so any holder means the address is taken.
        const text = formatIp(a);
        const holder = this.#store.ipam.holder(pool.id, text);
        const r = holder === undefined ? this.#store.ipam.reserve(pool.id, text, owner) : { reserved: false as const, holder };
        if (!r.reserved) throw new PluginError(`Address already in use: ${text} (held by ${r.holder})`);
        return a;
      }
      // The gateway is the subnet's first host address when free (x.x.x.1, prefix::1), as Docker's default IPAM gives it.
      const first = { family: pool.subnet.family, value: maskedPrefix(pool.subnet).addr + 1n };
      if (gateway && this.#store.ipam.holder(pool.id, formatIp(first)) === undefined && this.#store.ipam.reserve(pool.id, formatIp(first), owner).reserved) return first;
      try {
        return this.#allocator.allocate(gateway ? { ...pool, range: undefined } : pool, owner);
      } catch (err) {
        throw new PluginError((err as Error).message);
      }
    });
    return { Address: `${formatIp(address)}/${pool.subnet.bits}`, Data: {} };
  }

  /**
   * Start: frees the Docker-pool holds of Docker endpoints reconcile dropped (their namespace
   * died while bpfnet was down). dockerd gave up on them then, its ReleaseAddress failing with
   * the rest, and never asks again; nobody else can hold those addresses, as bpfnet still held
   * them for the endpoint until now. Returns what it freed.
   */
  releaseLost(lost: readonly ForeignEndpoint[]): string[] {
    const freed: string[] = [];
    const pools = this.pools().map((p) => ({ id: `docker:${p.id}`, subnet: parsePrefix(p.subnet)! }));
    for (const fe of lost) {
      if (fe.client?.kind !== 'docker') continue;
      for (const text of [fe.endpoint.ipv4, fe.endpoint.ipv6]) {
        const a = text ? parseIp(text) : undefined;
        const pool = a && pools.find((p) => prefixContains(p.subnet, a));
        if (!a || !pool || this.#store.ipam.holder(pool.id, formatIp(a)) !== 'docker endpoint') continue;
        this.#store.ipam.release(pool.id, formatIp(a));
        freed.push(formatIp(a));
      }
    }
    return freed;
  }

  releaseAddress(raw: unknown): object {
    const b = body(raw);
    const poolId = optString(b, 'PoolID', 128);
    const text = optString(b, 'Address', 64);
    if (!poolId || !text) throw new PluginError('PoolID and Address are required');
    const a = parseIp(text.split('/')[0]);
    if (a === undefined) throw new PluginError(`invalid address "${text}"`);
    if (!this.#store.documents.get(KIND, poolId)) return {};
    this.#store.ipam.release(`docker:${poolId}`, formatIp(a));
    return {};
  }
}
