/* The host's VXLAN device (collect_md, tc ingress): what the kernel decapsulated — every VXLAN
 * packet the uplink's program did not decapsulate itself (lib/overlay_rx.h: GSO aggregates,
 * fragments, unusual headers) — judged and delivered by lib/overlay_rx.h. */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/pkt.h"
#include "lib/nat.h"
#include "lib/overlay.h"
#include "lib/overlay_rx.h"

static __always_inline int from_tunnel_verdict(struct __sk_buff *skb, struct pkt4 *p)
{
	struct bpf_tunnel_key key = {};
	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		return DROP(DROP_MALFORMED);
	return tunnel_frame_verdict(skb, &key, p);
}

SEC("tc")
int from_overlay(struct __sk_buff *skb)
{
	struct pkt4 p = {};
	__u32 ifindex = skb->ifindex;
	return tc_exit(ifindex, from_tunnel_verdict(skb, &p), &p);
}

char LICENSE[] SEC("license") = "GPL";
