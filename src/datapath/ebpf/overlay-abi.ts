/**
 * The TypeScript mirror of bpf/lib/overlay.h (the overlay maps): change both together.
 */
import { mac, pad, struct, u32 } from '../libbpf/codec.js';

/** flags: unused, always 0 (kept so that a pinned map keeps its layout). */
export const overlayConfig = struct({ vxlan_ifindex: u32, flags: u32 });
export const overlayNet = struct({ vni: u32, pad: pad(4) });
/** vtep: the remote host's underlay IPv4 as a host-byte-order number (bpf_tunnel_key's remote_ipv4). */
export const overlayRemote = struct({ vni: u32, vtep: u32, mac, pad: pad(2) });

/** remotes6: the same value keyed by the endpoint's IPv6 address. */
export const OverlayMaps = { config: 'ovl_cfg', networks: 'ovl_net4', remotes: 'ovl_remote4', remotes6: 'ovl_remote6' } as const;

/** The one program of bpf/overlay.bpf.c, on the VXLAN device's TC ingress. */
export const OVERLAY_PROGRAM = 'from_overlay';

/** The UDP port of VXLAN (IANA), as Docker's overlay driver uses. */
export const VXLAN_PORT = 4789;
/** What VXLAN over IPv4 adds to a frame: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD = 50;
