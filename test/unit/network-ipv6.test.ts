// The network model of both families through the real NetworkService on the memory store:
// what create and connect plan and hold (pools, gateways, addresses of each family, moby's
// errors with their status). Its driver keeps everything in memory, as the memory store does,
// so the model is proven without root; the kernel side runs in test/e2e (docker-cli, dns).
import { describe, expect, it } from 'vitest';
import type { Datapath } from '../../src/datapath/datapath.js';
import type { Driver, DriverCapabilities } from '../../src/drivers/driver.js';
import { DriverRegistry } from '../../src/drivers/registry.js';
import { ServiceError } from '../../src/errors.js';
import { parsePrefix } from '../../src/ipam/ip.js';
import { DEFAULT_POOLS, ulaPoolFor } from '../../src/ipam/pools.js';
import { Attachments } from '../../src/networks/attachments.js';
import type { EngineConfig } from '../../src/networks/config.js';
import type { EndpointRecord } from '../../src/networks/model.js';
import { NetworkService } from '../../src/networks/service.js';
import { endpointSpec, networkSpec, portSpecs } from '../../src/networks/spec.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { Mutex } from '../../src/util/mutex.js';
import { sandbox } from '../contract/store-suite.js';

/** A driver whose networks and endpoints exist in memory only: it records what it was asked to make. */
class MemoryDriver implements Driver {
  readonly name = 'mem';
  readonly made: string[] = [];
  readonly capabilities: DriverCapabilities = { datapath: false, scope: 'local', needsParent: false, ownNamespace: true, addresses: true, userNetworks: true, embeddedDns: true, disconnect: true, severalSubnets6: true };
  async createNetwork(net: { name: string }): Promise<void> {
    this.made.push(`network ${net.name}`);
  }
  async deleteNetwork(): Promise<void> {}
  async createEndpoint(_net: unknown, ep: EndpointRecord): Promise<EndpointRecord> {
    return { ...ep, hostIfname: `h${ep.id.slice(0, 8)}`, mac: '02:42:00:00:00:01' };
  }
  async join(_net: unknown, ep: EndpointRecord): Promise<EndpointRecord> {
    return ep;
  }
  async leave(): Promise<void> {}
  async deleteEndpoint(): Promise<void> {}
}

const unusedDatapath = new Proxy({} as Datapath, {
  get: (_t, key) => (key === 'kind' ? 'ebpf' : () => Promise.reject(new Error(`datapath.${String(key)} called for a network of a driver without the datapath capability`))),
});

function setup() {
  const store = new MemoryStore();
  const driver = new MemoryDriver();
  const cfg: EngineConfig = {
    root: '/nonexistent',
    instance: 'unit',
    linkPrefix: 'bnunit',
    bip: { gateway: '172.17.0.1', subnet: '172.17.0.0/16' },
    defaultBridgeName: 'bnunit0',
    pools: DEFAULT_POOLS,
    pools6: [ulaPoolFor('')],
    uplink: { ifname: 'up0', ipv4: '198.18.0.1', ipv6: '2001:db8:ff::1' },
    hostNetnsPath: '/proc/self/ns/net',
    hostResolvConf: '',
  };
  const attachments = new Attachments(store, new DriverRegistry([driver]), unusedDatapath, cfg);
  const service = new NetworkService(store, attachments, unusedDatapath, cfg, new Mutex());
  store.sandboxes.insert({ ...sandbox('s1', 'c1'), networkMode: 'default' });
  store.sandboxes.insert({ ...sandbox('s2', 'c2'), networkMode: 'default' });
  return { store, service, driver };
}

async function refusal(p: Promise<unknown>): Promise<{ kind: string; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ServiceError);
  return { kind: (err as ServiceError).kind, message: (err as ServiceError).message };
}

