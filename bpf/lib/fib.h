/* Forwarding a packet out of the host without the stack: a FIB lookup, then a redirect to
 * the egress device (or through the neighbour subsystem when the next hop is unresolved). */
#ifndef BPFNET_LIB_FIB_H
#define BPFNET_LIB_FIB_H

#include "maps.h"
#include "csum.h"

#define AF_INET 2

enum fib_verdict {
	FIB_REDIRECTED = 0,
	FIB_TO_BRIDGE = 1,  /* the route leads into a sandbox network: isolation decides */
	FIB_FAILED = 2,
};

/* ---- the next-hop cache ----
 * A FIB lookup (route, then neighbour) was a fifth of from_container's time under short
 * connections: every routed reply paid it, for the same few next hops. Its answer is kept per
 * CPU in a small direct-mapped table for FIB_HOP_TTL_NS, keyed by everything the lookup was
 * given (source, destination, incoming device), and only a plain answer (a resolved neighbour,
 * not into a sandbox network) is kept. A route or neighbour change so takes effect within that
 * time; an unresolved neighbour is never cached, so the kernel resolves it as before. Per CPU and
 * not pinned: nothing to share, nothing to carry over a restart. Routed packets and the
 * overlay's own encapsulation (the route to a remote VTEP) use it alike. */
#ifndef FIB_HOP_SLOTS
#define FIB_HOP_SLOTS 256
#endif
#ifndef FIB_HOP_TTL_NS
#define FIB_HOP_TTL_NS (50ULL * 1000 * 1000)
#endif

struct fib_hop4 {
	__be32 saddr;           /* the lookup's inputs: the key */
	__be32 daddr;
	__u32 iif;
	__u32 out;              /* its answer */
	__u64 until;            /* dp_now() after which the slot is stale */
	__u8 smac[ETH_ALEN];
	__u8 dmac[ETH_ALEN];
	__be32 src;             /* the source the route prefers (BPF_FIB_LOOKUP_SRC lookups only) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FIB_HOP_SLOTS);
	__type(key, __u32);
	__type(value, struct fib_hop4);
} fib_hops4 SEC(".maps");

static __always_inline __u32 fib_hop_slot(__be32 saddr, __be32 daddr, __u32 iif)
{
	__u32 h = (daddr * 2654435761U) ^ (saddr * 2246822519U) ^ (iif * 3266489917U);
	return (h >> 24) & (FIB_HOP_SLOTS - 1);
}

/* This CPU's slot for the lookup (saddr, daddr, iif); *fresh: it holds that lookup's answer. */
static __always_inline struct fib_hop4 *fib_hop4_get(__be32 saddr, __be32 daddr, __u32 iif, __u64 now, int *fresh)
{
	__u32 slot = fib_hop_slot(saddr, daddr, iif);
	struct fib_hop4 *hop = bpf_map_lookup_elem(&fib_hops4, &slot);
	*fresh = hop && hop->until > now && hop->daddr == daddr && hop->saddr == saddr && hop->iif == iif;
	return hop;
}

/* Keeps a plain answer of the lookup (saddr, daddr, iif) in its slot. */
static __always_inline void fib_hop4_keep(struct fib_hop4 *hop, __be32 saddr, __be32 daddr, __u32 iif, __u64 now, const struct bpf_fib_lookup *fib)
{
	if (!hop)
		return;
	hop->saddr = saddr;
	hop->daddr = daddr;
	hop->iif = iif;
	hop->out = fib->ifindex;
	hop->until = now + FIB_HOP_TTL_NS;
	hop->src = fib->ipv4_src;
	__builtin_memcpy(hop->smac, fib->smac, ETH_ALEN);
	__builtin_memcpy(hop->dmac, fib->dmac, ETH_ALEN);
}

/* Sends the packet to next hop `out` with its MACs, as the uncached path below does. */
static __always_inline int fib_send(struct __sk_buff *skb, __u32 out, const __u8 *smac, const __u8 *dmac, int *verdict_out)
{
	if (set_macs(skb, smac, dmac) < 0)
		return -1;
	struct dp_config *cfg = dp_config();
	if (cfg && (cfg->flags & DP_F_UPLINK_VETH) && out == cfg->uplink_ifindex)
		*verdict_out = bpf_redirect_peer(out, 0);
	else
		*verdict_out = bpf_redirect(out, 0);
	return 0;
}

/* Routes an IPv4 packet (already rewritten) out of the host; *verdict_out is the TC verdict.
 * Called from tc ingress only. When the route leaves through an uplink that is itself a veth
 * (nested hosts, the lab), the packet enters the uplink's peer directly (redirect_peer), sparing
 * it a transmit and a second receive queue; through a NIC it is transmitted (bpf_redirect). */
static __always_inline enum fib_verdict fib_redirect4(struct __sk_buff *skb, const struct pkt4 *p, __be32 saddr, __be32 daddr, int *verdict_out)
{
	__u64 now = dp_now();
	int fresh;
	struct fib_hop4 *hop = fib_hop4_get(saddr, daddr, skb->ifindex, now, &fresh);
	if (fresh) {
		if (ttl_decrement(skb, p) < 0 || fib_send(skb, hop->out, hop->smac, hop->dmac, verdict_out) < 0)
			return FIB_FAILED;
		return FIB_REDIRECTED;
	}
	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET;
	fib.l4_protocol = p->t.proto;
	fib.ipv4_src = saddr;
	fib.ipv4_dst = daddr;
	/* 0 skips the MTU check, which would refuse GSO packets larger than the MTU. */
	fib.tot_len = 0;
	/* Routes are only taken from a host veth's ingress: the sandbox side of the hop. */
	fib.ifindex = skb->ifindex;
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return FIB_FAILED;
	__u32 out = fib.ifindex;
	if (bpf_map_lookup_elem(&net4, &out))
		return FIB_TO_BRIDGE;
	if (ttl_decrement(skb, p) < 0)
		return FIB_FAILED;
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		*verdict_out = bpf_redirect_neigh(out, NULL, 0, 0);
		return FIB_REDIRECTED;
	}
	fib_hop4_keep(hop, saddr, daddr, skb->ifindex, now, &fib);
	if (fib_send(skb, out, fib.smac, fib.dmac, verdict_out) < 0)
		return FIB_FAILED;
	return FIB_REDIRECTED;
}

#endif
