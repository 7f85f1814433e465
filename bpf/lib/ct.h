/* Connection tracking for NAT: each flow is two entries (one per direction), created together;
 * the reply entry's key is the rewritten tuple turned around. A new flow lives in ct4_new (LRU)
 * until it is assured, then moves to ct4 (never evicted). A TCP flow closed by FIN both ways is
 * removed at the packet that acknowledges the second of the two FINs, whichever side sends it
 * (simultaneous closes included); one reset while open goes back to ct4_new for its closed
 * timeout. Timeouts follow the protocol and the
 * TCP state; expired entries count as absent and the daemon removes them. Each assured flow is
 * charged to one sandbox (ct_owner4), and no sandbox may hold more than its quota of ct4. */
#ifndef BPFNET_LIB_CT_H
#define BPFNET_LIB_CT_H

#include "maps.h"
#include "pkt.h"

#define NSEC_PER_SEC 1000000000ULL
/* How long new flows are refused after ct4 had no room for an assured one (the daemon's GC
 * lifts it early when it frees room). */
#ifndef CT_REFUSE_NS
#define CT_REFUSE_NS (5 * NSEC_PER_SEC)
#endif
#ifndef NAT_PORT_TRIES
#define NAT_PORT_TRIES 32
#endif

enum ct_result {
	CT_OK = 0,
	CT_FULL = -1,     /* the table has no room for the flow */
	CT_NO_PORT = -2,  /* every candidate source port is taken */
	CT_INVALID = -3,  /* TCP that is not a SYN: no flow starts with it */
	CT_QUOTA = -4,    /* the flow's sandbox already holds its quota of ct4 */
};

static __always_inline struct ct_key4 ct_reverse(const struct ct_key4 *k, __u8 hook)
{
	struct ct_key4 r = {
		.saddr = k->daddr,
		.daddr = k->saddr,
		.sport = k->dport,
		.dport = k->sport,
		.proto = k->proto,
		.hook = hook,
		.pad = 0,
	};
	return r;
}

/* A closed TCP flow: a new SYN may take its place (as TIME_WAIT reuse does). */
static __always_inline int ct_closed(__u8 state)
{
	return (state & CT_S_RST) || ((state & CT_S_FIN_ORIG) && (state & CT_S_FIN_REPLY));
}

static __always_inline __u64 ct_timeout_ns(const struct dp_config *cfg, __u8 proto, __u8 state)
{
	__u32 s;
	if (proto == IPPROTO_TCP) {
		if (ct_closed(state))
			s = cfg->tcp_closed_timeout;
		else if (state & (CT_S_FIN_ORIG | CT_S_FIN_REPLY))
			s = cfg->tcp_fin_timeout;
		else if (state & CT_S_REPLIED)
			s = cfg->tcp_established_timeout;
		else
			s = cfg->tcp_syn_timeout;
	} else if (proto == IPPROTO_UDP) {
		s = (state & CT_S_REPLIED) ? cfg->udp_stream_timeout : cfg->udp_timeout;
	} else {
		s = cfg->icmp_timeout;
	}
	return (__u64)s * NSEC_PER_SEC;
}

/* The state a flow reaches when a packet with these TCP flags passes in direction dir. */
static __always_inline __u8 ct_next_state(__u8 state, __u8 proto, __u8 tcp_flags, __u8 dir)
{
	if (dir)
		state |= CT_S_REPLIED;
	if (proto != IPPROTO_TCP)
		return state;
	if (tcp_flags & TCP_FLAG_RST)
		state |= CT_S_RST;
	if (tcp_flags & TCP_FLAG_SYN)
		state |= dir ? CT_S_SYNACK : CT_S_SYN;
	if (tcp_flags & TCP_FLAG_FIN)
		state |= dir ? CT_S_FIN_REPLY : CT_S_FIN_ORIG;
	return state;
}

/* What a TCP segment says about the close of its flow: the sequence number just past its data
 * and FIN (the acknowledgement that covers its FIN) and its own acknowledgement number. */
