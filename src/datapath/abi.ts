/**
 * The TypeScript mirror of bpf/shared/*.h: the one place key and value layouts,
 * enums and map names are restated. When a header changes, change this file with it;
 * test/kernel/abi.test.ts compares both against the objects' BTF.
 */
import { array, be16, bytes, ipv4, ipv6, mac, pad, struct, u16, u32, u64, u64n, u8 } from './libbpf/codec.js';

// ---- bpf/shared/probe.h ----

export const ProbeSlot = { XDP: 0, TC_INGRESS: 1, TC_EGRESS: 2 } as const;
export type ProbeSlot = (typeof ProbeSlot)[keyof typeof ProbeSlot];

export const probeCounter = struct({ packets: u64, bytes: u64 });

export const probeEvent = struct({
  slot: u32,
  ifindex: u32,
  len: u32,
  protocol: u8,
  pad: pad(3),
  saddr: ipv4,
  daddr: ipv4,
});

export const ProbeMaps = { counters: 'probe_counters', events: 'probe_events' } as const;

// ---- bpf/shared/drop_reasons.h ----

/** enum drop_reason, by value: the names `bpfnet stats` and `bpfnet monitor` print. */
export const DROP_REASONS = [
  'none',
  'spoofed-source-mac',
  'spoofed-source-ip',
  'isolation',
  'icc-disabled',
  'internal-network',
  'conntrack-full',
  'nat-no-port',
  'no-route',
  'unknown-destination',
  'unsolicited',
  'malformed',
  'unknown-endpoint',
  'nat-unsupported',
  'martian-source',
  'martian-destination',
  'vlan-tagged',
  'ipv6',
  'unknown-ethertype',
  'ct-invalid',
  'fragment',
  'spoofed-neighbour-discovery',
  'conntrack-quota',
  'no-shared-link',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

// ---- bpf/shared/datapath.h ----

export const DpFlags = { CONFIGURED: 1, DROP_EVENTS: 2, UPLINK_VETH: 4 } as const;
export const NetFlags = { ICC: 1, INTERNAL: 2, MASQUERADE: 4, MORE_SUBNETS6: 8 } as const;
export const CtHook = { CONTAINER: 1, UPLINK: 2, LOCAL: 3 } as const;
export const CtKind = { SNAT: 1, DNAT: 2, HAIRPIN: 3, LOCAL: 4, ROUTED: 5 } as const;
/** ct_entry4.state bits. */
export const CtState = { SYN: 1, SYNACK: 2, FIN_ORIG: 4, FIN_REPLY: 8, RST: 16, REPLIED: 32, ASSURED: 64 } as const;
export const CtDeliver = { ROUTE: 0, LOCAL: 1 } as const;
/** Stats slots that are not host veths. */
export const StatsSlot = { UPLINK: 0, HOST: 1 } as const;

export const dpConfig = struct({
  uplink_addr: ipv4,
  uplink_ifindex: u32,
  lo_ifindex: u32,
  nat_lo_min: u16,
  nat_lo_max: u16,
  nat_hi_min: u16,
  nat_hi_max: u16,
  tcp_syn_timeout: u32,
  tcp_established_timeout: u32,
  tcp_fin_timeout: u32,
  tcp_closed_timeout: u32,
  udp_timeout: u32,
  udp_stream_timeout: u32,
  icmp_timeout: u32,
  flags: u32,
});

export const networkInfo = struct({ subnet: ipv4, mask: ipv4, gateway: ipv4, bridge_mac: mac, flags: u16 });

/** endpoint_info.flags */
export const EpFlags = { IPV6: 1 } as const;
export const endpointInfo = struct({ addr: ipv4, ifindex: u32, net_ifindex: u32, mac, flags: u16, addr6: ipv6 });

export const DP6_F_CONFIGURED = 1;
export const dpConfig6 = struct({ uplink_addr: ipv6, flags: u32, pad: pad(4) });
export const networkInfo6 = struct({ subnet: ipv6, mask: ipv6, gateway: ipv6, bridge_mac: mac, flags: u16 });
export const net6MoreKey = struct({ prefixlen: u32, net_ifindex: u32, addr: ipv6 });
export const portKey6 = struct({ addr: ipv6, port: be16, proto: u8, pad: pad(1) });
export const portTarget6 = struct({ addr: ipv6, port: be16, flags: u16 });
export const ctKey6 = struct({ saddr: ipv6, daddr: ipv6, sport: be16, dport: be16, proto: u8, hook: u8, pad: pad(2) });
export const ctEntry6 = struct({
  saddr: ipv6,
  daddr: ipv6,
  sport: be16,
  dport: be16,
  deliver: u32,
  kind: u8,
  state: u8,
  dir: u8,
  fin_acked: u8,
  fin_ack: u32,
  expires: u64n,
});

export const portKey = struct({ addr: ipv4, port: be16, proto: u8, pad: pad(1) });
export const portTarget = struct({ addr: ipv4, port: be16, flags: u16 });

/** struct port_bitmap: 65,536 bits. */
export const portBitmap = bytes(8192);

/** port_target.flags. */
export const PortFlags = { STATELESS: 1 << 0 } as const;

export const ctKey4 = struct({ saddr: ipv4, daddr: ipv4, sport: be16, dport: be16, proto: u8, hook: u8, pad: pad(2) });
export const ctEntry4 = struct({
  saddr: ipv4,
  daddr: ipv4,
  sport: be16,
  dport: be16,
  deliver: u32,
  kind: u8,
  state: u8,
  dir: u8,
  fin_acked: u8,
  fin_ack: u32,
  expires: u64n,
});

export const epStats = struct({
  tx_packets: u64,
  tx_bytes: u64,
  rx_packets: u64,
  rx_bytes: u64,
  drops: array(u64, DROP_REASONS.length),
});

export const dropEvent = struct({
  ts: u64n,
  ifindex: u32,
  reason: u8,
  proto: u8,
  sport: be16,
  saddr: ipv4,
  daddr: ipv4,
  dport: be16,
  /** 4 or 6: which addresses are set; 0: the packet was not parsed as IP. */
  family: u8,
  pad: pad(1),
  saddr6: ipv6,
  daddr6: ipv6,
  pad2: pad(4),
});

// ---- bpf/shared/datapath.h: the opt-in flow log (bpf/lib/flowlog.h) ----

/** cfg4 flags bit set while someone listens to the flow log. */
export const DP_F_FLOW_EVENTS = 8;
export const FlowEventType = { NEW: 1 } as const;

export const flowEvent = struct({
  ts: u64n,
  ifindex: u32,
  deliver: u32,
  orig: ctKey4,
  nat_saddr: ipv4,
  nat_daddr: ipv4,
  nat_sport: be16,
  nat_dport: be16,
  type: u8,
  kind: u8,
  reply_hook: u8,
  pad: pad(1),
});

export const flowEvent6 = struct({
  ts: u64n,
  ifindex: u32,
  deliver: u32,
  orig: ctKey6,
  nat_saddr: ipv6,
  nat_daddr: ipv6,
  nat_sport: be16,
  nat_dport: be16,
  type: u8,
  kind: u8,
  reply_hook: u8,
  pad: pad(1),
});

export const flowCounts = struct({ packets: u64, bytes: u64 });

export const FlowMaps = { events: 'flow_events', stats: 'flow_stats4' } as const;
export const FlowMaps6 = { events: 'flow_events6', stats: 'flow_stats6' } as const;

export const DatapathMaps = {
  config: 'cfg4',
  networks: 'net4',
  endpoints: 'ep4',
  endpointsByIfindex: 'ep_ifx',
  local: 'local4',
  ports: 'ports4',
  /** A stateless published port's way back: target -> published port (bpf/lib/stateless.h). */
  reversePorts: 'rports4',
  /** The TCP port numbers published, a bitmap (struct port_bitmap). */
  tcpPorts: 'tcp_ports',
  /** The TCP port numbers published on a host address of their own, a bitmap. */
  tcpPortsAt: 'tcp_ports_at',
  conntrack: 'ct4',
  conntrackNew: 'ct4_new',
  conntrackFull: 'ct_full4',
  conntrackOwners: 'ct_owner4',
  /** TCP port -> when the daemon's scan found no tracked flow a sandbox sends from it (either family). */
  conntrackPortClean: 'ct_port_clean',
  /** TCP port -> when the programs last made or moved such a flow. */
  conntrackPortTracked: 'ct_port_tracked',
  stats: 'stats4',
  dropEvents: 'drop_events',
} as const;

/** The IPv6 tables (bpf/lib/maps.h), beside the IPv4 ones. */
export const DatapathMaps6 = {
  config: 'cfg6',
  networks: 'net6',
  moreSubnets: 'net6_more',
  endpoints: 'ep6',
  local: 'local6',
  ports: 'ports6',
  reversePorts: 'rports6',
  conntrack: 'ct6',
  conntrackNew: 'ct6_new',
  conntrackFull: 'ct_full6',
  conntrackOwners: 'ct_owner6',
} as const;

// ---- bpf/shared/dns.h ----

export const DNS_NAME_MAX = 128;
export const DNS_ADDRS_MAX = 8;
export const DnsStat = { ANSWERED: 0, PASSED: 1, ANSWERED6: 2 } as const;
export const DNS_STAT_MAX = 3;

export const dnsNameKey = struct({ scope: ipv6, name: bytes(DNS_NAME_MAX) });
export const dnsNameValue = struct({ count: u32, turn: u32, ttl: u32, addrs: array(ipv4, DNS_ADDRS_MAX), count6: u32, turn6: u32, addrs6: array(ipv6, DNS_ADDRS_MAX) });
export const DnsClientFlag = { V4: 1, V6: 2 } as const;
export const dnsClient = struct({ addr: ipv4, gateway: ipv4, addr6: ipv6, gateway6: ipv6, scope: ipv6, flags: u32 });

export const DnsMaps = { names: 'dns_names', clients: 'dns_clients', stats: 'dns_stats' } as const;