describe('networks of both families (service on the memory store)', () => {
  it('dual stack: a given IPv6 subnet beside a default IPv4 pool; endpoints get one address of each family; datapath spec fields filled', async () => {
    const { store, service } = setup();
    await service.create({ name: 'dual', driver: 'mem', enableIPv6: true, ipamConfig: [{ Subnet: 'fd00:1::/64', IPRange: 'fd00:1::100/120', Gateway: 'fd00:1::fe', AuxiliaryAddresses: { r: 'fd00:1::100' } }] });
    const net = service.resolve('dual');
    expect(net).toMatchObject({ enableIPv4: true, enableIPv6: true, subnet: '172.17.0.0/16', gateway: '172.17.0.1', subnet6: 'fd00:1::/64', ipRange6: 'fd00:1::100/120', gateway6: 'fd00:1::fe' });
    expect(net.ipamConfig).toEqual([{ Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' }, { Subnet: 'fd00:1::/64', IPRange: 'fd00:1::100/120', Gateway: 'fd00:1::fe', AuxiliaryAddresses: { r: 'fd00:1::100' } }]);
    expect([store.ipam.holder(net.id, 'fd00:1::fe'), store.ipam.holder(net.id, 'fd00:1::100'), store.ipam.holder(net.id, '172.17.0.1')]).toEqual(['the gateway', 'auxiliary address r', 'the gateway']);
    await service.connect('dual', 'c1', {});
    await service.connect('dual', 'c2', { ipv6: 'fd00:1::7' });
    const [e1, e2] = store.endpoints.forNetwork(net.id);
    expect(e1).toMatchObject({ ipv4: '172.17.0.2', prefixLength: 16, ipv6: 'fd00:1::101', prefixLength6: 64, staticIp: false });
    expect(e2).toMatchObject({ ipv4: '172.17.0.3', ipv6: 'fd00:1::7', staticIp6: true });
    expect(networkSpec(net)).toMatchObject({ subnet: '172.17.0.0/16', gateway: '172.17.0.1', subnet6: 'fd00:1::/64', gateway6: 'fd00:1::fe', masquerade6: true });
    expect(endpointSpec(e1, '/run/netns/x')).toMatchObject({ ipv4: '172.17.0.2', ipv6: 'fd00:1::101' });
    expect(portSpecs([{ sandboxId: 's1', protocol: 'tcp', hostIp: '', hostPort: 8080, containerPort: 80 }], e1, net)[0]).toMatchObject({ containerIp: '172.17.0.2', containerIp6: 'fd00:1::101' });
    // Disconnecting frees both addresses.
    await service.disconnect('dual', 'c2', false);
    expect([store.ipam.holder(net.id, 'fd00:1::7'), store.ipam.holder(net.id, '172.17.0.3')]).toEqual([undefined, undefined]);
  });

  it('several IPv6 subnets: one IPAM.Config entry and gateway each, --ip6 from any, automatic from the first with room, freed where held', async () => {
    const { store, service } = setup();
    await service.create({ name: 'multi', driver: 'mem', enableIPv6: true, ipamConfig: [{ Subnet: 'fd00:1::/126' }, { Subnet: 'fd00:2::/64', Gateway: 'fd00:2::fe' }] });
    const net = service.resolve('multi');
    expect(net).toMatchObject({ subnet6: 'fd00:1::/126', gateway6: 'fd00:1::1', moreSubnets6: [{ subnet: 'fd00:2::/64', gateway: 'fd00:2::fe' }] });
    expect(net.ipamConfig).toEqual([{ Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' }, { Subnet: 'fd00:1::/126' }, { Subnet: 'fd00:2::/64', Gateway: 'fd00:2::fe' }]);
    expect([store.ipam.holder(net.id, 'fd00:1::1'), store.ipam.holder(net.id, 'fd00:2::fe')]).toEqual(['the gateway', 'the gateway']);
    expect(networkSpec(net)).toMatchObject({ subnet6: 'fd00:1::/126', gateway6: 'fd00:1::1', moreSubnets6: [{ subnet: 'fd00:2::/64', gateway: 'fd00:2::fe' }] });
    // fd00:1::/126 has two host addresses (::1 the gateway, ::2 and ::3): the third sandbox goes to the second subnet.
    await service.connect('multi', 'c1', { ipv6: 'fd00:2::9' });
    await service.connect('multi', 'c2', {});
    store.sandboxes.insert({ ...sandbox('s3', 'c3'), networkMode: 'default' });
    store.sandboxes.insert({ ...sandbox('s4', 'c4'), networkMode: 'default' });
    await service.connect('multi', 'c3', {});
    await service.connect('multi', 'c4', {});
    const byName = (s: string) => store.endpoints.forNetwork(net.id).find((e) => e.sandboxId === s)!;
    expect(['s1', 's2', 's3', 's4'].map((s) => [byName(s).ipv6, byName(s).prefixLength6])).toEqual([
      ['fd00:2::9', 64],
      ['fd00:1::2', 126],
      ['fd00:1::3', 126],
      ['fd00:2::1', 64],
    ]);
    // A static address must be in one of the subnets.
    store.sandboxes.insert({ ...sandbox('s5', 'c5'), networkMode: 'default' });
    expect(await refusal(service.connect('multi', 'c5', { ipv6: 'fd00:3::9' }))).toEqual({ kind: 'invalid', message: 'invalid endpoint settings:\nno configured subnet or ip-range contain the IP address fd00:3::9' });
    await service.disconnect('multi', 'c1', false);
    expect(store.ipam.holder(net.id, 'fd00:2::9')).toBeUndefined();
    expect(store.ipam.holder(net.id, 'fd00:1::2')).toBe('sandbox c2');
  });

  it('IPv6-only: no IPv4 pool, endpoints with an IPv6 address only, the default ULA /64 when no subnet is given, routed mode', async () => {
    const { store, service } = setup();
    await service.create({ name: 'six', driver: 'mem', enableIPv4: false, enableIPv6: true, options: { 'com.docker.network.bridge.gateway_mode_ipv6': 'routed' } });
    const net = service.resolve('six');
    expect(net).toMatchObject({ enableIPv4: false, enableIPv6: true, subnet6: 'fd42:98fc:1c14::/64', gateway6: 'fd42:98fc:1c14::1' });
    expect([net.subnet, net.gateway, net.ipRange]).toEqual([undefined, undefined, undefined]);
    expect(net.ipamConfig).toEqual([{ Subnet: 'fd42:98fc:1c14::/64', Gateway: 'fd42:98fc:1c14::1' }]);
    await service.connect('six', 'c1', {});
    expect(store.endpoints.forNetwork(net.id)[0]).toMatchObject({ ipv6: 'fd42:98fc:1c14::2', prefixLength6: 64 });
    expect(store.endpoints.forNetwork(net.id)[0].ipv4).toBeUndefined();
    expect(networkSpec(net)).toMatchObject({ subnet: '', gateway: '', subnet6: 'fd42:98fc:1c14::/64', masquerade6: false });
    // The next network without a subnet takes the next /64 of the host's /48.
    await service.create({ name: 'six2', driver: 'mem', enableIPv6: true });
    expect(service.resolve('six2').subnet6).toBe('fd42:98fc:1c14:1::/64');
    expect(parsePrefix(service.resolve('six2').subnet!)!.family).toBe(4);
  });

  it("refuses malformed or impossible IPv6 settings with moby's words, as 400 (invalid) or 403 (forbidden)", async () => {
    const { service } = setup();
    const create = (req: object) => refusal(service.create({ name: 'x', driver: 'mem', ...req }));
    expect(await create({ enableIPv4: false })).toEqual({ kind: 'invalid', message: 'IPv4 or IPv6 must be enabled' });
    expect(await create({ enableIPv6: true, ipamConfig: [{ Subnet: 'fd00::1/64' }] })).toEqual({ kind: 'invalid', message: 'invalid network config:\ninvalid subnet fd00::1/64: it should be fd00::/64' });
    expect(await create({ enableIPv6: true, ipamConfig: [{ Subnet: 'fd00::/64', Gateway: '10.0.0.1' }] })).toEqual({ kind: 'invalid', message: 'invalid network config:\ninvalid gateway 10.0.0.1: parent subnet is an IPv6 block' });
    expect(await create({ enableIPv6: true, ipamConfig: [{ Subnet: 'fd00::/64' }, { Subnet: 'fd00::/56' }] })).toEqual({ kind: 'forbidden', message: 'invalid pool request: Pool overlaps with other one on this address space' });
    expect(await create({ ipamConfig: [{ Subnet: '10.1.0.0/24' }, { Subnet: '10.2.0.0/24' }] })).toEqual({ kind: 'invalid', message: 'bpfnet supports one IPv4 subnet per network' });
    expect(await create({ enableIPv6: true, ipamConfig: [{ Subnet: 'fd00::zz/64' }] })).toEqual({ kind: 'invalid', message: 'invalid network config:\ninvalid subnet fd00::zz/64: invalid CIDR block notation' });
    await service.create({ name: 'taken', driver: 'mem', enableIPv6: true, ipamConfig: [{ Subnet: 'fd00:9::/64' }] });
    expect(await create({ enableIPv6: true, ipamConfig: [{ Subnet: 'fd00:9::/56' }] })).toEqual({ kind: 'forbidden', message: 'invalid pool request: Pool overlaps with other one on this address space' });
    const connect = (opts: object) => refusal(service.connect('taken', 'c1', opts));
    for (const bad of ['fd00::zz', '10.0.0.1', '::', '::ffff:10.0.0.1', 'fd00:9::1/64'])
      expect(await connect({ ipv6: bad })).toEqual({ kind: 'invalid', message: `invalid endpoint settings:\ninvalid IPv6 address: ${bad}` });
    expect(await connect({ ipv6: 'fd00:8::5' })).toEqual({ kind: 'invalid', message: 'invalid endpoint settings:\nno configured subnet or ip-range contain the IP address fd00:8::5' });
    expect(await connect({ ipv6: 'fd00:9::1' })).toEqual({ kind: 'forbidden', message: 'Address already in use: fd00:9::1 on network taken is taken by the gateway' });
    await service.create({ name: 'four', driver: 'mem' });
    expect(await refusal(service.connect('four', 'c1', { ipv6: 'fd00::5' }))).toEqual({ kind: 'invalid', message: 'invalid endpoint settings:\nuser specified IPv6 address fd00::5 on network four, which has IPv6 disabled' });
  });
});