struct tcp_close_seq {
	__u32 end;
	__u32 ack;
};

/* Reads them from the segment at l4_off whose IP packet ends at l3_end (offsets in skb), from
 * the linear part of the packet, where parsing left its headers. */
static __always_inline int tcp_close_seq_of(struct __sk_buff *skb, __u32 l4_off, __u32 l3_end, __u8 tcp_flags, struct tcp_close_seq *s)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	if (l4_off > 512)
		return -1;
	struct tcphdr *th = data + l4_off;
	if ((void *)(th + 1) > data_end)
		return -1;
	__u32 hdr = th->doff * 4;
	if (l3_end < l4_off + hdr)
		return -1;
	s->end = bpf_ntohl(th->seq) + (l3_end - l4_off - hdr) + !!(tcp_flags & TCP_FLAG_FIN) + !!(tcp_flags & TCP_FLAG_SYN);
	s->ack = bpf_ntohl(th->ack_seq);
	return 0;
}

/* The end of the IPv4 packet in skb (its total length after the Ethernet header); 0 if unreadable. */
static __always_inline __u32 ipv4_end(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > (void *)(long)skb->data_end)
		return 0;
	return ETH_HLEN + bpf_ntohs(ip->tot_len);
}

/* The end of the IPv6 packet in skb (fixed header plus payload length); 0 if unreadable. */
static __always_inline __u32 ipv6_end(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	if ((void *)(ip6 + 1) > (void *)(long)skb->data_end)
		return 0;
	return ETH_HLEN + sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
}

/* Whether a TCP segment of a flow in state `state` needs its numbers read for the close: it
 * carries a FIN, or a FIN was seen and this may acknowledge it. */
static __always_inline int ct_reads_close_seq(__u8 proto, __u8 tcp_flags, __u8 state)
{
	return proto == IPPROTO_TCP && ((tcp_flags & TCP_FLAG_FIN) || (state & (CT_S_FIN_ORIG | CT_S_FIN_REPLY)));
}

/* An entry's kind, state, dir and fin_acked as the one word they share (its `bits`). */
union ct_bits {
	struct {
		__u8 kind, state, dir, fin_acked;
	};
	__u32 bits;
};

/* Adds state and fin_acked bits to an entry (its `bits` word) with one atomic OR, and returns the
 * word as it was: a flow's two directions run on different CPUs at once (FINs that cross), and a
 * plain write of the byte by one would undo the other's. Bits are only ever added while an entry
 * lives. */
static __always_inline __u32 ct_add_bits(__u32 *bits, __u8 state, __u8 acked)
{
	union ct_bits add = { .bits = 0 };
	add.state = state;
	add.fin_acked = acked;
	return add.bits ? __sync_fetch_and_or(bits, add.bits) : *bits;
}

/* Whether adding these bits to the original-direction entry, whose word was `old`, completed the
 * close: both FINs seen and both acknowledged, and not both before. Every packet that adds bits
 * adds them to both entries, so exactly one atomic OR on that entry completes it, whichever CPUs
 * the last two ACKs ran on: the one that ends the flow. */
static __always_inline int ct_close_completed(__u32 old, __u8 add_state, __u8 add_acked)
{
	union ct_bits was = { .bits = old };
	__u8 both = CT_FIN_ACKED_ORIG | CT_FIN_ACKED_REPLY;
	return add_acked && was.fin_acked != both && (was.fin_acked | add_acked) == both && ct_closed(was.state | add_state) &&
	       !((was.state | add_state) & CT_S_RST);
}

/* The FINs acknowledged once a segment in direction dir, acknowledging `ack`, has passed: it
 * covers the other direction's FIN when it reaches fin_ack (recorded, in this direction's entry,
 * as that FIN passed). */
