// The embedded resolver's answer logic against an in-memory store: who sees which names,
// aliases in rotating order, PTR, NXDOMAIN vs NODATA, AAAA empty, short ids, malformed input,
// truncation, and the resolv.conf each sandbox gets.
import dnsPacket from 'dns-packet';
import { beforeEach, describe, expect, it } from 'vitest';
import { EmbeddedDns, FALLBACK_NAMESERVERS, parseHostResolvers } from '../../src/dns/embedded-dns.js';
import { LiveNameIndex } from '../../src/dns/name-index.js';
import { failure, ptrAddress, relay, Resolver, type Decision, type Forward, type QueryContext } from '../../src/dns/resolver.js';
import type { NetworkRecord, SandboxRecord } from '../../src/networks/model.js';
import { FakeDnsStore, query, read } from './dns-fixtures.js';

const UPSTREAMS = [{ address: '198.18.0.2', port: 53 }];

describe('embedded resolver', () => {
  let store: FakeDnsStore;
  let resolver: Resolver;
  let front: NetworkRecord;
  let back: NetworkRecord;
  let inside: NetworkRecord;
  let web: SandboxRecord;
  let api: SandboxRecord;
  let db: SandboxRecord;
  let lonely: SandboxRecord;

  // front: web (10.1.0.2), api (10.1.0.3); back: api (10.2.0.3), db (10.2.0.4); inside (internal): lonely
  beforeEach(() => {
    store = new FakeDnsStore();
    front = store.network('front', '10.1.0.0/24');
    back = store.network('back', '10.2.0.0/24');
    inside = store.network('inside', '10.3.0.0/24', { internal: true });
    const bridge = store.network('bridge', '172.17.0.0/16', { predefined: true });
    web = store.sandbox('web');
    api = store.sandbox('api');
    db = store.sandbox('db', { dns: ['192.0.2.53'] });
    lonely = store.sandbox('lonely');
    const old = store.sandbox('old');
    store.attach(web, front, '10.1.0.2', ['www']);
    store.attach(api, front, '10.1.0.3');
    store.attach(api, back, '10.2.0.3', ['service']);
    store.attach(db, back, '10.2.0.4', ['service']);
    store.attach(lonely, inside, '10.3.0.2');
    store.attach(old, bridge, '172.17.0.2');
    resolver = new Resolver(new LiveNameIndex(store), { upstreams: () => UPSTREAMS });
  });

  const from = (source: string, local: string, transport: QueryContext['transport'] = 'udp'): QueryContext => ({ source, local, transport });
  const ask = (ctx: QueryContext, name: string, type: Parameters<typeof query>[1] = 'A', opts: Parameters<typeof query>[2] = {}): Decision => resolver.resolve(query(name, type, opts), ctx);
  const answer = (ctx: QueryContext, name: string, type: Parameters<typeof query>[1] = 'A', opts: Parameters<typeof query>[2] = {}) => {
    const d = ask(ctx, name, type, opts);
    if (d.kind !== 'reply') throw new Error(`expected a reply, got ${d.kind}`);
    return read(d.packet);
  };
  const WEB = () => from('10.1.0.2', '10.1.0.1');
  const API_FRONT = () => from('10.1.0.3', '10.1.0.1');
  const DB = () => from('10.2.0.4', '10.2.0.1');
  const LONELY = () => from('10.3.0.2', '10.3.0.1');

  describe('scoping', () => {
    it('answers the names of sandboxes on a shared network, with their address there', () => {
      expect(answer(WEB(), 'api')).toMatchObject({ rcode: 'NOERROR', answers: ['10.1.0.3'], aa: true });
      expect(answer(DB(), 'api').answers).toEqual(['10.2.0.3']);
    });

    it('does not answer names from networks the querier is not on: they are forwarded', () => {
      const d = ask(WEB(), 'db');
      expect(d.kind).toBe('forward');
      expect((d as Forward).upstreams).toEqual(UPSTREAMS);
    });

    it('resolves names on both networks of a sandbox on two', () => {
      expect(answer(from('10.2.0.3', '10.2.0.1'), 'web').answers).toEqual(['10.1.0.2']);
      expect(answer(from('10.2.0.3', '10.2.0.1'), 'db').answers).toEqual(['10.2.0.4']);
      expect(answer(API_FRONT(), 'db').answers).toEqual(['10.2.0.4']);
    });

    it('answers the sandbox name, its short id and its aliases, in any case, with or without the root dot', () => {
      expect(answer(WEB(), 'www').answers).toEqual(['10.1.0.2']);
      expect(answer(API_FRONT(), web.id.slice(0, 12)).answers).toEqual(['10.1.0.2']);
      expect(answer(API_FRONT(), 'WeB.').answers).toEqual(['10.1.0.2']);
      expect(ask(API_FRONT(), web.id.slice(0, 20)).kind).toBe('forward');
    });

    it('answers NAME.NETWORK on a network the querier is on, and only there', () => {
      expect(answer(WEB(), 'api.front').answers).toEqual(['10.1.0.3']);
      expect(ask(WEB(), 'api.back').kind).toBe('forward');
    });

    it('refuses queries from anything that is not a sandbox on the network they arrived on', () => {
      expect(answer(from('172.17.0.2', '10.1.0.1'), 'web').rcode).toBe('REFUSED');
      expect(answer(from('10.1.0.1', '10.1.0.1'), 'web').rcode).toBe('REFUSED');
      expect(answer(from('10.1.0.2', '10.2.0.1'), 'api').rcode).toBe('REFUSED');
      expect(answer(from('198.18.0.2', '10.1.0.1'), 'example.com').rcode).toBe('REFUSED');
    });

    it('resolves names on --internal networks but forwards nothing for a sandbox only there', () => {
      const buddy = store.sandbox('buddy');
      store.attach(buddy, inside, '10.3.0.3');
      expect(answer(LONELY(), 'buddy').answers).toEqual(['10.3.0.3']);
      expect(answer(LONELY(), 'example.com').rcode).toBe('REFUSED');
    });

    it('forwards for a sandbox on an internal network and a normal one', () => {
      store.attach(lonely, front, '10.1.0.9');
      expect(ask(LONELY(), 'example.com').kind).toBe('forward');
    });

    it("uses a sandbox's own --dns servers as its upstreams", () => {
      expect((ask(DB(), 'example.com') as Forward).upstreams).toEqual([{ address: '192.0.2.53', port: 53 }]);
    });

    it('hides sandboxes still being created or being removed', () => {
      const half = store.sandbox('half', { state: 'creating' });
      store.attach(half, front, '10.1.0.7');
      expect(ask(WEB(), 'half').kind).toBe('forward');
      store.boxes.set(half.id, { ...half, state: 'created' });
      store.version++;
      expect(answer(WEB(), 'half').answers).toEqual(['10.1.0.7']);
    });
  });

  describe('always current', () => {
    it('follows rename, disconnect, connect and removal at the next query', () => {
      expect(answer(WEB(), 'api').answers).toEqual(['10.1.0.3']);
      api = store.rename(api, 'api2');
      expect(ask(WEB(), 'api').kind).toBe('forward');
      expect(answer(WEB(), 'api2').answers).toEqual(['10.1.0.3']);
      const ep = store.endpoints.forSandbox(api.id).find((e) => e.networkId === front.id)!;
      store.detach(ep);
      expect(ask(WEB(), 'api2').kind).toBe('forward');
      store.attach(api, front, '10.1.0.8');
      expect(answer(WEB(), 'api2').answers).toEqual(['10.1.0.8']);
      store.remove(api);
      expect(ask(WEB(), 'api2').kind).toBe('forward');
    });
  });

  describe('aliases shared by several sandboxes', () => {
    it('returns every address, in rotating order', () => {
      const orders = Array.from({ length: 4 }, () => answer(DB(), 'service').answers);
      expect(orders[0]).toHaveLength(2);
      expect(new Set(orders.map((o) => o.join(',')))).toEqual(new Set(['10.2.0.3,10.2.0.4', '10.2.0.4,10.2.0.3']));
      expect(orders[0]).not.toEqual(orders[1]);
      expect(orders[0]).toEqual(orders[2]);
    });

    it('cycles through three', () => {
      const third = store.sandbox('third');
      store.attach(third, back, '10.2.0.5', ['service']);
      const firsts = Array.from({ length: 3 }, () => answer(DB(), 'service').answers[0]);
      expect(new Set(firsts)).toEqual(new Set(['10.2.0.3', '10.2.0.4', '10.2.0.5']));
    });
  });

  describe('record types', () => {
    it('answers AAAA for a known name with NOERROR and no records (NODATA), not NXDOMAIN', () => {
      expect(answer(WEB(), 'api', 'AAAA')).toMatchObject({ rcode: 'NOERROR', answers: [] });
    });

    it('answers other types of a known name with NODATA too', () => {
      for (const type of ['MX', 'TXT', 'SRV', 'CNAME'] as const) expect(answer(WEB(), 'api', type)).toMatchObject({ rcode: 'NOERROR', answers: [] });
    });

    it('forwards unknown names whatever the type (the upstream tells NXDOMAIN from NODATA)', () => {
      for (const type of ['A', 'AAAA', 'MX'] as const) expect(ask(WEB(), 'nothing.example', type).kind).toBe('forward');
    });

    it('answers PTR for addresses of sandboxes the querier can see, as NAME.NETWORK', () => {
      const r = answer(WEB(), '3.0.1.10.in-addr.arpa', 'PTR');
      expect(r).toMatchObject({ rcode: 'NOERROR', answers: ['api.front'] });
    });

    it('answers NXDOMAIN for unheld addresses inside its networks and forwards other PTRs', () => {
      expect(answer(WEB(), '99.0.1.10.in-addr.arpa', 'PTR').rcode).toBe('NXDOMAIN');
      expect(ask(WEB(), '4.0.2.10.in-addr.arpa', 'PTR').kind).toBe('forward');
      expect(answer(API_FRONT(), '4.0.2.10.in-addr.arpa', 'PTR').answers).toEqual(['db.back']);
      expect(ask(WEB(), '8.8.8.8.in-addr.arpa', 'PTR').kind).toBe('forward');
    });

    it('reads reverse names strictly', () => {
      expect(ptrAddress('4.3.2.1.in-addr.arpa.')).toBe('1.2.3.4');
      expect(ptrAddress('3.2.1.in-addr.arpa')).toBeUndefined();
      expect(ptrAddress('256.3.2.1.in-addr.arpa')).toBeUndefined();
      expect(ptrAddress('04.3.2.1.in-addr.arpa')).toBeUndefined();
    });

    it('answers a repeated query (from its cache) with the new id and the same records, until the names change', () => {
      const first = answer(WEB(), 'api', 'A', { id: 100 });
      const again = answer(WEB(), 'api', 'A', { id: 101 });
      expect([first.id, again.id]).toEqual([100, 101]);
      expect(again.answers).toEqual(first.answers);
      store.rename(api, 'api-renamed');
      expect(ask(WEB(), 'api', 'A', { id: 102 }).kind).toBe('forward');
    });

    it('echoes the question and id, and EDNS when asked', () => {
      const d = resolver.resolve(query('API', 'A', { id: 4242, edns: 1232 }), WEB());
      const r = read((d as { packet: Buffer }).packet);
      expect(r.id).toBe(4242);
      expect(r.packet.questions?.[0]).toMatchObject({ name: 'API', type: 'A' });
      expect(r.packet.additionals?.some((a) => a.type === 'OPT')).toBe(true);
      expect(r.packet.answers?.[0]).toMatchObject({ ttl: 5 });
    });
  });

  describe('IPv6', () => {
    // dual: six (10.5.0.2, fd00:5::2), sixonly (fd00:5::3 only); the resolver listens on both gateways.
    let six: SandboxRecord;
    beforeEach(() => {
      const dual = store.network('dual', '10.5.0.0/24', { enableIPv6: true, subnet6: 'fd00:5::/64', gateway6: 'fd00:5::1' });
      six = store.sandbox('six');
      const only = store.sandbox('sixonly');
      Object.assign(store.attach(six, dual, '10.5.0.2', ['both']), { ipv6: 'fd00:5::2', prefixLength6: 64 });
      const e = store.attach(only, dual, '10.5.0.99', ['both']);
      delete e.ipv4;
      Object.assign(e, { ipv6: 'fd00:5::3', prefixLength6: 64 });
    });
    const SIX4 = () => from('10.5.0.2', '10.5.0.1');
    const SIX6 = () => from('fd00:5::2', 'fd00:5::1');

    it('answers AAAA with IPv6 addresses and A with IPv4 ones; a family a sandbox lacks is NODATA; ANY gives both', () => {
      expect(answer(SIX4(), 'sixonly', 'AAAA')).toMatchObject({ rcode: 'NOERROR', answers: ['fd00:5::3'], aa: true });
      expect(answer(SIX4(), 'sixonly', 'A')).toMatchObject({ rcode: 'NOERROR', answers: [] });
      expect(answer(SIX4(), 'six', 'A').answers).toEqual(['10.5.0.2']);
      expect([...answer(SIX4(), 'both', 'AAAA').answers].sort()).toEqual(['fd00:5::2', 'fd00:5::3']);
      expect(answer(SIX4(), 'both', 'A').answers).toEqual(['10.5.0.2']);
      expect([...answer(SIX4(), 'six', 'ANY' as never).answers].sort()).toEqual(['10.5.0.2', 'fd00:5::2']);
      // The IPv4-only networks are unchanged: AAAA stays empty there.
      expect(answer(WEB(), 'api', 'AAAA')).toMatchObject({ rcode: 'NOERROR', answers: [] });
    });

    it('answers a sandbox asking on the IPv6 gateway from its IPv6 address (any spelling), and refuses a stranger there', () => {
      expect(answer(SIX6(), 'sixonly', 'AAAA').answers).toEqual(['fd00:5::3']);
      expect(answer(from('FD00:5:0::3', 'fd00:5:0:0::1'), 'six', 'A').answers).toEqual(['10.5.0.2']);
      expect(answer(from('fd00:5::77', 'fd00:5::1'), 'six', 'AAAA').rcode).toBe('REFUSED');
      // An IPv6 source arriving on another network's gateway is no querier there.
      expect(answer(from('fd00:5::2', '10.1.0.1'), 'web').rcode).toBe('REFUSED');
    });

    it('answers PTR in ip6.arpa as NAME.NETWORK, NXDOMAIN for a free address of the subnet, forwards others', () => {
      const rev = (hex32: string) => `${hex32.split('').reverse().join('.')}.ip6.arpa`;
      expect(ptrAddress(rev('fd000005000000000000000000000003'))).toBe('fd00:5::3');
      expect(ptrAddress(`${rev('fd000005000000000000000000000003').slice(2)}`)).toBeUndefined();
      expect(ptrAddress(rev('fd00000500000000000000000000000g'))).toBeUndefined();
      expect(answer(SIX6(), rev('fd000005000000000000000000000003'), 'PTR')).toMatchObject({ rcode: 'NOERROR', answers: ['sixonly.dual'] });
      expect(answer(SIX4(), rev('fd000005000000000000000000004242'), 'PTR')).toMatchObject({ rcode: 'NXDOMAIN', aa: true });
      expect(ask(SIX4(), rev('20010db8000000000000000000000001'), 'PTR').kind).toBe('forward');
    });
  });

  describe('size', () => {
    beforeEach(() => {
      for (let i = 0; i < 60; i++) store.attach(store.sandbox(`many${i}`), front, `10.1.0.${100 + i}`, ['crowd']);
    });

    it('truncates a local answer larger than 512 bytes over UDP and sets TC', () => {
      const d = ask(WEB(), 'crowd') as { packet: Buffer };
      expect(d.packet.length).toBeLessThanOrEqual(512);
      const r = read(d.packet);
      expect(r.tc).toBe(true);
      expect(r.answers.length).toBeLessThan(60);
    });

    it('sends all of it over TCP, and up to the EDNS size over UDP', () => {
      expect(read((ask(from('10.1.0.2', '10.1.0.1', 'tcp'), 'crowd') as { packet: Buffer }).packet)).toMatchObject({ tc: false, answers: expect.arrayContaining(['10.1.0.159']) });
      const edns = read((ask(WEB(), 'crowd', 'A', { edns: 4096 }) as { packet: Buffer }).packet);
      expect(edns.tc).toBe(false);
      expect(edns.answers).toHaveLength(60);
    });

    it('truncates a forwarded answer larger than the client takes over UDP', () => {
      const fwd = ask(WEB(), 'big.example') as Forward;
      const big = dnsPacket.encode({
        type: 'response',
        id: 7,
        flags: dnsPacket.RECURSION_AVAILABLE,
        questions: [fwd.question],
        answers: Array.from({ length: 60 }, (_, i) => ({ type: 'A' as const, name: 'big.example', data: `203.0.113.${i}` })),
      });
      const out = read(relay(fwd, big));
      expect(out).toMatchObject({ id: fwd.id, tc: true, answers: [], rcode: 'NOERROR' });
      const overTcp = ask(from('10.1.0.2', '10.1.0.1', 'tcp'), 'big.example') as Forward;
      expect(read(relay(overTcp, big))).toMatchObject({ id: overTcp.id, tc: false });
      expect(read(relay(overTcp, big)).answers).toHaveLength(60);
    });

    it('answers SERVFAIL for a failed forward, with the question', () => {
      const fwd = ask(WEB(), 'gone.example') as Forward;
      expect(read(failure(fwd, 2))).toMatchObject({ id: fwd.id, rcode: 'SERVFAIL' });
      expect(read(failure(fwd, 2)).packet.questions?.[0].name).toBe('gone.example');
    });
  });

  describe('malformed input', () => {
    it('drops what is too short to answer and never answers a response', () => {
      expect(resolver.resolve(Buffer.alloc(5), WEB()).kind).toBe('drop');
      const response = dnsPacket.encode({ type: 'response', id: 1, questions: [{ type: 'A', name: 'web' }] });
      expect(resolver.resolve(response, WEB()).kind).toBe('drop');
    });

    it('answers FORMERR to undecodable queries and to several questions', () => {
      const junk = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x3f, 0x41]);
      const d = resolver.resolve(junk, WEB());
      expect(read((d as { packet: Buffer }).packet)).toMatchObject({ id: 0x1234, rcode: 'FORMERR' });
      const two = dnsPacket.encode({ type: 'query', id: 9, questions: [{ type: 'A', name: 'web' }, { type: 'A', name: 'api' }] });
      expect(read((resolver.resolve(two, WEB()) as { packet: Buffer }).packet).rcode).toBe('FORMERR');
    });

    it('answers NOTIMP to other opcodes and BADVERS to EDNS versions above 0', () => {
      const notify = query('web');
      notify.writeUInt16BE(notify.readUInt16BE(2) | (4 << 11), 2);
      expect(read((resolver.resolve(notify, WEB()) as { packet: Buffer }).packet).rcode).toBe('NOTIMP');
      const r = read((ask(WEB(), 'api', 'A', { edns: 1232, ednsVersion: 1 }) as { packet: Buffer }).packet);
      expect(r.packet.additionals?.find((a) => a.type === 'OPT')).toMatchObject({ extendedRcode: 1 });
      expect(r.answers).toEqual([]);
    });
  });
});

