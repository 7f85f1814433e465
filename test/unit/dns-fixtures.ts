// An in-memory store shaped like the one the embedded DNS reads, and helpers to build queries
// and read answers, for the DNS unit tests (no root, no sockets unless a test opens them).
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Question } from 'dns-packet';
import type { DnsStore } from '../../src/dns/embedded-dns.js';
import type { EndpointRecord, NetworkRecord, SandboxRecord } from '../../src/networks/model.js';

export class FakeDnsStore implements DnsStore {
  version = 0;
  readonly nets = new Map<string, NetworkRecord>();
  readonly boxes = new Map<string, SandboxRecord>();
  readonly eps = new Map<string, EndpointRecord>();
  #seq = 0;

  readonly networks = { all: () => [...this.nets.values()], get: (id: string) => this.nets.get(id) };
  readonly sandboxes = { all: () => [...this.boxes.values()], get: (id: string) => this.boxes.get(id) };
  readonly endpoints = {
    all: () => [...this.eps.values()],
    forSandbox: (id: string) => [...this.eps.values()].filter((e) => e.sandboxId === id).sort((a, b) => a.seq - b.seq),
  };

  network(name: string, subnet: string, opts: Partial<NetworkRecord> = {}): NetworkRecord {
    const [base] = subnet.split('/');
    const gateway = base.replace(/\.0$/, '.1');
    const net: NetworkRecord = {
      id: `${name}-id`.padEnd(64, '0'),
      name,
      created: '2026-01-01T00:00:00Z',
      driver: 'bridge',
      scope: 'local',
      internal: false,
      attachable: false,
      ingress: false,
      configOnly: false,
      enableIPv4: true,
      enableIPv6: false,
      ipamDriver: 'default',
      ipamOptions: {},
      ipamConfig: [],
      options: {},
      labels: {},
      predefined: false,
      subnet,
      gateway,
      device: `br-${name}`,
      ...opts,
    };
    this.nets.set(net.id, net);
    this.version++;
    return net;
  }

  sandbox(name: string, opts: Partial<SandboxRecord> = {}): SandboxRecord {
    const id = Buffer.from(name).toString('hex').padEnd(64, 'a').slice(0, 64);
    const sb: SandboxRecord = {
      id,
      name,
      created: '2026-01-01T00:00:00Z',
      networkMode: 'x',
      hostname: id.slice(0, 12),
      extraHosts: [],
      dns: [],
      dnsSearch: [],
      command: [],
      state: 'created',
      netns: `ns-${name}`,
      ...opts,
    };
    this.boxes.set(sb.id, sb);
    this.version++;
    return sb;
  }

  attach(sb: SandboxRecord, net: NetworkRecord, ipv4: string, aliases: string[] = []): EndpointRecord {
    const ep: EndpointRecord = {
      id: `${sb.name}-${net.name}`,
      networkId: net.id,
      sandboxId: sb.id,
      state: 'active',
      seq: this.#seq++,
      ifname: 'eth0',
      ipv4,
      prefixLength: Number(net.subnet!.split('/')[1]),
      aliases,
      staticIp: false,
    };
    this.eps.set(ep.id, ep);
    this.version++;
    return ep;
  }

  detach(ep: EndpointRecord): void {
    this.eps.delete(ep.id);
    this.version++;
  }

  rename(sb: SandboxRecord, name: string): SandboxRecord {
    const renamed = { ...sb, name };
    this.boxes.set(sb.id, renamed);
    this.version++;
    return renamed;
  }

  remove(sb: SandboxRecord): void {
    this.boxes.delete(sb.id);
    for (const [id, ep] of this.eps) if (ep.sandboxId === sb.id) this.eps.delete(id);
    this.version++;
  }
}

let nextId = 1;

export function query(name: string, type: Question['type'] = 'A', opts: { edns?: number; id?: number; ednsVersion?: number } = {}): Buffer {
  const additionals: Answer[] =
    opts.edns !== undefined ? [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, extendedRcode: 0, ednsVersion: opts.ednsVersion ?? 0, flags: 0, flag_do: false, options: [] }] : [];
  return dnsPacket.encode({ type: 'query', id: opts.id ?? nextId++ & 0xffff, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }], additionals });
}

export interface Reply {
  id: number;
  rcode: string;
  tc: boolean;
  aa: boolean;
  answers: string[];
  packet: DecodedPacket & { rcode?: string };
}

export function read(buf: Buffer): Reply {
  const p = dnsPacket.decode(buf) as DecodedPacket & { rcode: string };
  return {
    id: p.id ?? -1,
    rcode: p.rcode,
    tc: p.flag_tc,
    aa: p.flag_aa,
    answers: (p.answers ?? []).map((a) => ('data' in a && typeof a.data === 'string' ? a.data : a.type)),
    packet: p,
  };
}