static __always_inline __u8 ct_fins_acked(__u8 state, __u8 acked, __u32 fin_ack, __u8 dir, __u8 tcp_flags, __u32 ack)
{
	__u8 other_fin = dir ? CT_S_FIN_ORIG : CT_S_FIN_REPLY;
	if ((tcp_flags & TCP_FLAG_ACK) && (state & other_fin) && (__s32)(ack - fin_ack) >= 0)
		acked |= dir ? CT_FIN_ACKED_ORIG : CT_FIN_ACKED_REPLY;
	return acked;
}

/* What a segment in direction dir does to its flow's close: the FINs acknowledged once it has
 * passed (from the entry's state `was`, its fin_acked and fin_ack), and in *fin_end what the
 * other side's ACK must reach to cover this segment's own FIN (0: it carries none). */
static __always_inline __u8 ct_close_step(struct __sk_buff *skb, __u32 l4_off, int ipv6, __u8 proto, __u8 tcp_flags, __u8 was, __u8 acked, __u32 fin_ack,
					  __u8 dir, __u32 *fin_end)
{
	struct tcp_close_seq s;
	*fin_end = 0;
	if (!ct_reads_close_seq(proto, tcp_flags, was) || tcp_close_seq_of(skb, l4_off, ipv6 ? ipv6_end(skb) : ipv4_end(skb), tcp_flags, &s) < 0)
		return acked;
	if (tcp_flags & TCP_FLAG_FIN)
		*fin_end = s.end;
	return ct_fins_acked(was, acked, fin_ack, dir, tcp_flags, s.ack);
}

/* A reset after both FINs: the last packet of a flow FIN closed both ways, as is the ACK that
 * completes its close (ct_close_completed). Nothing legitimate follows either but the
 * retransmission of a FIN or ACK lost beyond the datapath, which then finds no flow and is
 * dropped (its sender gives up after its retries). A flow that is not closed never ends there,
 * so a forged packet from outside cannot end one: one of the FINs comes from the sandbox. */
static __always_inline int ct_reset_after_close(__u8 was, __u8 proto, __u8 tcp_flags)
{
	return proto == IPPROTO_TCP && (tcp_flags & TCP_FLAG_RST) && !(was & CT_S_RST) && ct_closed(was);
}

/* The state a flow reaches after a packet in direction dir, with CT_S_ASSURED once the original
 * side speaks again after a reply (for TCP: the ACK that completes the handshake). A spoofed
 * source never sees the reply, so it can never assure a flow. */
static __always_inline __u8 ct_advance(__u8 state, __u8 proto, __u8 tcp_flags, __u8 dir)
{
	__u8 next = ct_next_state(state, proto, tcp_flags, dir);
	if (!dir && (state & CT_S_REPLIED) && (proto != IPPROTO_TCP || (state & CT_S_SYNACK)))
		next |= CT_S_ASSURED;
	return next;
}

/* A found entry: where it lives and a pointer into that table. */
struct ct_found {
	struct ct_entry4 *e;
	struct ct_key4 key;
	__u8 unconfirmed;   /* 1: in ct4_new */
};

static __always_inline int ct_usable(const struct pkt4 *p, const struct ct_entry4 *e, __u64 now)
{
	if (e->expires < now)
		return 0;
	/* A closed flow that a new SYN is reopening: the caller creates a fresh one. */
	if (p->t.proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN && ct_closed(e->state) && !e->dir)
		return 0;
	return 1;
}

/* A TCP segment with SYN set (the opening, or its answer): its flow, if it has one yet, is not
 * assured, so it is looked for in ct4_new first. The two tables never hold one key for long,
 * so the order only spares a lookup: each probe of ct4 touches a cold bucket of a large table. */
static __always_inline int ct_handshake(__u8 proto, __u8 tcp_flags)
{
	return proto == IPPROTO_TCP && (tcp_flags & TCP_FLAG_SYN);
}

/* Looks up the entry for this packet at this hook, assured flows first (handshake segments:
 * unassured first); 0 if absent, expired, or a closed flow being reopened. */