describe("a sandbox's resolv.conf", () => {
  const store = new FakeDnsStore();
  const net = store.network('app', '10.9.0.0/24');
  const bridge = store.network('bridge', '172.17.0.0/16', { predefined: true });
  const make = (servers: string[], host: string) => new EmbeddedDns({ store, servers, hostResolvConf: host });

  it('points a sandbox on a user-defined network at its gateway, with ndots:0', () => {
    const sb = store.sandbox('on-app', { dns: ['192.0.2.1'] });
    store.attach(sb, bridge, '172.17.0.9');
    store.attach(sb, net, '10.9.0.2');
    expect(make([], 'nameserver 10.0.0.53\noptions ndots:3 edns0\n').resolverFor(sb)).toEqual({ nameservers: ['10.9.0.1'], options: ['edns0', 'ndots:0'] });
  });

  it("gives the default bridge the sandbox's --dns, else the daemon's, else the host's reachable ones, else Docker's fallback", () => {
    const sb = store.sandbox('on-bridge');
    store.attach(sb, bridge, '172.17.0.3');
    expect(make([], 'nameserver 127.0.0.53\nnameserver 10.0.0.53\n').resolverFor({ ...sb, dns: ['192.0.2.1'] }).nameservers).toEqual(['192.0.2.1']);
    expect(make(['198.18.0.2'], 'nameserver 10.0.0.53\n').resolverFor(sb).nameservers).toEqual(['198.18.0.2']);
    expect(make([], 'nameserver 127.0.0.53\nnameserver 10.0.0.53\n').resolverFor(sb).nameservers).toEqual(['10.0.0.53']);
    expect(make([], 'nameserver 127.0.0.53\n').resolverFor(sb).nameservers).toEqual([...FALLBACK_NAMESERVERS]);
  });

  it('forwards to loopback host resolvers too (the daemon forwards from the host namespace), IPv6 ones over IPv6, --dns first', () => {
    expect(make([], 'nameserver 127.0.0.53\n# x\nnameserver ::1\nnameserver fe80::1%eth0\nnameserver 2001:DB8::53\n').upstreams).toEqual([
      { address: '127.0.0.53', port: 53 },
      { address: '::1', port: 53 },
      { address: '2001:db8::53', port: 53 },
    ]);
    expect(make(['198.18.0.2'], 'nameserver 127.0.0.53\n').upstreams).toEqual([{ address: '198.18.0.2', port: 53 }]);
    expect(make([], '').upstreams.map((u) => u.address)).toEqual([...FALLBACK_NAMESERVERS]);
    expect(parseHostResolvers('nameserver 10.0.0.1 ; comment\noptions rotate\n')).toEqual({ all: ['10.0.0.1'], reachable: ['10.0.0.1'], options: ['rotate'] });
  });
});
