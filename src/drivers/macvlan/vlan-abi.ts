/** The mirror of bpf/shared/vlan.h (the macvlan driver's maps): both change together. */
import { bytes, ipv4, mac, pad, struct, u16, u32 } from '../../datapath/libbpf/codec.js';

export const vlanPortKey = struct({ ifindex: u32, vid: u16, pad: pad(2) });
export const vlanPort = struct({ ifindex: u32, vid: u16, pad: pad(2) });
export const mvgMac = struct({ addr: mac, pad: pad(2) });
export const mvgOwner = struct({ flags: u32, ipv4, ipv6: bytes(16) });
export const hairpinValue = u32;

export const MVG_HAS_IPV4 = 1;
export const MVG_HAS_IPV6 = 2;

/** enum vlan_stat, by slot. */
export const VLAN_STATS = [
  'tagged',
  'untagged',
  'hairpin',
  'drop_unknown_vid',
  'drop_nested_tag',
  'drop_no_port',
  'drop_spoofed_mac',
  'drop_spoofed_ipv4',
  'drop_spoofed_ipv6',
  'drop_ethertype',
  'drop_malformed',
  'drop_spoofed_nd',
] as const;
export type VlanStat = (typeof VLAN_STATS)[number];