static __always_inline int ct_lookup4(const struct pkt4 *p, __u8 hook, __u64 now, struct ct_found *f)
{
	f->key = p->t;
	f->key.hook = hook;
	int young = ct_handshake(p->t.proto, p->tcp_flags);
	if (young) {
		f->unconfirmed = 1;
		f->e = bpf_map_lookup_elem(&ct4_new, &f->key);
		if (f->e && ct_usable(p, f->e, now))
			return 1;
	}
	f->unconfirmed = 0;
	f->e = bpf_map_lookup_elem(&ct4, &f->key);
	if (f->e && ct_usable(p, f->e, now))
		return 1;
	if (young)
		return 0;
	f->unconfirmed = 1;
	f->e = bpf_map_lookup_elem(&ct4_new, &f->key);
	return f->e && ct_usable(p, f->e, now);
}

/* Where the twin of an entry lives. */
static __always_inline __u8 ct_twin_hook(__u8 kind, __u8 dir)
{
	switch (kind) {
	case CT_SNAT:
	case CT_ROUTED:
		return dir ? CT_HOOK_CONTAINER : CT_HOOK_UPLINK;
	case CT_DNAT:
		return dir ? CT_HOOK_UPLINK : CT_HOOK_CONTAINER;
	case CT_LOCAL:
		return dir ? CT_HOOK_LOCAL : CT_HOOK_CONTAINER;
	default:
		return CT_HOOK_CONTAINER;
	}
}

/* The key of an entry's twin: a reply to the rewritten packet. */
static __always_inline struct ct_key4 ct_twin_key(const struct ct_entry4 *e, __u8 proto, __u8 twin_hook)
{
	struct ct_key4 rewritten = {
		.saddr = e->saddr, .daddr = e->daddr, .sport = e->sport, .dport = e->dport, .proto = proto,
	};
	return ct_reverse(&rewritten, twin_hook);
}

static __always_inline void ct_refuse_new_for(__u64 until)
{
	__u32 zero = 0;
	__u64 *full = bpf_map_lookup_elem(&ct_full4, &zero);
	if (full)
		*full = until;
}

/* Whether new flows are being refused because ct4 recently had no room. */
static __always_inline int ct_refusing(__u64 now)
{
	__u32 zero = 0;
	__u64 *full = bpf_map_lookup_elem(&ct_full4, &zero);
	return full && now < *full;
}

/* ---- the per-sandbox quota on ct4 ----
 * Assured flows are never evicted, so without a bound one sandbox completing many real flows
 * (or many clients completing flows to its published ports) could fill ct4 and every new flow
 * of every other sandbox would be refused until GC. Each flow is charged to its sandbox; at the
 * quota that sandbox's new flows are refused (DROP_CT_QUOTA) and only its own. The programs add
 * one at promotion; the daemon recounts from ct4 at every GC (expired flows leave, and flows
 * whose keys the programs took over stop counting). */

/* At most this many assured flows per sandbox; 0: no quota. Set by the daemon before load. */
const volatile __u32 ct_owner_quota = 0;

/* Flows a sandbox starts (its address is the original source); the other kinds come to a sandbox. */
static __always_inline int ct_kind_from_sandbox(__u8 kind)
{
	return kind == CT_SNAT || kind == CT_ROUTED || kind == CT_HAIRPIN;
}

/* The sandbox a flow is charged to, from either of its entries and that entry's key. */
static __always_inline __be32 ct_owner_of4(const struct ct_key4 *k, const struct ct_entry4 *e)
{
	if (ct_kind_from_sandbox(e->kind))
		return e->dir ? e->daddr : k->saddr;
	return e->dir ? k->saddr : e->daddr;
}

static __always_inline int ct_owner_at_quota(__be32 owner)
{
	if (!ct_owner_quota)
		return 0;
	__u32 *n = bpf_map_lookup_elem(&ct_owner4, &owner);
	return n && *n >= ct_owner_quota;
}

