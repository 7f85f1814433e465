/* The IPv6 connection table: ct4's design (bpf/lib/ct.h) on ct6/ct6_new — two entries per flow,
 * new flows in an LRU until assured, assured ones never evicted, refusal while full, and the
 * same per-sandbox quota (ct_owner6, ct_owner_quota flows per sandbox address). The
 * protocol state machine and timeouts are ct.h's (family-independent); only what touches
 * keys and tables is here. */
#ifndef BPFNET_LIB_CT6_H
#define BPFNET_LIB_CT6_H

#include "ct.h"
#include "pkt6.h"

static __always_inline struct ct_key6 ct6_reverse(const struct ct_key6 *k, __u8 hook)
{
	struct ct_key6 r = {
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

struct ct6_found {
	struct ct_entry6 *e;
	struct ct_key6 key;
	__u8 unconfirmed;   /* 1: in ct6_new */
};

static __always_inline int ct6_usable(const struct pkt6 *p, const struct ct_entry6 *e, __u64 now)
{
	if (e->expires < now)
		return 0;
	if (p->t.proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN && ct_closed(e->state) && !e->dir)
		return 0;
	return 1;
}

static __always_inline int ct_lookup6(const struct pkt6 *p, __u8 hook, __u64 now, struct ct6_found *f)
{
	f->key = p->t;
	f->key.hook = hook;
	int young = ct_handshake(p->t.proto, p->tcp_flags);
	if (young) {
		f->unconfirmed = 1;
		f->e = bpf_map_lookup_elem(&ct6_new, &f->key);
		if (f->e && ct6_usable(p, f->e, now))
			return 1;
	}
	f->unconfirmed = 0;
	f->e = bpf_map_lookup_elem(&ct6, &f->key);
	if (f->e && ct6_usable(p, f->e, now))
		return 1;
	if (young)
		return 0;
	f->unconfirmed = 1;
	f->e = bpf_map_lookup_elem(&ct6_new, &f->key);
	return f->e && ct6_usable(p, f->e, now);
}

static __always_inline struct ct_key6 ct6_twin_key(const struct ct_entry6 *e, __u8 proto, __u8 twin_hook)
{
	struct ct_key6 r = {
		.saddr = e->daddr, .daddr = e->saddr, .sport = e->dport, .dport = e->sport, .proto = proto, .hook = twin_hook, .pad = 0,
	};
	return r;
}

static __always_inline void ct6_refuse_new_for(__u64 until)
{
	__u32 zero = 0;
	__u64 *full = bpf_map_lookup_elem(&ct_full6, &zero);
	if (full)
		*full = until;
}

static __always_inline int ct6_refusing(__u64 now)
{
	__u32 zero = 0;
	__u64 *full = bpf_map_lookup_elem(&ct_full6, &zero);
	return full && now < *full;
}

/* The sandbox a flow is charged to (ct_owner_of4's rule): a pointer into the key or the entry,
 * so no IPv6 address is copied onto the stack. */
static __always_inline const struct addr6 *ct_owner_of6(const struct ct_key6 *k, const struct ct_entry6 *e)
{
	if (ct_kind_from_sandbox(e->kind))
		return e->dir ? &e->daddr : &k->saddr;
	return e->dir ? &k->saddr : &e->daddr;
}

static __always_inline int ct6_owner_at_quota(const struct addr6 *owner)
{
	if (!ct_owner_quota)
		return 0;
	__u32 *n = bpf_map_lookup_elem(&ct_owner6, owner);
	return n && *n >= ct_owner_quota;
}

static __always_inline void ct6_owner_charge(const struct addr6 *owner)
{
	if (!ct_owner_quota)
		return;
	__u32 *n = bpf_map_lookup_elem(&ct_owner6, owner);
	if (!n) {
		__u32 one = 1;
		if (bpf_map_update_elem(&ct_owner6, owner, &one, BPF_NOEXIST) != -17 /* EEXIST: another CPU was first */)
			return;
		n = bpf_map_lookup_elem(&ct_owner6, owner);
		if (!n)
			return;
	}
	__sync_fetch_and_add(n, 1);
}

/* ct4_remove_dead for ct6: the flow's charge goes with its original-direction entry. */
static __always_inline void ct6_remove_dead(const struct ct_key6 *k)
{
	struct ct_entry6 *e = bpf_map_lookup_elem(&ct6, k);
	if (!e)
		return;
	if (ct_owner_quota && e->dir == 0) {
		__u32 *n = bpf_map_lookup_elem(&ct_owner6, ct_owner_of6(k, e));
		if (n && *n > 0)
			__sync_fetch_and_add(n, (__u32)-1); /* BPF has atomic add only */
	}
	bpf_map_delete_elem(&ct6, k);
}

static __always_inline void ct_promote6(const struct ct6_found *f, const struct ct_key6 *twin, __u64 now)
{
	ct_port_mark(f->key.proto, f->key.hook, f->key.sport, now);
	ct_port_mark(twin->proto, twin->hook, twin->sport, now);
	struct ct_entry6 *t = bpf_map_lookup_elem(&ct6_new, twin);
	if (!t)
		return;
	/* As ct_promote4: a key reused in place already holds its slot and its charge. */
	int fresh = !bpf_map_lookup_elem(&ct6, &f->key);
	if (fresh && ct6_owner_at_quota(ct_owner_of6(&f->key, f->e)))
		return;
	/* Straight from one table to the other: no copy on the stack (IPv6 entries are large). */
	if (bpf_map_update_elem(&ct6, &f->key, f->e, BPF_ANY) < 0) {
		ct6_refuse_new_for(now + CT_REFUSE_NS);
		return;
	}
	if (bpf_map_update_elem(&ct6, twin, t, BPF_ANY) < 0) {
		bpf_map_delete_elem(&ct6, &f->key);
		ct6_refuse_new_for(now + CT_REFUSE_NS);
		return;
	}
	if (fresh)
		ct6_owner_charge(ct_owner_of6(&f->key, f->e)); /* before f->e leaves ct6_new */
	bpf_map_delete_elem(&ct6_new, &f->key);
	bpf_map_delete_elem(&ct6_new, twin);
}

/* ct_forget4 for ct6. */
static __always_inline void ct_forget6(const struct ct6_found *f, const struct ct_key6 *twin)
{
	if (f->unconfirmed) {
		bpf_map_delete_elem(&ct6_new, &f->key);
		bpf_map_delete_elem(&ct6_new, twin);
		return;
	}
	ct6_remove_dead(&f->key);
	ct6_remove_dead(twin);
}

/* ct_demote4 for ct6. */
static __always_inline void ct_demote6(const struct ct6_found *f, const struct ct_key6 *twin, __u64 now)
{
	ct_port_mark(f->key.proto, f->key.hook, f->key.sport, now);
	ct_port_mark(twin->proto, twin->hook, twin->sport, now);
	if (bpf_map_update_elem(&ct6_new, &f->key, f->e, BPF_ANY) < 0)
		return;
	struct ct_entry6 *t = bpf_map_lookup_elem(&ct6, twin);
	if (t)
		bpf_map_update_elem(&ct6_new, twin, t, BPF_ANY);
	ct6_remove_dead(&f->key);
	ct6_remove_dead(twin);
}

/* ct_touch4 for ct6 (inline: ct_follow6 is a frame of its own). */
static __always_inline void ct_touch6(struct __sk_buff *skb, const struct ct6_found *f, const struct pkt6 *p, const struct dp_config *cfg, __u64 now)
{
	struct ct_entry6 *e = f->e;
	__u8 was = e->state;
	__u8 dir = e->dir;
	__u8 twin_hook = ct_twin_hook(e->kind, dir);
	if (ct_reset_after_close(was, p->t.proto, p->tcp_flags)) {
		struct ct_key6 twin = ct6_twin_key(e, p->t.proto, twin_hook);
		ct_forget6(f, &twin);
		return;
	}
	__u32 fin_end;
	__u8 acked = ct_close_step(skb, p->l4_off, 1, p->t.proto, p->tcp_flags, was, e->fin_acked, e->fin_ack, dir, &fin_end);
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
	struct ct_key6 twin = ct6_twin_key(e, p->t.proto, twin_hook);
	struct ct_entry6 *t = f->unconfirmed ? bpf_map_lookup_elem(&ct6_new, &twin) : bpf_map_lookup_elem(&ct6, &twin);
	if (t) {
		if (ct_close_completed(ct_add_bits(&t->bits, add_state, add_acked), add_state, add_acked) && dir)
			completed = 1;
		t->expires = expires;
		if (fin_end && (add_state & (CT_S_FIN_ORIG | CT_S_FIN_REPLY)))
			t->fin_ack = fin_end;
	}
	if (completed) {
		ct_forget6(f, &twin);
		return;
	}
	if (f->unconfirmed) {
		if ((state & CT_S_ASSURED) && !ct_closed(state))
			ct_promote6(f, &twin, now);
	} else if (p->t.proto == IPPROTO_TCP && (state & CT_S_RST) && !ct_closed(was)) {
		ct_demote6(f, &twin, now);
	}
}

struct ct6_new_flow {
	__u8 kind;
	__u8 orig_hook;
	__u8 reply_hook;
	__u8 alloc_port;
	__u32 orig_deliver;
	__u32 reply_deliver;
	struct addr6 saddr, daddr;
	__be16 sport, dport;
};

static __always_inline int port_published6(const struct addr6 *addr, __be16 port, __u8 proto)
{
	struct port_key6 pk = { .addr = *addr, .port = port, .proto = proto, .pad = 0 };
	if (bpf_map_lookup_elem(&ports6, &pk))
		return 1;
	__builtin_memset(&pk.addr, 0, sizeof(pk.addr));
	return bpf_map_lookup_elem(&ports6, &pk) != NULL;
}

static __always_inline int ct6_key_live(const struct ct_entry6 *e, __u8 proto, __u64 now)
{
	return e && e->expires >= now && !(proto == IPPROTO_TCP && ct_closed(e->state));
}

static __always_inline int ct6_claim_reply(struct ct_key6 *rk, struct ct_entry6 *re, __u64 now)
{
	struct ct_entry6 *held = bpf_map_lookup_elem(&ct6, rk);
	if (held) {
		if (ct6_key_live(held, rk->proto, now))
			return -17;
		ct6_remove_dead(rk);
	}
	int err = bpf_map_update_elem(&ct6_new, rk, re, BPF_NOEXIST);
	if (err != -17)
		return err;
	if (ct6_key_live(bpf_map_lookup_elem(&ct6_new, rk), rk->proto, now))
		return -17;
	return bpf_map_update_elem(&ct6_new, rk, re, BPF_ANY);
}

/* The masquerade port search as a bpf_loop callback: the verifier checks its body once rather
 * than NAT_PORT_TRIES times at every call site (what doubled the programs' verification when
 * IPv6 came in beside IPv4's unrolled loop). */
struct ct6_port_search {
	const struct dp_config *cfg;
	struct ct_key6 *rk;
	struct ct_entry6 *reply;
	const struct addr6 *saddr;
	__u64 now;
	__u32 seed;
	__u16 preferred;
	__u8 proto;
	int err;
};

static long ct6_try_port(__u64 i, void *ctx)
{
	struct ct6_port_search *s = ctx;
	__u16 port = nat_port_candidate(s->cfg, s->preferred, s->seed, (__u32)i);
	if (port == 0)
		return 1;
	__be16 nport = bpf_htons(port);
	if (s->proto != IPPROTO_ICMPV6 && port_published6(s->saddr, nport, s->proto))
		return 0;
	s->rk->dport = nport;
	s->err = ct6_claim_reply(s->rk, s->reply, s->now);
	return s->err != -17;
}

static __always_inline int ct_create6(const struct pkt6 *p, const struct ct6_new_flow *n, const struct dp_config *cfg, __u64 now, struct ct_entry6 *out)
{
	if (p->t.proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) != TCP_FLAG_SYN)
		return CT_INVALID;
	if (ct6_refusing(now))
		return CT_FULL;
	__u8 state = ct_next_state(0, p->t.proto, p->tcp_flags, 0);
	__u64 expires = now + ct_timeout_ns(cfg, p->t.proto, state);
	struct ct_entry6 *orig = out;
	orig->saddr = n->saddr;
	orig->daddr = n->daddr;
	orig->sport = n->sport;
	orig->dport = n->dport;
	orig->deliver = n->orig_deliver;
	orig->kind = n->kind;
	orig->state = state;
	orig->dir = 0;
	orig->fin_acked = 0;
	orig->fin_ack = 0;
	orig->expires = expires;
	if (ct6_owner_at_quota(ct_kind_from_sandbox(n->kind) ? &p->t.saddr : &n->daddr))
		return CT_QUOTA;
	ct_port_mark(p->t.proto, n->orig_hook, p->t.sport, now);
	ct_port_mark(p->t.proto, n->reply_hook, n->dport, now);
	/* The reply entry is in the table once claimed: its stack then holds the original key
	 * (IPv6 keys and entries are large, and lxc's call chain is near the 512-byte limit). */
	union {
		struct ct_entry6 reply;
		struct ct_key6 ok;
	} u = {
		.reply = {
			.saddr = p->t.daddr, .daddr = p->t.saddr, .sport = p->t.dport, .dport = p->t.sport,
			.deliver = n->reply_deliver, .kind = n->kind, .state = state, .dir = 1, .fin_acked = 0, .fin_ack = 0, .expires = expires,
		},
	};
	struct ct_key6 rk = { .saddr = n->daddr, .daddr = n->saddr, .sport = n->dport, .dport = n->sport, .proto = p->t.proto, .hook = n->reply_hook, .pad = 0 };
	int err = -17;
	if (!n->alloc_port) {
		err = ct6_claim_reply(&rk, &u.reply, now);
	} else {
		struct ct6_port_search search = {
			.cfg = cfg, .rk = &rk, .reply = &u.reply, .saddr = &n->saddr, .now = now,
			.seed = bpf_get_prandom_u32(), .preferred = bpf_ntohs(n->sport), .proto = p->t.proto, .err = -17,
		};
		bpf_loop(NAT_PORT_TRIES, ct6_try_port, &search, 0);
		err = search.err;
		orig->sport = rk.dport;
	}
	if (err == -17)
		return CT_NO_PORT;
	if (err < 0)
		return CT_FULL;
	u.ok = p->t;
	u.ok.hook = n->orig_hook;
	ct6_remove_dead(&u.ok); /* a dead flow under this key in ct6 would shadow the new one */
	if (bpf_map_update_elem(&ct6_new, &u.ok, orig, BPF_ANY) < 0) {
		bpf_map_delete_elem(&ct6_new, &rk);
		return CT_FULL;
	}
	return CT_OK;
}

#endif