static __always_inline void ct_owner_charge(__be32 owner)
{
	if (!ct_owner_quota)
		return;
	__u32 *n = bpf_map_lookup_elem(&ct_owner4, &owner);
	if (!n) {
		__u32 one = 1;
		if (bpf_map_update_elem(&ct_owner4, &owner, &one, BPF_NOEXIST) != -17 /* EEXIST: another CPU was first */)
			return;
		n = bpf_map_lookup_elem(&ct_owner4, &owner);
		if (!n)
			return;
	}
	__sync_fetch_and_add(n, 1);
}

/* Removes a dead flow's entry from ct4 in-program (its key taken over by a new flow). The flow's
 * charge goes when its original-direction entry goes (each flow has exactly one), so counts
 * follow what ct4 holds between the daemon's recounts instead of only growing. */
static __always_inline void ct4_remove_dead(const struct ct_key4 *k)
{
	struct ct_entry4 *e = bpf_map_lookup_elem(&ct4, k);
	if (!e)
		return;
	if (ct_owner_quota && e->dir == 0) {
		__be32 owner = ct_owner_of4(k, e);
		__u32 *n = bpf_map_lookup_elem(&ct_owner4, &owner);
		if (n && *n > 0)
			__sync_fetch_and_add(n, (__u32)-1); /* BPF has atomic add only */
	}
	bpf_map_delete_elem(&ct4, k);
}

/* ---- Which sandbox ports tracked flows send from (the stateless replies' short way) ----
 * A reply from a stateless published port's target is translated by the target alone
 * (stateless.h), but the connection table must be asked first: hairpins, flows tracked while the
 * flow log was on or before the port became stateless, and the sandbox's own connections from
 * that port must win. Two arrays by TCP port number let a reply skip those two lookups when no
 * such flow can exist: ct_port_tracked, the last time a flow with an entry at a sandbox's hook
 * sending from the port was created or moved between tables (here, at both, so that a scan
 * that races a move still counts), and ct_port_clean, a time from which the daemon's scan of
 * every table found no such entry (the daemon writes it, from a second before its scan began:
 * a flow older than that was in the tables when the scan read them). A flow from the port that
 * is still alive was either seen by that scan, or marked after that time. Two arrays, not one
 * of pairs: each has one writer, and the daemon's write of an element replaces it whole. */
static __always_inline void ct_port_mark(__u8 proto, __u8 hook, __be16 sport, __u64 now)
{
	if (proto != IPPROTO_TCP || hook != CT_HOOK_CONTAINER)
		return;
	__u32 port = bpf_ntohs(sport);
	__u64 *at = bpf_map_lookup_elem(&ct_port_tracked, &port);
	if (at && *at < now)
		*at = now;
}

/* Whether no tracked flow can hold an entry for a TCP segment a sandbox sends from sport. */
static __always_inline int ct_port_untracked(__be16 sport)
{
	__u32 port = bpf_ntohs(sport);
	__u64 *clean = bpf_map_lookup_elem(&ct_port_clean, &port);
	__u64 *tracked = bpf_map_lookup_elem(&ct_port_tracked, &port);
	return clean && tracked && *clean > *tracked;
}

/* Moves an assured flow (both entries) from ct4_new to ct4. When ct4 has no room the flow
 * stays in ct4_new (it goes on working) and new flows are refused for CT_REFUSE_NS; when its
 * sandbox is at its quota it stays there too, and nothing else is refused. */
static __always_inline void ct_promote4(const struct ct_found *f, const struct ct_key4 *twin, __u64 now)
{
	ct_port_mark(f->key.proto, f->key.hook, f->key.sport, now);
	ct_port_mark(twin->proto, twin->hook, twin->sport, now);
	struct ct_entry4 *t = bpf_map_lookup_elem(&ct4_new, twin);
	if (!t)
		return; /* evicted half: the flow ends when its other half does */
	__be32 owner = ct_owner_of4(&f->key, f->e);
	/* A key still in ct4 (an expired flow reused in place) already holds its slot and its charge:
	 * replacing it adds nothing, so only a new key is checked against the quota and charged. */
	int fresh = !bpf_map_lookup_elem(&ct4, &f->key);
	if (fresh && ct_owner_at_quota(owner))
		return;
	/* Straight from one table to the other: no copy on the stack, which ct_touch4 keeps small. */
	if (bpf_map_update_elem(&ct4, &f->key, f->e, BPF_ANY) < 0) {
		ct_refuse_new_for(now + CT_REFUSE_NS);
		return;
	}
	if (bpf_map_update_elem(&ct4, twin, t, BPF_ANY) < 0) {
		bpf_map_delete_elem(&ct4, &f->key);
		ct_refuse_new_for(now + CT_REFUSE_NS);
		return;
	}
	bpf_map_delete_elem(&ct4_new, &f->key);
	bpf_map_delete_elem(&ct4_new, twin);
	if (fresh)
		ct_owner_charge(owner);
}

/* A flow reset while open leaves ct4 for the LRU with both its entries, and its charge goes: it
 * lingers only for late packets (the tcp-closed timeout: a reset may be forged, and the flow
 * goes on if its ends ignored it), and a sandbox that resets connections fast must fill neither
 * the never-evicted table nor its own quota with flows that are over. Each entry is copied
 * straight from one table to the other. */
static __always_inline void ct_demote4(const struct ct_found *f, const struct ct_key4 *twin, __u64 now)
{
	ct_port_mark(f->key.proto, f->key.hook, f->key.sport, now);
	ct_port_mark(twin->proto, twin->hook, twin->sport, now);
	if (bpf_map_update_elem(&ct4_new, &f->key, f->e, BPF_ANY) < 0)
		return; /* stays in ct4 until it expires: the GC takes it */
	struct ct_entry4 *t = bpf_map_lookup_elem(&ct4, twin);
	if (t)
		bpf_map_update_elem(&ct4_new, twin, t, BPF_ANY);
	/* The one of the two that is the original direction gives the charge back. */
	ct4_remove_dead(&f->key);
	ct4_remove_dead(twin);
}

/* Removes both entries of a flow that is over from the table they are in; an assured flow gives
 * its charge back. Short connections so leave neither table holding them: the LRU keeps only
 * flows being set up, small and cache-warm, instead of filling with closed ones. */
static __always_inline void ct_forget4(const struct ct_found *f, const struct ct_key4 *twin)
{
	if (f->unconfirmed) {
		bpf_map_delete_elem(&ct4_new, &f->key);
		bpf_map_delete_elem(&ct4_new, twin);
		return;
	}
	ct4_remove_dead(&f->key);
	ct4_remove_dead(twin);
}

/* Moves a flow's state and expiry forward after a packet matched it; updates the twin too when
 * the state changed or the expiry is more than a second stale, so per-packet writes stay rare.
 * A flow that becomes assured moves to ct4; a flow's last packet removes it. A frame of its own:
 * the hooks' stacks must leave room for the overlay's calls. */
BPFNET_NOINLINE void ct_touch4(struct __sk_buff *skb, const struct ct_found *f, const struct pkt4 *p, const struct dp_config *cfg, __u64 now)
{
	struct ct_entry4 *e = f->e;
	__u8 was = e->state;
	__u8 dir = e->dir;
	__u8 twin_hook = ct_twin_hook(e->kind, dir);
	if (ct_reset_after_close(was, p->t.proto, p->tcp_flags)) {
		struct ct_key4 twin = ct_twin_key(e, p->t.proto, twin_hook);
		ct_forget4(f, &twin);
		return;
	}
	__u32 fin_end;
	__u8 acked = ct_close_step(skb, p->l4_off, 0, p->t.proto, p->tcp_flags, was, e->fin_acked, e->fin_ack, dir, &fin_end);
	__u8 state = ct_advance(was, p->t.proto, p->tcp_flags, dir);
	__u64 expires = now + ct_timeout_ns(cfg, p->t.proto, state);
	__u8 add_state = state & ~was;
	__u8 add_acked = acked & ~e->fin_acked;
	if (!add_state && !add_acked && expires < e->expires + NSEC_PER_SEC)
		return;
	/* The ACK that completes the close ends the flow, decided on the original-direction entry
	 * (without a twin, the flow ends when its remaining half expires). */
	int completed = ct_close_completed(ct_add_bits(&e->bits, add_state, add_acked), add_state, add_acked) && !dir;
	e->expires = expires;
	struct ct_key4 twin = ct_twin_key(e, p->t.proto, twin_hook);
	struct ct_entry4 *t = f->unconfirmed ? bpf_map_lookup_elem(&ct4_new, &twin) : bpf_map_lookup_elem(&ct4, &twin);
	if (t) {
		if (ct_close_completed(ct_add_bits(&t->bits, add_state, add_acked), add_state, add_acked) && dir)
			completed = 1;
		t->expires = expires;
		if (fin_end && (add_state & (CT_S_FIN_ORIG | CT_S_FIN_REPLY)))
			t->fin_ack = fin_end;
	}
	if (completed) {
		ct_forget4(f, &twin);
		return;
	}
	if (f->unconfirmed) {
		if ((state & CT_S_ASSURED) && !ct_closed(state))
			ct_promote4(f, &twin, now);
	} else if (p->t.proto == IPPROTO_TCP && (state & CT_S_RST) && !ct_closed(was)) {
		ct_demote4(f, &twin, now);
	}
}

struct ct_new {
	__u8 kind;          /* enum ct_kind */
	__u8 orig_hook;     /* where the first packet was seen */
	__u8 reply_hook;    /* where replies will be seen */
	__u8 alloc_port;    /* choose the new source port (masquerade) */
	__u32 orig_deliver; /* where packets of the original direction go */
	__u32 reply_deliver;
	/* The rewritten original tuple; with alloc_port, sport is the preferred port. */
	__be32 saddr, daddr;
	__be16 sport, dport;
};

static __always_inline int nat_port_allowed(const struct dp_config *cfg, __u16 port)
{
	return (port >= cfg->nat_lo_min && port <= cfg->nat_lo_max) || (port >= cfg->nat_hi_min && port <= cfg->nat_hi_max);
}

/* The i-th candidate source port: the preferred one first, then a pseudo-random walk over
 * the allowed ranges. */
static __always_inline __u16 nat_port_candidate(const struct dp_config *cfg, __u16 preferred, __u32 seed, __u32 i)
{
	if (i == 0 && nat_port_allowed(cfg, preferred))
		return preferred;
	__u32 lo = cfg->nat_lo_max >= cfg->nat_lo_min ? cfg->nat_lo_max - cfg->nat_lo_min + 1 : 0;
	__u32 hi = cfg->nat_hi_max >= cfg->nat_hi_min ? cfg->nat_hi_max - cfg->nat_hi_min + 1 : 0;
	__u32 span = lo + hi;
	if (span == 0)
		return 0;
	__u32 n = (seed + i * 2654435761U) % span;
	return n < lo ? cfg->nat_lo_min + n : cfg->nat_hi_min + (n - lo);
}

/* A published port must never be chosen as a masquerade source: its replies would be DNATed. */
static __always_inline int port_published(__be32 addr, __be16 port, __u8 proto)
{
	struct port_key pk = { .addr = addr, .port = port, .proto = proto, .pad = 0 };
	if (bpf_map_lookup_elem(&ports4, &pk))
		return 1;
	pk.addr = 0;
	return bpf_map_lookup_elem(&ports4, &pk) != NULL;
}

/* A key held by a flow that is still alive: an expired or closed one may be taken over. */
static __always_inline int ct_key_live(const struct ct_entry4 *e, __u8 proto, __u64 now)
{
	return e && e->expires >= now && !(proto == IPPROTO_TCP && ct_closed(e->state));
}

/* Claims the reply key for a new flow (unique across both tables). Returns 0, -EEXIST or
 * another negative error. */
static __always_inline int ct_claim_reply(struct ct_key4 *rk, struct ct_entry4 *re, __u64 now)
{
	struct ct_entry4 *held = bpf_map_lookup_elem(&ct4, rk);
	if (held) {
		if (ct_key_live(held, rk->proto, now))
			return -17; /* EEXIST */
		ct4_remove_dead(rk);
	}
	int err = bpf_map_update_elem(&ct4_new, rk, re, BPF_NOEXIST);
	if (err != -17)
		return err;
	if (ct_key_live(bpf_map_lookup_elem(&ct4_new, rk), rk->proto, now))
		return -17;
	return bpf_map_update_elem(&ct4_new, rk, re, BPF_ANY);
}

/* Creates both entries of a new flow for packet p (in ct4_new, until it is assured) and fills
 * *out with the original-direction entry. With n->alloc_port the rewritten source port is
 * chosen to make the reply key unique. TCP flows start with a SYN only. */
static __always_inline int ct_create4(const struct pkt4 *p, const struct ct_new *n, const struct dp_config *cfg, __u64 now, struct ct_entry4 *out)
{
	if (p->t.proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) != TCP_FLAG_SYN)
		return CT_INVALID;
	if (ct_refusing(now))
		return CT_FULL;
	__u8 state = ct_next_state(0, p->t.proto, p->tcp_flags, 0);
	__u64 expires = now + ct_timeout_ns(cfg, p->t.proto, state);
	struct ct_entry4 orig = {
		.saddr = n->saddr, .daddr = n->daddr, .sport = n->sport, .dport = n->dport,
		.deliver = n->orig_deliver, .kind = n->kind, .state = state, .dir = 0, .fin_acked = 0, .fin_ack = 0, .expires = expires,
	};
	struct ct_key4 ok = p->t;
	ok.hook = n->orig_hook;
	if (ct_owner_at_quota(ct_owner_of4(&ok, &orig)))
		return CT_QUOTA;
	/* The flow's sandbox-side port, for the stateless replies' short way. */
	ct_port_mark(p->t.proto, n->orig_hook, p->t.sport, now);
	ct_port_mark(p->t.proto, n->reply_hook, n->dport, now);
	struct ct_entry4 reply = {
		.saddr = p->t.daddr, .daddr = p->t.saddr, .sport = p->t.dport, .dport = p->t.sport,
		.deliver = n->reply_deliver, .kind = n->kind, .state = state, .dir = 1, .fin_acked = 0, .fin_ack = 0, .expires = expires,
	};
	struct ct_key4 rk = { .saddr = n->daddr, .daddr = n->saddr, .sport = n->dport, .dport = n->sport, .proto = p->t.proto, .hook = n->reply_hook, .pad = 0 };
	int err = -17;
	if (!n->alloc_port) {
		err = ct_claim_reply(&rk, &reply, now);
	} else {
		__u32 seed = bpf_get_prandom_u32();
		__u16 preferred = bpf_ntohs(n->sport);
		for (__u32 i = 0; i < NAT_PORT_TRIES; i++) {
			__u16 port = nat_port_candidate(cfg, preferred, seed, i);
			if (port == 0)
				break;
			__be16 nport = bpf_htons(port);
			/* ICMP echo ids are not ports anyone listens on. */
			if (p->t.proto != IPPROTO_ICMP && port_published(n->saddr, nport, p->t.proto))
				continue;
			rk.dport = nport;
			err = ct_claim_reply(&rk, &reply, now);
			if (err != -17)
				break;
		}
		orig.sport = rk.dport;
	}
	if (err == -17)
		return CT_NO_PORT;
	if (err < 0)
		return CT_FULL;
	/* A dead flow under this key in ct4 would shadow the new one. */
	ct4_remove_dead(&ok);
	if (bpf_map_update_elem(&ct4_new, &ok, &orig, BPF_ANY) < 0) {
		bpf_map_delete_elem(&ct4_new, &rk);
		return CT_FULL;
	}
	*out = orig;
	return CT_OK;
}

#endif
