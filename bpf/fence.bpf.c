// SPDX-License-Identifier: GPL-2.0
/*
 * depfence: cgroup egress fence by address.
 *
 * connect4/connect6 judge TCP and connected UDP, sendmsg4/sendmsg6 judge
 * unconnected UDP. A verdict is one LPM lookup plus a bounded scan of the
 * candidate rules stored with the matching prefix, whatever the rule count.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "fence.h"
#include "attrib.h"

#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ROUTING_ 43
#define IPPROTO_DSTOPTS_ 60
#define IPOPT_END_ 0
#define IPOPT_NOOP_ 1
#define IPOPT_LSRR_ 131
#define IPOPT_SSRR_ 137
#define SOCK_STREAM_ 1
#define SOCK_DGRAM_ 2
#define AF_INET_ 2
#define AF_INET6_ 10

/* sock_addr verdicts */
#define SOCK_REFUSE 0
#define SOCK_PASS 1

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, DF_DEFAULT_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct df_key4);
	__type(value, struct df_prefix_val);
} rules4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, DF_DEFAULT_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct df_key6);
	__type(value, struct df_prefix_val);
} rules6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct df_config);
} config SEC(".maps");

/*
 * Per CPU: sendmsg and egress count on the sender's CPU and ingress on the
 * one that delivers the answer, and one shared line bounced between them at
 * every question (about 600 ns a query in the bench's DNS loop). User space
 * sums the CPUs (fence_read_counters). The adds stay atomic: a program in
 * softirq may interrupt another of the fence on its CPU.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct df_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DF_DEFAULT_RECORDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct df_rec_key);
	__type(value, struct df_rec_val);
} records SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DF_DEFAULT_NAME_TARGETS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct df_name_key);
	__type(value, struct df_prefix_val);
} name_rules SEC(".maps");

/* Text of the names seen, for the report. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DF_DEFAULT_NAMES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct df_name_id);
	__type(value, struct df_name_text);
} names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DF_PENDING_SETS * DF_PENDING_WAYS);
	__type(key, __u32);
	__type(value, struct df_pending_slot);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DF_DEFAULT_PROVENANCE);
	__type(key, __u32);
	__type(value, struct df_prov);
} prov4 SEC(".maps");

struct addr6 {
	__u8 a[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DF_DEFAULT_PROVENANCE);
	__type(key, struct addr6);
	__type(value, struct df_prov);
} prov6 SEC(".maps");

/*
 * Per-CPU scratch, one slot per nesting level. A program in process context
 * (egress of a send, the sk_msg reader) can be interrupted on its CPU by one
 * in softirq (ingress, egress of an ACK) of the same fence before it is done
 * with its scratch: with one slot, an answer parsed in between would change
 * the name a question is judged by. egress, ingress and the reader take the
 * next level on entry and give it back on exit (scratch_enter/leave); the
 * nesting is last in, first out, so a plain per-CPU count does, and softirq
 * does not nest in softirq: two levels (DF_SCRATCH_LEVELS, fence.h). Deeper,
 * the slot lookups fail and the programs do no DNS work (never seen; a count
 * would say).
 */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DF_SCRATCH_LEVELS);
	__type(key, __u32);
	__type(value, struct df_dns_scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} nest SEC(".maps");

static __always_inline void scratch_enter(void)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&nest, &zero);

	if (n)
		*n += 1;
}

static __always_inline void scratch_leave(void)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&nest, &zero);

	if (n && *n)
		*n -= 1;
}

/* The level of the program running now on this CPU (those it interrupted are below it). */
static __always_inline __u32 scratch_level(void)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&nest, &zero);

	return n && *n ? *n - 1 : DF_SCRATCH_LEVELS;
}

static __always_inline struct df_dns_scratch *scratch_here(void)
{
	__u32 l = scratch_level();

	return bpf_map_lookup_elem(&scratch, &l);
}

/*
 * The provenance generation: learning a new address, or a new name for one,
 * counts it up, so a verdict sendmsg cached on a socket (df_sk_mark.c_*) for an
 * address without provenance holds only while none was learnt.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} prov_gen SEC(".maps");

/*
 * Process attribution: tgid -> the program it runs (attrib.bpf.c). User space
 * hands in the host-wide map with bpf_map__reuse_fd() before load; without it
 * this one stays empty and records carry no image.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DF_ATTRIB_PROCS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct df_proc);
} attrib_procs SEC(".maps");

/*
 * The egress backstop's fast path: what connect/sendmsg judged, per socket
 * (struct df_sk_mark). Cloned to a listener's children (BPF_F_CLONE), which
 * carries DF_MARK_PASSIVE from the listener to the connections it accepts.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct df_sk_mark);
} sk_marks SEC(".maps");

struct judged {
	__u32 rule_id;
	__u8 verdict; /* DF_ALLOW or DF_DENY */
};

static __always_inline __u8 proto_bit(__u32 proto)
{
	if (proto == IPPROTO_TCP_)
		return DF_PROTO_TCP;
	if (proto == IPPROTO_UDP_)
		return DF_PROTO_UDP;
	return DF_PROTO_OTHER;
}

/*
 * Hide a value from clang's optimiser, so arithmetic written to be
 * branch-free stays so: clang turns a mask-and-add into a compare and jump,
 * and every such jump in a loop is one more path the verifier walks.
 */
#define OPAQUE(v) asm volatile("" : "+r"(v))

/*
 * Rule entry tests without a jump, so a scan of DF_MAX_ENTRIES entries is one
 * path an entry to the verifier (with a jump per test it walked the paths of
 * each, for every caller). 1 or 0; ports and masks are 16 and 8 bits, so the
 * differences' sign bits say the comparisons. OPAQUE keeps clang from making
 * them compares again.
 */
#define OPAQUE_ZERO(x) ({ __u32 opaque_zero_ = (x); OPAQUE(opaque_zero_); (opaque_zero_ - 1) >> 31; }) /* x < 2^31 */

static __always_inline __u32 entry_matches(const struct df_entry *e, __u8 pbit, __u16 port)
{
	__u32 below = (__u32)port - e->port_lo, above = (__u32)e->port_hi - port;

	OPAQUE(below);
	OPAQUE(above);
	return (((below | above) >> 31) ^ 1) & (OPAQUE_ZERO(e->proto_mask & pbit) ^ 1);
}

/* A rule for every port and protocol of its destination. */
static __always_inline __u32 entry_all(const struct df_entry *e)
{
	return OPAQUE_ZERO((e->proto_mask ^ DF_PROTO_ANY) | e->port_lo | (e->port_hi ^ 0xffff));
}

/* First entry that matches wins: user space stores them most specific first. */
static __always_inline int scan_entries(const struct df_prefix_val *v, __u8 pbit, __u16 port,
					struct judged *j)
{
	__u32 n = v->n;

	for (__u32 i = 0; i < DF_MAX_ENTRIES; i++) {
		const struct df_entry *e = &v->e[i];

		if (i >= n)
			break;
		if (!entry_matches(e, pbit, port))
			continue;
		j->verdict = e->verdict;
		j->rule_id = e->rule_id;
		return 1;
	}
	return 0;
}

static __always_inline void judge_default(const struct df_config *cfg, struct judged *j)
{
	j->verdict = cfg->default_verdict == DF_DENY ? DF_DENY : DF_ALLOW;
	j->rule_id = DF_RULE_DEFAULT;
}

/*
 * The address filter (fence.h), filled by user space before load and frozen
 * with the rest of the rodata. A clear bit saves a connect or send to an
 * address no rule covers the LPM lookup: ~170 ns with 10,000 prefixes spread
 * over the address space, ~320 with 100,000 (bpf_stats, 6.18).
 */
const volatile __u64 addr_filter[2][DF_ADDR_FILTER_WORDS];

/* May an address rule cover this address? first: its first 32 bits, network order. */
static __always_inline int addr_may_match(int v6, __u32 first)
{
	__u32 top = bpf_ntohl(first) >> 16;

	return (addr_filter[v6 ? 1 : 0][top / 64] >> (top % 64)) & 1;
}

static __always_inline void judge4(const struct df_config *cfg, __u32 addr, __u8 pbit, __u16 port,
				   struct judged *j)
{
	struct df_key4 key = { .prefixlen = 32, .addr = addr };
	const struct df_prefix_val *v = NULL;

	if (addr_may_match(0, addr))
		v = bpf_map_lookup_elem(&rules4, &key);

	if (!v || !scan_entries(v, pbit, port, j))
		judge_default(cfg, j);
}

static __always_inline void judge6(const struct df_config *cfg, const __u32 ip6[4], __u8 pbit,
				   __u16 port, struct judged *j)
{
	struct df_key6 key = { .prefixlen = 128 };
	const struct df_prefix_val *v = NULL;

	__builtin_memcpy(key.addr, ip6, 16);
	if (addr_may_match(1, ip6[0]))
		v = bpf_map_lookup_elem(&rules6, &key);
	if (!v || !scan_entries(v, pbit, port, j))
		judge_default(cfg, j);
}

/*
 * Who made a call. sock_addr programs run in the caller's context and ask the
 * kernel; cgroup_skb programs may use those helpers only from 6.18 (6.12: pid
 * only), so on older kernels egress finds the sender through the socket: the
 * sock_addr program that let its datagram or connection through left the
 * caller in sock_owner, by socket cookie. User space probes and sets this.
 */
const volatile __u32 skb_task_helpers = 0;

struct task_info {
	__u32 pid, tgid, uid;
	char comm[DF_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DF_DNS_SENDERS);
	__type(key, __u64);
	__type(value, struct task_info);
} sock_owner SEC(".maps");

/*
 * sk_msg programs cannot ask for the current task's comm before 6.18: the
 * reader of DNS over TCP (df_dns_msg, enforce fences, when dns_tcp_reader is
 * set) finds it here, left by the connect that made the connection, by
 * thread (pid_tgid).
 */
const volatile __u32 dns_tcp_reader = 0;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DF_DNS_SENDERS);
	__type(key, __u64);
	__type(value, struct task_info);
} dns_writers SEC(".maps");

static __always_inline int is_dns_port(const struct df_config *cfg, __u16 port)
{
	return port && (port == cfg->dns_ports[0] || port == cfg->dns_ports[1] ||
			port == cfg->dns_ports[2] || port == cfg->dns_ports[3]);
}

/* ::ffff:a.b.c.d: judged, learnt and reported as the IPv4 address a.b.c.d */
static __always_inline int v4_mapped(const __u32 a[4])
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0x0000ffff);
}

static __always_inline void current_task(struct task_info *t)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	t->pid = (__u32)pid_tgid;
	t->tgid = pid_tgid >> 32;
	t->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(t->comm, sizeof(t->comm));
}

static __always_inline void record(__u8 ev, __u8 hook, __u8 proto, __u8 family, const __u32 *addr,
				   __u16 port, __u32 rule_id, const struct df_name_id *name, __u16 qtype,
				   const struct task_info *t)
{
	struct df_rec_key key;
	struct df_rec_val *val, init = {};
	struct df_counters *c;
	struct df_proc *proc;
	__u32 zero = 0;
	__u64 now;
	long err;

	__builtin_memset(&key, 0, sizeof(key));
	key.verdict = ev;
	key.qtype = qtype;
	if (name)
		key.name = *name;
	key.hook = hook;
	key.proto = proto;
	key.family = family;
	key.dport = port;
	key.rule_id = rule_id;
	key.tgid = t->tgid;
	proc = bpf_map_lookup_elem(&attrib_procs, &key.tgid);
	if (proc) {
		key.image = proc->image;
		if (!proc->used)
			proc->used = 1; /* keeps the image for the report */
	}
	if (family == 4)
		__builtin_memcpy(key.daddr, addr, 4);
	else
		__builtin_memcpy(key.daddr, addr, 16);

	val = bpf_map_lookup_elem(&records, &key);
	/* read here, not at the top: nothing holds it across the lookups (a spill in egress) */
	now = bpf_ktime_get_ns();
	if (val) {
		__sync_fetch_and_add(&val->count, 1);
		val->last_ns = now;
		return;
	}
	init.count = 1;
	init.first_ns = now;
	init.last_ns = now;
	init.pid = t->pid;
	init.uid = t->uid;
	__builtin_memcpy(init.comm, t->comm, sizeof(init.comm));
	err = bpf_map_update_elem(&records, &key, &init, BPF_NOEXIST);
	if (!err)
		return;
	if (err == -17 /* EEXIST: another CPU created it first */) {
		val = bpf_map_lookup_elem(&records, &key);
		if (val) {
			__sync_fetch_and_add(&val->count, 1);
			val->last_ns = now;
			return;
		}
	}
	c = bpf_map_lookup_elem(&counters, &zero);
	if (c)
		__sync_fetch_and_add(&c->dropped_records, 1);
}

/* The one destination a socket's packets pass the backstop to (raw, ping sockets). */
static __always_inline void mark_dest(struct df_sk_mark *m, __u8 family, __u8 proto, __u16 port,
				      const __u32 *addr)
{
	m->family = family;
	m->proto = proto;
	m->dport = port;
	m->daddr[0] = addr[0];
	if (family == 6) {
		m->daddr[1] = addr[1];
		m->daddr[2] = addr[2];
		m->daddr[3] = addr[3];
	}
}

/* The UDP socket's last destination let through (struct df_sk_mark, s_*). */
static __always_inline void mark_sent(struct df_sk_mark *m, __u8 family, __u16 port,
				      const __u32 *addr)
{
	m->s_family = family;
	m->s_port = port;
	m->s_addr[0] = addr[0];
	if (family == 6) {
		m->s_addr[1] = addr[1];
		m->s_addr[2] = addr[2];
		m->s_addr[3] = addr[3];
	}
}

/* A TCP stream socket (not a raw one with protocol TCP) of a fresh fence: see DF_CFG_FRESH. */
static __always_inline int fresh_stream(const struct df_config *cfg, struct bpf_sock *sk)
{
	return (cfg->flags & DF_CFG_FRESH) && sk->type == SOCK_STREAM_ &&
	       sk->protocol == IPPROTO_TCP_;
}

/*
 * Leave on the socket what was just judged, so the egress backstop lets its
 * packets through after one lookup. A TCP stream or UDP datagram socket is
 * marked judged once (its destination only changes through these hooks);
 * any other keeps the last destination judged. A UDP datagram socket's send
 * also leaves its destination as the last sendmsg let through (mark_sent, for
 * df_sent_to; a send the cache lets through leaves it in cached_allow).
 */
static __always_inline void mark_sock(struct bpf_sock_addr *ctx, const struct df_config *cfg,
				      __u8 hook, __u8 family, __u32 proto, const __u32 *addr,
				      __u16 port, int dns)
{
	struct bpf_sock *sk = ctx->sk;
	struct df_sk_mark *m;

	if (!sk)
		return;
	/* a fresh fence passes every TCP stream socket: nothing to leave */
	if (fresh_stream(cfg, sk))
		return;
	m = bpf_sk_storage_get(&sk_marks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!m)
		return;
	if (dns && !(m->flags & DF_MARK_DNS))
		m->flags |= DF_MARK_DNS;
	/* (hook is a constant in each program: connect's leave this out) */
	if ((hook == DF_HOOK_SENDMSG4 || hook == DF_HOOK_SENDMSG6) && ctx->type == SOCK_DGRAM_ &&
	    proto == IPPROTO_UDP_)
		mark_sent(m, family, port, addr);
	if (m->flags & DF_MARK_JUDGED)
		return;
	if ((ctx->type == SOCK_STREAM_ && proto == IPPROTO_TCP_) ||
	    (ctx->type == SOCK_DGRAM_ && proto == IPPROTO_UDP_))
		m->flags |= DF_MARK_JUDGED;
	else
		mark_dest(m, family, (__u8)proto, port, addr);
}

/* A TCP socket (full, or NULL: no) with no DNS port at either end. */
static __always_inline int tcp_off_dns(const struct df_config *cfg, struct bpf_sock *sk)
{
	return sk && sk->protocol == IPPROTO_TCP_ && !is_dns_port(cfg, (__u16)sk->src_port) &&
	       !is_dns_port(cfg, bpf_ntohs((__u16)sk->dst_port));
}

/*
 * A TCP connection connect judged, or one a listener in the fence accepted,
 * with no DNS port at either end (sk a full socket or NULL): the backstop
 * passes its packets and none is a DNS message, so egress lets them go
 * unparsed (in a fresh fence without reading anything but the socket, else
 * after one socket-storage lookup, instead of two header loads and the
 * backstop's lookup).
 */
static __always_inline int quiet_tcp(const struct df_config *cfg, struct bpf_sock *sk)
{
	struct df_sk_mark *m;

	if (!tcp_off_dns(cfg, sk))
		return 0;
	if (fresh_stream(cfg, sk))
		return 1;
	m = bpf_sk_storage_get(&sk_marks, sk, 0, 0);
	return m && (m->flags & DF_MARK_DNS) == 0 && (m->flags & (DF_MARK_JUDGED | DF_MARK_PASSIVE));
}

/* The event a verdict makes in this mode, counted. */
static __always_inline __u8 count_verdict(const struct df_config *cfg, __u8 verdict)
{
	struct df_counters *c;
	__u32 zero = 0;
	__u8 ev;

	if (verdict == DF_ALLOW)
		ev = DF_EV_ALLOWED;
	else if (cfg->mode == DF_MODE_ENFORCE)
		ev = DF_EV_BLOCKED;
	else
		ev = DF_EV_WOULD_BLOCK;
	c = bpf_map_lookup_elem(&counters, &zero);
	if (c) {
		__sync_fetch_and_add(&c->connections, 1);
		if (ev == DF_EV_ALLOWED)
			__sync_fetch_and_add(&c->allowed, 1);
		else if (ev == DF_EV_BLOCKED)
			__sync_fetch_and_add(&c->blocked, 1);
		else
			__sync_fetch_and_add(&c->would_block, 1);
	}
	return ev;
}

/*
 * Count, record as the mode asks, and turn the verdict into the hook's answer.
 * observe records every destination, audit and enforce record what the policy
 * refuses; only enforce refuses.
 */
static __always_inline int finish(struct bpf_sock_addr *ctx, const struct df_config *cfg,
				  const struct judged *j, __u8 hook, __u32 proto, __u8 family,
				  const __u32 *addr, __u16 port, const struct df_name_id *name)
{
	__u8 ev = count_verdict(cfg, j->verdict);

	{
		int rec = ev != DF_EV_ALLOWED || cfg->mode == DF_MODE_OBSERVE;
		/* the sender of a DNS question, for egress on kernels without task helpers there */
		/*
		 * who asks a resolver, for the programs that cannot ask the kernel:
		 * egress before 6.18 (by socket), df_dns_msg (by thread, TCP only)
		 */
		int tcp_writer = dns_tcp_reader && proto == IPPROTO_TCP_;
		int dns = (!skb_task_helpers || tcp_writer) && ev != DF_EV_BLOCKED &&
			  is_dns_port(cfg, port);
		struct task_info t;

		if (rec || dns)
			current_task(&t);
		if (rec)
			record(ev, hook, (__u8)proto, family, addr, port, j->rule_id, name, 0, &t);
		if (dns && !skb_task_helpers) {
			__u64 cookie = bpf_get_socket_cookie(ctx);

			bpf_map_update_elem(&sock_owner, &cookie, &t, BPF_ANY);
		}
		if (dns && tcp_writer) {
			__u64 id = (__u64)t.tgid << 32 | t.pid;

			bpf_map_update_elem(&dns_writers, &id, &t, BPF_ANY);
		}
	}
	if (ev == DF_EV_BLOCKED)
		return SOCK_REFUSE;
	mark_sock(ctx, cfg, hook, family, proto, addr, port, is_dns_port(cfg, port));
	return SOCK_PASS;
}

/*
 * An address with DNS provenance is also judged by the name rules: a rule of
 * either kind that refuses it refuses it; otherwise one that allows it allows
 * it; otherwise the default.
 */
static __always_inline void judge_provenance(const struct df_prov *pv, __u8 pbit, __u16 port,
					     struct judged *j, struct df_name_id *ret_name)
{
	struct df_name_key target;
	const struct df_prefix_val *v;
	struct judged nj;

	if (!pv || pv->expires_ns < bpf_ktime_get_ns())
		return;
	*ret_name = pv->name;
	if (pv->target.kind > DF_NAME_MANY)
		return;
	target = pv->target;
	v = bpf_map_lookup_elem(&name_rules, &target);
	if (!v || !scan_entries(v, pbit, port, &nj))
		return;
	if (j->rule_id == DF_RULE_DEFAULT || nj.verdict == DF_DENY || j->verdict != DF_DENY)
		*j = nj;
}

/* Keyed hashing of a few words (the pending table's checks; avalanche() alone for the sendmsg cache). */
static __always_inline __u64 fold_words(__u64 h, const __u32 *w, __u32 n)
{
	for (__u32 i = 0; i < n; i++)
		h = ((h << 7) | (h >> 57)) ^ w[i];
	return h;
}

/* Every bit of the input moves about half of the output (MurmurHash3's finalizer). */
static __always_inline __u64 avalanche(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 33);
}

/*
 * The sendmsg verdict cache (df_sk_mark.c_*): a UDP socket sending again to
 * the destination it last sent to is allowed after one compare, counted as
 * any other, when that send was allowed by the rules alone (no provenance for
 * the address), in the same mode, with no address learnt since. It saves the
 * LPM and provenance lookups of a datagram loop (a stub resolver's questions:
 * ~450 ns of ~750 with 10,000 prefixes spread over the address space). Only
 * where nothing else is owed: not in observe (which records every send), not
 * to a DNS port on kernels whose egress cannot ask who sends (finish() leaves
 * the sender for it). On only where user space turns it on (send_cache_on),
 * on x86-64: its stores keep their order and its loads theirs, so a send that
 * reads the generation a learn wrote also finds what that learn stored; on
 * weaker orderings that takes load-acquire, which 5.10 has not.
 */
const volatile __u32 send_cache_on = 0;

static __always_inline __u64 prov_generation(void)
{
	__u32 zero = 0;
	__u64 *g = bpf_map_lookup_elem(&prov_gen, &zero);

	return g ? *g : ~0ULL;
}

/* Keyed and mixed word by word (no linear shortcut to a collision); never 0. */
static __always_inline __u64 send_key(const struct df_config *cfg, __u8 family, const __u32 *addr,
				      __u16 port, __u32 mode, __u64 gen)
{
	__u64 seed = (__u64)cfg->hash_b2 << 32 | cfg->hash_b1, h;

	h = avalanche(seed ^ ((__u64)addr[0] << 32 | (__u32)port << 16 | mode << 8 | family));
	h = avalanche(h ^ gen);
	if (family == 6) {
		h = avalanche(h ^ ((__u64)addr[1] << 32 | addr[2]));
		h = avalanche(h ^ addr[3]);
	}
	return (h ^ seed) | 1;
}

static __always_inline int cacheable(struct bpf_sock_addr *ctx, const struct df_config *cfg,
				     __u16 port)
{
	return ctx->protocol == IPPROTO_UDP_ && cfg->mode != DF_MODE_OBSERVE &&
	       (skb_task_helpers || !is_dns_port(cfg, port));
}

static __always_inline int cached_allow(struct bpf_sock_addr *ctx, __u8 family, const __u32 *addr,
					__u16 port)
{
	const struct df_config *cfg;
	struct bpf_sock *sk = ctx->sk;
	struct df_sk_mark *m;
	__u32 zero = 0;
	__u64 gen, key;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !sk || !cacheable(ctx, cfg, port))
		return 0;
	m = bpf_sk_storage_get(&sk_marks, sk, 0, 0);
	if (!m)
		return 0;
	key = m->c_key;
	if (!key)
		return 0;
	asm volatile("" ::: "memory");
	if (m->c_family != family || m->c_port != port || m->c_mode != cfg->mode ||
	    m->c_addr[0] != addr[0])
		return 0;
	if (family == 6 &&
	    (m->c_addr[1] != addr[1] || m->c_addr[2] != addr[2] || m->c_addr[3] != addr[3]))
		return 0;
	gen = m->c_gen;
	if (gen == ~0ULL || gen != prov_generation() ||
	    key != send_key(cfg, family, addr, port, cfg->mode, gen))
		return 0;
	asm volatile("" ::: "memory");
	if (m->c_key != key)
		return 0;
	count_verdict(cfg, DF_ALLOW);
	if (ctx->type == SOCK_DGRAM_)
		mark_sent(m, family, port, addr);
	return 1;
}

/*
 * A send judged with this verdict at provenance generation gen (read before
 * the provenance was): cached if allowed and the address has no provenance,
 * live or expired. (Provenance is added, changed or evicted only by learning,
 * which counts the generation up after: a send this one raced sees another.)
 */
static __always_inline void cache_allow(struct bpf_sock_addr *ctx, __u8 family, const __u32 *addr,
					__u16 port, __u64 gen, __u32 verdict)
{
	const struct df_config *cfg;
	struct bpf_sock *sk = ctx->sk;
	struct df_sk_mark *m;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !sk || verdict != DF_ALLOW || !cacheable(ctx, cfg, port) || gen == ~0ULL)
		return;
	if (bpf_map_lookup_elem(family == 4 ? (void *)&prov4 : (void *)&prov6, addr))
		return;
	m = bpf_sk_storage_get(&sk_marks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!m)
		return;
	m->c_key = 0;
	asm volatile("" ::: "memory");
	m->c_family = family;
	m->c_port = port;
	m->c_mode = (__u8)cfg->mode;
	m->c_addr[0] = addr[0];
	if (family == 6) {
		m->c_addr[1] = addr[1];
		m->c_addr[2] = addr[2];
		m->c_addr[3] = addr[3];
	}
	m->c_gen = gen;
	asm volatile("" ::: "memory");
	m->c_key = send_key(cfg, family, addr, port, (__u8)cfg->mode, gen);
}

/*
 * Global, so the verifier checks them once and not once per path of the
 * judging around them: IPv4 (and IPv4-mapped) by value, IPv6 read from the
 * context (sendmsg6 only).
 */
__attribute__((noinline)) int df_send_cached4(struct bpf_sock_addr *ctx, __u32 addr, __u32 port)
{
	if (!ctx)
		return 0;
	return cached_allow(ctx, 4, &addr, (__u16)port);
}

__attribute__((noinline)) int df_send_cache4(struct bpf_sock_addr *ctx, __u32 addr, __u32 port,
					     __u64 gen, __u32 verdict)
{
	if (!ctx)
		return 0;
	cache_allow(ctx, 4, &addr, (__u16)port, gen, verdict);
	return 0;
}

static __always_inline void ctx_ip6(struct bpf_sock_addr *ctx, __u32 a[4])
{
	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
}

__attribute__((noinline)) int df_send_cached6(struct bpf_sock_addr *ctx)
{
	__u32 a[4];

	if (!ctx)
		return 0;
	ctx_ip6(ctx, a);
	return cached_allow(ctx, 6, a, bpf_ntohs((__u16)ctx->user_port));
}

__attribute__((noinline)) int df_send_cache6(struct bpf_sock_addr *ctx, __u64 gen, __u32 verdict)
{
	__u32 a[4];

	if (!ctx)
		return 0;
	ctx_ip6(ctx, a);
	cache_allow(ctx, 6, a, bpf_ntohs((__u16)ctx->user_port), gen, verdict);
	return 0;
}

static __always_inline int fence4(struct bpf_sock_addr *ctx, __u8 hook)
{
	const int cache = hook == DF_HOOK_SENDMSG4 && send_cache_on;
	const struct df_config *cfg;
	struct df_name_id name = {};
	struct judged j;
	__u32 zero = 0, addr, proto;
	__u64 gen;
	__u16 port;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return SOCK_PASS;
	addr = ctx->user_ip4;
	port = bpf_ntohs((__u16)ctx->user_port);
	proto = ctx->protocol;
	if (cache && df_send_cached4(ctx, addr, port) == 1)
		return SOCK_PASS;
	/* read before the provenance: an address learnt from here on spoils the cache */
	gen = cache ? prov_generation() : 0;
	judge4(cfg, addr, proto_bit(proto), port, &j);
	judge_provenance(bpf_map_lookup_elem(&prov4, &addr), proto_bit(proto), port, &j, &name);
	if (cache)
		df_send_cache4(ctx, addr, port, gen, j.verdict);
	return finish(ctx, cfg, &j, hook, proto, 4, &addr, port, &name);
}

static __always_inline int fence6(struct bpf_sock_addr *ctx, __u8 hook)
{
	const int cache = hook == DF_HOOK_SENDMSG6 && send_cache_on;
	const struct df_config *cfg;
	struct df_name_id name = {};
	struct judged j;
	__u32 zero = 0, ip6[4], proto;
	__u64 gen;
	__u16 port;
	__u8 pbit;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return SOCK_PASS;
	ctx_ip6(ctx, ip6);
	port = bpf_ntohs((__u16)ctx->user_port);
	proto = ctx->protocol;
	pbit = proto_bit(proto);

	/* ::ffff:a.b.c.d is judged, and reported, as a.b.c.d */
	if (v4_mapped(ip6)) {
		__u32 a4 = ip6[3];

		if (cache && df_send_cached4(ctx, a4, port) == 1)
			return SOCK_PASS;
		gen = cache ? prov_generation() : 0;
		judge4(cfg, a4, pbit, port, &j);
		judge_provenance(bpf_map_lookup_elem(&prov4, &a4), pbit, port, &j, &name);
		if (cache)
			df_send_cache4(ctx, a4, port, gen, j.verdict);
		return finish(ctx, cfg, &j, hook, proto, 4, &ip6[3], port, &name);
	}
	if (cache && df_send_cached6(ctx) == 1)
		return SOCK_PASS;
	gen = cache ? prov_generation() : 0;
	judge6(cfg, ip6, pbit, port, &j);
	judge_provenance(bpf_map_lookup_elem(&prov6, ip6), pbit, port, &j, &name);
	if (cache)
		df_send_cache6(ctx, gen, j.verdict);
	return finish(ctx, cfg, &j, hook, proto, 6, ip6, port, &name);
}

SEC("cgroup/connect4")
int df_connect4(struct bpf_sock_addr *ctx)
{
	return fence4(ctx, DF_HOOK_CONNECT4);
}

SEC("cgroup/connect6")
int df_connect6(struct bpf_sock_addr *ctx)
{
	return fence6(ctx, DF_HOOK_CONNECT6);
}

SEC("cgroup/sendmsg4")
int df_sendmsg4(struct bpf_sock_addr *ctx)
{
	return fence4(ctx, DF_HOOK_SENDMSG4);
}

SEC("cgroup/sendmsg6")
int df_sendmsg6(struct bpf_sock_addr *ctx)
{
	return fence6(ctx, DF_HOOK_SENDMSG6);
}

/* ------------------------------------------------------------------------
 * DNS: questions leaving the fence (egress) and answers coming back (ingress).
 * ------------------------------------------------------------------------ */

#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86dd
#define SKB_PASS 1
#define SKB_DROP 0
#define NO_TARGET 0xff

/* clang drops a C mask after a range check; the verifier needs it. */
#define BOUND(v, mask) asm volatile("%0 &= " #mask : "+r"(v))
/*
 * Re-read a loop's result from map memory: the verifier then sees one
 * unknown value instead of one exact value per loop exit, and walks what
 * follows once rather than once per exit.
 */
#define REREAD(x) (*(volatile __typeof__(x) *)&(x))

struct pkt {
	__u32 off; /* DNS message */
	__u32 len; /* bytes from off to the end */
	__u8 proto;
	__u8 family;
	__u16 sport, dport;
	__u32 saddr[4], daddr[4];
};

struct ip4hdr {
	__u8 vihl, tos;
	__u16 tot_len, id, frag;
	__u8 ttl, proto;
	__u16 csum;
	__u32 saddr, daddr;
};

struct ip6hdr {
	__u32 vtcfl;
	__u16 plen;
	__u8 nexthdr, hlim;
	__u32 saddr[4], daddr[4];
};

struct dnshdr {
	__u16 id, flags, qd, an, ns, ar;
};

/*
 * L3/L4 headers: 0 with ports (TCP, UDP), 1 for an IP packet whose ports are
 * not seen (other protocols, IPv6 extension headers, later fragments: family,
 * proto and addresses are set), -1 for anything else.
 */
static __always_inline int parse_pkt(struct __sk_buff *skb, struct pkt *p)
{
	__u32 hl, l4[5];

	if (skb->protocol == bpf_htons(ETH_P_IP_)) {
		struct ip4hdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return -1;
		p->proto = ip.proto;
		p->family = 4;
		p->saddr[0] = ip.saddr;
		p->daddr[0] = ip.daddr;
		if (bpf_ntohs(ip.frag) & 0x1fff) /* not the first fragment */
			return 1;
		hl = (ip.vihl & 0xf) * 4;
		if (hl < 20)
			return 1;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6_)) {
		struct ip6hdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return -1;
		hl = 40;
		p->proto = ip.nexthdr; /* extension headers: not DNS as far as we judge */
		p->family = 6;
		__builtin_memcpy(p->saddr, ip.saddr, 16);
		__builtin_memcpy(p->daddr, ip.daddr, 16);
	} else {
		return -1;
	}
	/* a header too short to hold its ports (a raw socket's): judged portless */
	if (p->proto == IPPROTO_UDP_) {
		if (bpf_skb_load_bytes(skb, hl, l4, 8))
			return 1;
		p->off = hl + 8;
	} else if (p->proto == IPPROTO_TCP_) {
		if (bpf_skb_load_bytes(skb, hl, l4, 20))
			return 1;
		p->off = hl + ((((__u8 *)l4)[12] >> 4) * 4);
	} else {
		return 1;
	}
	p->sport = bpf_ntohs(((__u16 *)l4)[0]);
	p->dport = bpf_ntohs(((__u16 *)l4)[1]);
	p->len = skb->len > p->off ? skb->len - p->off : 0;
	return 0;
}

/*
 * TCP carries a 2-byte length first, in the same segment or the one before,
 * and one segment may hold several messages (glibc writes its A and AAAA
 * questions with one writev). The first two bytes are a length when they fit
 * the segment and the qdcount read after them is 1 while the one read
 * without them is not; a length equal to the rest of the segment is one
 * unless only the reading without it has qdcount 1. Only the first message
 * is judged.
 *
 * That is a guess, and the sender picks the bytes: a message whose flags are
 * 0x0001 has qdcount 1 both ways, and read without its length its id is the
 * flags (0x8001: an answer). So the guess only says how a message is read
 * first; a question judge reads the other way too when that gives a query
 * of one name (df_dns_reading in egress, dns_msg_run): a segment or write
 * passes only when no reading that gives a question refuses it, and never as
 * "an answer" while the other reading asks something.
 */
/*
 * Do the first two bytes of len bytes of TCP stream read as a length (pl)?
 * qd_pre: the qdcount read after them is 1; qd_raw: the one read without
 * them is.
 */
static __always_inline int length_first(__u32 pl, __u32 len, int qd_pre, int qd_raw)
{
	return pl >= sizeof(struct dnshdr) &&
	       ((qd_pre && !qd_raw) || (pl == len - 2 && (qd_pre || !qd_raw)));
}

/* what dns_start read: UDP, or TCP with or without a length first */
#define DNS_UDP 0
#define DNS_TCP_RAW 1
#define DNS_TCP_LEN 2

/* Where the DNS message of p starts: DNS_UDP, DNS_TCP_RAW or DNS_TCP_LEN, or -1 for none. */
static __always_inline int dns_start(struct __sk_buff *skb, struct pkt *p)
{
	__u16 w[4], pl;
	int qd_pre, qd_raw;

	if (p->proto != IPPROTO_TCP_)
		return p->len >= sizeof(struct dnshdr) ? DNS_UDP : -1;
	if (p->len < sizeof(struct dnshdr))
		return -1; /* a bare length prefix or an ACK */
	if (bpf_skb_load_bytes(skb, p->off, w, sizeof(w)))
		return -1;
	pl = bpf_ntohs(w[0]);
	qd_raw = bpf_ntohs(w[2]) == 1;
	qd_pre = bpf_ntohs(w[3]) == 1;
	if (pl <= p->len - 2 && length_first(pl, p->len, qd_pre, qd_raw)) {
		p->off += 2;
		p->len = pl;
		return DNS_TCP_LEN;
	}
	return DNS_TCP_RAW;
}

/* A query of one name: QR 0, opcode 0 (flags and qd in host order). */
static __always_inline int one_question(__u16 flags, __u16 qd)
{
	return (flags & 0xf800) == 0 && qd == 1;
}

/*
 * x mod DF_HASH_P1 and x mod DF_HASH_P2 for x < 2^63 without a divide (a
 * 64-bit division per byte and hash was most of a question's cost): both
 * primes sit just below 2^31, so 2^31 is 1 (P1 = 2^31 - 1) or 19
 * (P2 = 2^31 - 19) modulo them; two folds leave x below 2P and one
 * branch-free subtraction finishes. Equal to the user-space % by arithmetic,
 * and test_bpf_dns checks the kernel against it.
 */
static __always_inline __u64 sub_if_ge(__u64 x, __u64 m)
{
	__u64 d = x - m, below = d >> 63;

	/* a multiply: clang would make a mask a jump, and 6.18 forks on an arsh-and-mask */
	OPAQUE(below);
	return d + m * below;
}

static __always_inline __u64 mod_p1(__u64 x)
{
	x = (x & 0x7fffffffULL) + (x >> 31);
	x = (x & 0x7fffffffULL) + (x >> 31);
	return sub_if_ge(x, DF_HASH_P1);
}

static __always_inline __u64 mod_p2(__u64 x)
{
	x = (x & 0x7fffffffULL) + (x >> 31) * (0x80000000ULL - DF_HASH_P2);
	x = (x & 0x7fffffffULL) + (x >> 31) * (0x80000000ULL - DF_HASH_P2);
	return sub_if_ge(x, DF_HASH_P2);
}

/*
 * Pass 2's work on byte i of the name in sc->buf: branch-free, so the
 * verifier walks one path per byte. Lowercase ('A'..'Z' is where both
 * 64 - b and b - 91 are negative; length bytes are below 64 and stay as they
 * are), count dots, copy to the dotted form and hash the suffix from i.
 */
static __always_inline void name_byte(struct df_dns_scratch *sc, __u32 i, __u64 *h1, __u64 *h2,
				      __u64 b1, __u64 b2, __u32 *dots)
{
	__u8 b;

	BOUND(i, 255);
	b = sc->buf[i];
	b += (((__u32)((64 - (int)b) & ((int)b - 91))) >> 31) << 5;
	*dots += ((__u32)(b ^ '.') - 1) >> 31;
	sc->buf[i] = b;
	/* the dotted form is the bytes shifted by one (buf[0] lands past its end, in dotted[255]) */
	sc->dotted[(i - 1) & 255] = (char)b;
	*h1 = mod_p1(*h1 * b1 + b + 1);
	*h2 = mod_p2(*h2 * b2 + b + 1);
	sc->sh1[i] = (__u32)*h1;
	sc->sh2[i] = (__u32)*h2;
}

#ifdef DF_BPF_LOOP
/*
 * The loop build (DF_BPF_LOOP, hook/fence_obj.h; loaded where the kernel has
 * bpf_loop, 5.17+): pass 2's body is verified as a callback, a few times,
 * instead of once per byte: ~20k instructions less in each program that
 * parses names, ~4 ms less verification in all on 6.18. The kernel inlines
 * the loop (5.19+); BYTE_STEP bytes a call keep the calls few (+10 to 25 ns a
 * name by BPF_PROG_TEST_RUN). The state lives in the caller's frame; done
 * counts the bytes hashed, so a loop cut short cannot pass a name half hashed.
 */
#define BYTE_STEP 8

struct byte_pass {
	struct df_dns_scratch *sc;
	__u64 h1, h2, b1, b2;
	__u32 len, dots, done, pad;
};

static long byte_steps(__u64 step, void *ctx)
{
	struct byte_pass *bp = ctx;
	struct df_dns_scratch *sc = bp->sc;
	/* in registers: the byte stores may alias the frame, and would reload them every byte */
	__u64 h1 = bp->h1, h2 = bp->h2, b1 = bp->b1, b2 = bp->b2;
	__u32 len = bp->len, dots = bp->dots, done = bp->done;
	long stop = 0;

	if (!sc)
		return 1;
	for (__u32 j = 0; j < BYTE_STEP; j++) {
		__u32 k = (__u32)step * BYTE_STEP + j;

		/* len <= DF_DNS_NAME_MAX, checked by the caller; name_byte bounds the index for the verifier */
		if (k >= len) {
			stop = 1;
			break;
		}
		name_byte(sc, len - 1 - k, &h1, &h2, b1, b2, &dots);
		done = k + 1;
	}
	bp->h1 = h1;
	bp->h2 = h2;
	bp->dots = dots;
	bp->done = done;
	return stop;
}
#endif

/*
 * Parse the question name loaded into sc->buf (n bytes, at most
 * DF_DNS_NAME_MAX) and hash every suffix. Pass 1 walks labels
 * left to right and keeps where each starts; pass 2 walks the bytes right to
 * left (name_byte: unrolled, or in a bpf_loop callback in the loop build),
 * lowercasing, hashing the suffix that starts at every byte and copying to
 * the dotted form, with no branch on the label structure; pass 3 turns label
 * starts into dots. Loop exits go through map memory so the verifier does not
 * walk pass 2 once per exit of pass 1. Returns the wire length (zero byte
 * included) or -1.
 */
static __always_inline int parse_name(struct df_dns_scratch *sc, const struct df_config *cfg,
				      __u32 n)
{
	__u32 pos = 0, nl = 0, len, dots = 0, len46 = 0;
#ifndef DF_BPF_LOOP
	__u64 h1 = 0, h2 = 0, b1 = cfg->hash_b1, b2 = cfg->hash_b2;
#endif
	int ok = 0;

	for (int i = 0; i < DF_DNS_LABELS_MAX; i++) {
		__u32 p = pos, dot;
		__u8 l;

		if (p >= n)
			break;
		BOUND(p, 255);
		l = sc->buf[p];
		if (l == 0) {
			ok = 1;
			break;
		}
		if (l > 63) /* compression has no place in a question; 0x40/0x80 are undefined */
			break;
		sc->lpos[i & (DF_DNS_LABELS_MAX - 1)] = (__u8)p;
		dot = ((__u32)(l ^ '.') - 1) >> 31;
		OPAQUE(dot);
		len46 += dot;
		pos += l + 1;
		nl++;
	}
	if (!ok || pos + 1 > 255)
		return -1;
	sc->name_len = pos + 1;
	sc->nlabels = nl;
	sc->pad = len46;

	len = REREAD(sc->name_len);
	if (len == 0 || len > DF_DNS_NAME_MAX)
		return -1;
#ifdef DF_BPF_LOOP
	{
		struct byte_pass bp = { .sc = sc, .b1 = cfg->hash_b1, .b2 = cfg->hash_b2, .len = len };

		bpf_loop((len + BYTE_STEP - 1) / BYTE_STEP, byte_steps, &bp, 0);
		dots = bp.dots;
		if (bp.done != len)
			return -1;
	}
#else
	for (int k = 0; k < DF_DNS_NAME_MAX; k++) {
		__u32 i = len - 1 - k;

		if (k >= len)
			break;
		name_byte(sc, i, &h1, &h2, b1, b2, &dots);
	}
#endif
	/* the copy's byte from buf[0] landed in dotted[255]: it stays a terminator */
	sc->dotted[DF_DNS_NAME_MAX - 1] = 0;
	/* a '.' inside a label would read as another name */
	if (dots != REREAD(sc->pad))
		return -1;

	/* dotted form, copied in pass 2: label starts as dots, zero at the end */
	nl = REREAD(sc->nlabels);
	for (__u32 j = 1; j < DF_DNS_LABELS_MAX; j++) {
		__u32 jj = j, p;

		if (j >= nl)
			break;
		BOUND(jj, 127);
		p = sc->lpos[jj];
		if (p == 0)
			break;
		p -= 1;
		BOUND(p, 255);
		sc->dotted[p] = '.';
	}
	len = REREAD(sc->name_len);
	if (len >= 2) {
		len -= 2;
		BOUND(len, 255);
		sc->dotted[len] = 0;
	} else {
		sc->dotted[0] = 0;
	}
	return (int)REREAD(sc->name_len);
}

/* The bytes of a name to load, of avail > 0 there: at most DF_DNS_NAME_MAX, as the verifier sees it. */
static __always_inline __u32 name_window(__u32 avail)
{
	/* 1 when avail is over the most: a branch would walk the parser twice, once with n exact */
	__u64 over = ((__u64)DF_DNS_NAME_MAX - avail) >> 63;
	__u32 n;

	OPAQUE(over);
	n = avail - (avail - DF_DNS_NAME_MAX) * (__u32)over;
	n -= 1;
	BOUND(n, 255);
	return n + 1;
}

static __always_inline void label_hash(struct df_dns_scratch *sc, __u32 label, struct df_name_key *k)
{
	__u32 p;

	BOUND(label, 127);
	p = sc->lpos[label];
	BOUND(p, 255);
	k->h1 = sc->sh1[p];
	k->h2 = sc->sh2[p];
}

/* The rule for k, if the name filter lets it have one. */
static __always_inline const struct df_prefix_val *name_rule(const struct df_config *cfg,
							      const struct df_name_key *k)
{
	__u32 bit = DF_NAME_FILTER_BIT(k->h1, k->kind);

	if (!(cfg->name_filter[(bit / 64) & (DF_NAME_FILTER_WORDS - 1)] & (1ULL << (bit % 64))))
		return NULL;
	return bpf_map_lookup_elem(&name_rules, k);
}

/* The most specific rule target matching the parsed name: exact, then *., then the longest **. */
static __always_inline const struct df_prefix_val *match_name(const struct df_config *cfg,
							       struct df_dns_scratch *sc,
							       struct df_name_key *ret)
{
	const struct df_prefix_val *v;
	struct df_name_key k = {};
	__u32 nl = REREAD(sc->nlabels);

	ret->kind = NO_TARGET;
	if (nl == 0 || nl > DF_DNS_LABELS_MAX)
		return NULL;
	k.h1 = sc->sh1[0];
	k.h2 = sc->sh2[0];
	k.kind = DF_NAME_EXACT;
	v = name_rule(cfg, &k);
	if (v)
		goto found;
	if (nl < 2)
		return NULL;
	label_hash(sc, 1, &k);
	k.kind = DF_NAME_ONE;
	v = name_rule(cfg, &k);
	if (v)
		goto found;
	k.kind = DF_NAME_MANY;
	for (__u32 j = 1; j < DF_DNS_LABELS_MAX; j++) {
		if (j >= nl)
			break;
		label_hash(sc, j, &k);
		v = name_rule(cfg, &k);
		if (v)
			goto found;
	}
	return NULL;
found:
	*ret = k;
	return v;
}

/*
 * The DNS walks are global functions: the verifier checks each once, with
 * unknown arguments, instead of once per path that reaches it. That keeps
 * loading a fence cheap. They keep their state in the per-CPU scratch map.
 */
__attribute__((noinline)) int df_parse_name(struct __sk_buff *skb, __u32 off, __u32 avail)
{
	const struct df_config *cfg;
	struct df_dns_scratch *sc;
	__u32 zero = 0, n = avail;

	cfg = bpf_map_lookup_elem(&config, &zero);
	sc = scratch_here();
	if (!cfg || !sc || !skb || n == 0)
		return -1;
	n = name_window(n);
	if (bpf_skb_load_bytes(skb, off, sc->buf, n))
		return -1;
	return parse_name(sc, cfg, n);
}

/* 1 when a rule target matches the parsed name; its key is in scratch->match. */
__attribute__((noinline)) int df_match_name(__u32 wire_len)
{
	const struct df_config *cfg;
	struct df_dns_scratch *sc;
	struct df_name_key k;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&config, &zero);
	sc = scratch_here();
	if (!cfg || !sc || wire_len != REREAD(sc->name_len))
		return 0;
	if (!match_name(cfg, sc, &k)) {
		sc->match.kind = NO_TARGET;
		return 0;
	}
	sc->match = k;
	return 1;
}

/*
 * 0 when the policy has no name rule: no question can match one, and the
 * verifier skips the matching (~17k of egress's instructions). User space
 * clears it for such fences; on by default, so a loader that does not know
 * of it matches.
 */
const volatile __u32 name_rules_on = 1;

/*
 * The verdict on a question: a name reachable on some port or protocol is
 * allowed to be resolved; one whose rules only refuse it is refused.
 */
static __always_inline int question_verdict(const struct df_prefix_val *v, struct judged *j)
{
	__u32 n;

	if (!v)
		return 0;
	n = v->n;
	for (__u32 i = 0; i < DF_MAX_ENTRIES; i++) {
		const struct df_entry *e = &v->e[i];
		__u32 allow;

		if (i >= n)
			break;
		/* an allow for some port allows the name; a deny for every port refuses it */
		allow = OPAQUE_ZERO(e->verdict ^ DF_ALLOW);
		if (allow | entry_all(e)) {
			j->verdict = DF_DENY - allow;
			j->rule_id = e->rule_id;
			return 1;
		}
	}
	return 0;
}

/*
 * 1 when the policy refuses the question whose name df_parse_name or
 * df_msg_parse_name left in scratch (wire_len bytes): judge_question's verdict,
 * with nothing recorded. For a segment's other reading (dns_start). Global, so
 * the verifier walks the matching once more in all, not once per caller.
 */
__attribute__((noinline)) int df_question_denied(__u32 wire_len)
{
	const struct df_prefix_val *v = NULL;
	const struct df_config *cfg;
	struct df_dns_scratch *sc;
	struct judged j;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&config, &zero);
	sc = scratch_here();
	if (!cfg || !sc)
		return 0;
	if (name_rules_on && df_match_name(wire_len))
		v = bpf_map_lookup_elem(&name_rules, &sc->match);
	if (!question_verdict(v, &j))
		judge_default(cfg, &j);
	return j.verdict == DF_DENY;
}

/* a DNS message's start and length as df_dns_reading returns them (len at most 0xffff) */
#define READING(off, len) ((__u32)(off) | ((__u32)((len) > 0xffff ? 0xffff : (len)) << 16))

/*
 * The reading of a DNS message over TCP that egress judges, of the message
 * dns_start found at off (len bytes; framing: what dns_start returned), as
 * READING(off, len): the other reading (with the length when dns_start read
 * without it, or without when it read with it) when that is a query of one
 * name and either the first reading is an answer or the other's question is
 * refused; else the first. Global: the verifier walks it once, and egress goes on
 * from one unknown offset and length instead of once per reading.
 */
__attribute__((noinline)) int df_dns_reading(struct __sk_buff *skb, __u32 off, __u32 len,
					     __u32 framing)
{
	__u32 keep = READING(off, len), aoff, alen;
	struct dnshdr h;
	__u16 w[2]; /* the other reading's flags and qdcount */
	int n;

	if (!skb || framing == DNS_UDP || len < sizeof(h) || off < 2 ||
	    bpf_skb_load_bytes(skb, off, &h, sizeof(h)))
		return keep;
	if (framing == DNS_TCP_LEN) {
		aoff = off - 2;
		alen = skb->len > aoff ? skb->len - aoff : 0;
	} else {
		/* read without a length, the id is one */
		alen = bpf_ntohs(h.id);
		if (alen < sizeof(h) || len < 2 + sizeof(h))
			return keep;
		aoff = off + 2;
		alen = alen < len - 2 ? alen : len - 2; /* cut where the segment ends */
	}
	if (alen < sizeof(h) || bpf_skb_load_bytes(skb, aoff + 2, w, sizeof(w)) ||
	    !one_question(bpf_ntohs(w[0]), bpf_ntohs(w[1])))
		return keep;
	if (bpf_ntohs(h.flags) & 0x8000)
		return READING(aoff, alen);
	n = df_parse_name(skb, aoff + sizeof(h), alen - sizeof(h));
	if (n > 0 && df_question_denied((__u32)n))
		return READING(aoff, alen);
	return keep;
}

/*
 * Judge a question whose name df_parse_name left in scratch (len > 0), or
 * that could not be parsed to a name (len <= 0: the default verdict, recorded
 * as unparsable). Keeps the dotted name for the report.
 */
static __always_inline void judge_question(const struct df_config *cfg, struct df_dns_scratch *sc,
					   int len, struct judged *j, struct df_name_key *target,
					   struct df_name_id *name)
{
	const struct df_prefix_val *v = NULL;

	sc->q_some_deny = 0;
	if (len <= 0) {
		judge_default(cfg, j);
		j->rule_id = DF_RULE_UNPARSABLE;
		return;
	}
	name->h1 = sc->sh1[0];
	name->h2 = sc->sh2[0];
	target->kind = NO_TARGET;
	if (name_rules_on && df_match_name((__u32)len)) {
		*target = sc->match;
		v = bpf_map_lookup_elem(&name_rules, target);
	}
	if (v && (v->flags & DF_PV_SOME_DENY))
		sc->q_some_deny = 1;
	if (!question_verdict(v, j))
		judge_default(cfg, j);
	/* through memory: what follows is walked once, not once per entry that could decide (5.10) */
	sc->q_rule = j->rule_id;
	sc->q_verdict = j->verdict;
	j->rule_id = REREAD(sc->q_rule);
	j->verdict = (__u8)REREAD(sc->q_verdict);
	/*
	 * The text once per name: a lookup takes no lock, an update does, and a
	 * name asked again on this CPU (a loop, a retry) needs neither (the map
	 * never drops a name).
	 */
	if (sc->named.h1 == name->h1 && sc->named.h2 == name->h2)
		return;
	if (bpf_map_lookup_elem(&names, name) ||
	    bpf_map_update_elem(&names, name, sc->dotted, BPF_NOEXIST) == 0)
		sc->named = *name;
}

/* The event a question's verdict makes in this mode; refusals counted. */
static __always_inline __u8 question_event(const struct df_config *cfg, struct df_counters *c,
					   const struct judged *j)
{
	if (j->verdict == DF_ALLOW)
		return DF_EV_ALLOWED;
	if (cfg->mode != DF_MODE_ENFORCE)
		return DF_EV_WOULD_BLOCK;
	__sync_fetch_and_add(&c->dns_blocked, 1);
	return DF_EV_BLOCKED;
}

static __always_inline void pending_key(struct df_pending_key *k, const struct pkt *p, __u16 txid,
					int answer)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = p->family;
	k->proto = p->proto;
	k->txid = txid;
	/* a question goes client -> resolver, its answer resolver -> client */
	k->resolver_port = answer ? p->sport : p->dport;
	k->client_port = answer ? p->dport : p->sport;
	if (p->family == 4)
		__builtin_memcpy(k->resolver, answer ? p->saddr : p->daddr, 4);
	else
		__builtin_memcpy(k->resolver, answer ? p->saddr : p->daddr, 16);
}

/*
 * The pending table (see struct df_pending_slot). A map update or delete
 * takes a bucket lock with interrupts off, twice per question and answer with
 * an LRU hash: on a virtual machine, where turning interrupts back on is a
 * call to the hypervisor, that was most of what the fence cost a DNS query.
 * These write map memory with plain stores instead.
 */
static __always_inline __u32 pending_set(const struct df_pending_key *k)
{
	return (__u32)avalanche(fold_words(0, (const __u32 *)k, sizeof(*k) / 4)) &
	       (DF_PENDING_SETS - 1);
}

/*
 * Keyed by the fence's secret hash bases: a torn slot (key and val from two
 * writers) matches only if its contents fold to the same value, which data
 * that differs does by chance alone (about 2^-64).
 */
static __always_inline __u64 pending_check(const struct df_config *cfg, const struct df_pending_slot *s)
{
	__u64 seed = (__u64)cfg->hash_b1 << 32 | cfg->hash_b2, h;

	h = fold_words(seed, (const __u32 *)&s->key, sizeof(s->key) / 4);
	h = fold_words(h, (const __u32 *)&s->val, sizeof(s->val) / 4);
	return avalanche(h ^ seed) | 1;
}

static __always_inline int same_key(const struct df_pending_key *a, const struct df_pending_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	__u32 d = 0;

	for (__u32 i = 0; i < sizeof(*a) / 4; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

/* Remember the question in scratch (qk, q): an empty slot of its set, or the oldest. */
__attribute__((noinline)) int df_pending_put(__u64 now)
{
	const struct df_config *cfg;
	struct df_dns_scratch *sc;
	struct df_pending_slot *s, *pick = NULL;
	__u32 zero = 0, base, idx;
	__u64 oldest = ~0ULL;

	cfg = bpf_map_lookup_elem(&config, &zero);
	sc = scratch_here();
	if (!cfg || !sc)
		return 0;
	base = pending_set(&sc->qk) * DF_PENDING_WAYS;
	for (__u32 w = 0; w < DF_PENDING_WAYS; w++) {
		idx = base + w;
		s = bpf_map_lookup_elem(&pending, &idx);
		if (!s)
			return 0;
		if (s->check == 0 || same_key(&s->key, &sc->qk)) {
			pick = s;
			break;
		}
		if (s->val.sent_ns < oldest) {
			oldest = s->val.sent_ns;
			pick = s;
		}
	}
	if (!pick)
		return 0;
	pick->check = 0;
	asm volatile("" ::: "memory");
	pick->key = sc->qk;
	pick->val = sc->q;
	pick->val.sent_ns = now;
	asm volatile("" ::: "memory");
	pick->check = pending_check(cfg, pick);
	return 1;
}

/*
 * The question the answer keyed by scratch->qk answers, into scratch->q, and
 * its slot and check into scratch->q_slot and q_check: 1, or 0 when none
 * waits. It stays waiting until df_pending_drop().
 */
__attribute__((noinline)) int df_pending_look(void)
{
	const struct df_config *cfg;
	struct df_dns_scratch *sc;
	struct df_pending_slot *s;
	__u32 zero = 0, base, idx;

	cfg = bpf_map_lookup_elem(&config, &zero);
	sc = scratch_here();
	if (!cfg || !sc)
		return 0;
	sc->q_check = 0;
	base = pending_set(&sc->qk) * DF_PENDING_WAYS;
	for (__u32 w = 0; w < DF_PENDING_WAYS; w++) {
		__u64 check;

		idx = base + w;
		s = bpf_map_lookup_elem(&pending, &idx);
		if (!s)
			return 0;
		check = s->check;
		if (check == 0 || !same_key(&s->key, &sc->qk))
			continue;
		sc->q = s->val;
		/* what was read is what was written together (no torn or stale slot) */
		if (pending_check(cfg, s) != check)
			return 0;
		sc->q_slot = idx;
		sc->q_check = check;
		return 1;
	}
	return 0;
}

/* Empty the slot df_pending_look() found, unless it was rewritten since. */
__attribute__((noinline)) int df_pending_drop(void)
{
	struct df_dns_scratch *sc;
	struct df_pending_slot *s;
	__u32 idx;

	sc = scratch_here();
	if (!sc)
		return 0;
	idx = sc->q_slot;
	s = bpf_map_lookup_elem(&pending, &idx);
	if (s && sc->q_check && s->check == sc->q_check)
		s->check = 0;
	sc->q_check = 0;
	return 1;
}

/* ------------------------------------------------------------------------
 * The egress backstop: packets that no connect or sendmsg program judged
 * (raw sockets, ICMP, sockets connected before the fence) are judged here by
 * destination, against the same rules, and refused in enforce mode. Sockets
 * already judged carry a mark (sk_marks) and pass after one lookup; in a
 * fresh fence (DF_CFG_FRESH) TCP stream sockets pass unmarked.
 * ------------------------------------------------------------------------ */

#define TCP_LISTEN_ 10

/*
 * Always on in a fence. tests/unit/test_bpf_dns.c turns it off: the socket
 * BPF_PROG_TEST_RUN makes up was judged by no connect or sendmsg, and that
 * table is about DNS; the backstop is tested with real sockets instead.
 */
const volatile __u32 backstop_on = 1;

/*
 * A packet whose port is not seen (ICMP, raw IP of other protocols, IPv6
 * extension headers, later fragments) may carry anything: most specific
 * first, a rule for every port and protocol decides it; before one, a rule
 * that refuses some port or protocol of the address refuses it too; rules
 * that allow only some ports are passed over.
 */
static __always_inline int scan_portless(const struct df_prefix_val *v, struct judged *j)
{
	__u32 n = v->n;

	for (__u32 i = 0; i < DF_MAX_ENTRIES; i++) {
		const struct df_entry *e = &v->e[i];

		if (i >= n)
			break;
		if (!(entry_all(e) | OPAQUE_ZERO(e->verdict ^ DF_DENY)))
			continue;
		j->verdict = e->verdict;
		j->rule_id = e->rule_id;
		return 1;
	}
	return 0;
}

static __always_inline int bs_scan(const struct df_prefix_val *v, __u8 pbit, __u16 port,
				   int portless, struct judged *j)
{
	if (!v)
		return 0;
	return portless ? scan_portless(v, j) : scan_entries(v, pbit, port, j);
}

/*
 * The packet the slow path judges (global functions take no pointers to the
 * stack on 5.10) and its locals: with df_egress's frame (352 bytes) its own
 * must stay within 160, as the verifier allows 512 for the two on 5.10 and 6.1.
 */
struct bs_scratch {
	struct pkt p;
	struct task_info t;
	struct df_name_id name;
	struct df_name_key target;
	struct judged nj;
	struct df_key4 k4;
	struct df_key6 k6;
	struct addr6 a6;
	__u64 cookie;
};

/* by nesting level, as scratch */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DF_SCRATCH_LEVELS);
	__type(key, __u32);
	__type(value, struct bs_scratch);
} bs_pkt SEC(".maps");

static __always_inline struct bs_scratch *bs_here(void)
{
	__u32 l = scratch_level();

	return bpf_map_lookup_elem(&bs_pkt, &l);
}

/* As judge_provenance, for a packet whose port may be unseen. */
static __always_inline void bs_provenance(struct bs_scratch *bs, const struct df_prov *pv,
					  __u8 pbit, __u16 port, int portless, struct judged *j)
{
	if (!pv || pv->expires_ns < bpf_ktime_get_ns())
		return;
	bs->name = pv->name;
	if (pv->target.kind > DF_NAME_MANY)
		return;
	bs->target = pv->target;
	if (!bs_scan(bpf_map_lookup_elem(&name_rules, &bs->target), pbit, port, portless, &bs->nj))
		return;
	if (j->rule_id == DF_RULE_DEFAULT || bs->nj.verdict == DF_DENY || j->verdict != DF_DENY)
		*j = bs->nj;
}

/*
 * Source routes. A socket may carry a route of its own (IPV6_RTHDR, IP_OPTIONS
 * with LSRR or SSRR): the kernel then writes the route's first hop as the
 * packet's destination and the address connect or sendmsg judged as its last,
 * so the packet goes first where no program judged it. Such a packet is
 * refused whatever its addresses (see DF_RULE_SOURCE_ROUTE), before the
 * backstop's fast paths pass it on its socket's mark or freshness.
 */

/*
 * An IPv4 header of hl bytes: a loose or strict source route among its
 * options? 1 or 0. Global, as df_route6: what follows them is walked once,
 * not once per exit of their loops.
 */
__attribute__((noinline)) int df_route4(struct __sk_buff *skb, __u32 hl)
{
	__u32 off = 20, step, nop;
	__u8 h[2];

	if (!skb)
		return 0;
	/* each option takes a byte at least: 40 steps cover the most an IHL holds */
	for (__u32 i = 0; i < 40; i++) {
		if (off >= hl)
			return 0;
		/* a packet ends past its options: unreadable ones are not let through */
		if (bpf_skb_load_bytes(skb, off, h, 2))
			return 1;
		if (h[0] == IPOPT_END_)
			return 0;
		if (h[0] == IPOPT_LSRR_ || h[0] == IPOPT_SSRR_)
			return 1;
		/* a no-op is one byte, any other option says its length: one path a step */
		nop = OPAQUE_ZERO(h[0] ^ IPOPT_NOOP_);
		step = nop + (nop ^ 1) * h[1];
		if (step + nop < 2)
			return 1; /* a length below 2: nothing after it can be read */
		off += step;
	}
	return 0;
}

/* an IPv6 header chain that routes the packet but cannot be read or walked */
#define ROUTE6_UNREAD 0xffff

/*
 * IPv6 headers from nh: a routing header, first or after hop-by-hop and
 * destination options? Then where the header after it is (at least 40), or
 * ROUTE6_UNREAD (a chain longer than the kernel writes, or cut short: not
 * walked, not let through); else 0.
 */
__attribute__((noinline)) int df_route6(struct __sk_buff *skb, __u32 nh)
{
	__u32 off = 40;
	__u8 h[2];

	if (!skb)
		return 0;
	for (__u32 i = 0; i < DF_EXT_WALK; i++) {
		if (nh != IPPROTO_HOPOPTS_ && nh != IPPROTO_DSTOPTS_)
			break;
		if (bpf_skb_load_bytes(skb, off, h, 2))
			return ROUTE6_UNREAD;
		nh = h[0];
		off += ((__u32)h[1] + 1) * 8;
	}
	if (nh == IPPROTO_ROUTING_)
		return off < ROUTE6_UNREAD ? (int)off : ROUTE6_UNREAD;
	return nh == IPPROTO_HOPOPTS_ || nh == IPPROTO_DSTOPTS_ ? ROUTE6_UNREAD : 0;
}

/*
 * Routed past its destination? 1, with the packet parsed into bs_pkt (or no
 * slot there: not judged, so not let through), or 0. Global: verified once,
 * and egress's own frame keeps its size (512 bytes for the two on 5.10, 6.1).
 * The walk comes before the parse, so it is verified once, not once per
 * path of the parse.
 */
__attribute__((noinline)) int df_routed(struct __sk_buff *skb)
{
	struct bs_scratch *bs = bs_here();
	__u32 off, v4;
	__u8 h[8];
	__u16 ports[2];

	if (!skb)
		return 0;
	if (!bs)
		return 1;
	if (bpf_skb_load_bytes(skb, 0, h, sizeof(h)))
		return 0;
	v4 = (h[0] >> 4) == 4;
	off = v4 ? df_route4(skb, (h[0] & 0xf) * 4) : df_route6(skb, h[6]);
	if (!off)
		return 0;
	__builtin_memset(&bs->p, 0, sizeof(bs->p));
	if (parse_pkt(skb, &bs->p) < 0)
		return 1; /* (not IP as the socket says: the walk read it as its version says) */
	if (v4 || off == ROUTE6_UNREAD)
		return 1;
	/* what it carries, for the report: the header after the route, and its ports */
	if (bpf_skb_load_bytes(skb, off, h, 2) == 0) {
		bs->p.proto = h[0];
		off += ((__u32)h[1] + 1) * 8;
		if ((h[0] == IPPROTO_TCP_ || h[0] == IPPROTO_UDP_) &&
		    bpf_skb_load_bytes(skb, off, ports, sizeof(ports)) == 0) {
			bs->p.sport = bpf_ntohs(ports[0]);
			bs->p.dport = bpf_ntohs(ports[1]);
		}
	}
	return 1;
}

/* Count a judged packet in bs_pkt, record it as the mode asks: its verdict for skb. */
static __always_inline int bs_finish(struct __sk_buff *skb, const struct df_config *cfg,
				     struct bs_scratch *bs, const struct judged *j, __u16 port)
{
	__u8 ev = count_verdict(cfg, j->verdict);

	if (ev != DF_EV_ALLOWED || cfg->mode == DF_MODE_OBSERVE) {
		if (skb_task_helpers) {
			current_task(&bs->t);
		} else {
			struct task_info *o;

			bs->cookie = bpf_get_socket_cookie(skb);
			o = bpf_map_lookup_elem(&sock_owner, &bs->cookie);
			if (o)
				bs->t = *o;
		}
		record(ev, DF_HOOK_EGRESS, bs->p.proto, bs->p.family, bs->p.daddr, port, j->rule_id,
		       &bs->name, 0, &bs->t);
	}
	return ev == DF_EV_BLOCKED ? SKB_DROP : SKB_PASS;
}

/*
 * The slow path: judge the packet in bs_pkt by destination, count and record
 * it as connect does. A global function: verified once, not once per caller.
 */
__attribute__((noinline)) int df_backstop_judge(struct __sk_buff *skb, int portless)
{
	const struct df_config *cfg;
	const struct df_prefix_val *rule;
	const struct df_prov *pv;
	struct bs_scratch *bs;
	struct judged j;
	struct pkt *p;
	__u32 zero = 0;
	__u16 port;
	__u8 pbit;

	cfg = bpf_map_lookup_elem(&config, &zero);
	bs = bs_here();
	if (!cfg || !bs || !skb)
		return SKB_PASS;
	p = &bs->p;
	__builtin_memset(&bs->t, 0, sizeof(bs->t));
	__builtin_memset(&bs->name, 0, sizeof(bs->name));
	port = portless ? 0 : p->dport;
	pbit = portless ? DF_PROTO_OTHER : proto_bit(p->proto);
	judge_default(cfg, &j);
	/* only the lookups by family: the scans after them are inlined once, not once a family */
	if (p->family == 4) {
		bs->k4.prefixlen = 32;
		bs->k4.addr = p->daddr[0];
		rule = addr_may_match(0, p->daddr[0]) ? bpf_map_lookup_elem(&rules4, &bs->k4) : NULL;
		pv = bpf_map_lookup_elem(&prov4, &p->daddr[0]);
	} else {
		bs->k6.prefixlen = 128;
		__builtin_memcpy(bs->k6.addr, p->daddr, 16);
		__builtin_memcpy(bs->a6.a, p->daddr, 16);
		rule = addr_may_match(1, p->daddr[0]) ? bpf_map_lookup_elem(&rules6, &bs->k6) : NULL;
		pv = bpf_map_lookup_elem(&prov6, &bs->a6);
	}
	if (!bs_scan(rule, pbit, port, portless, &j))
		judge_default(cfg, &j);
	bs_provenance(bs, pv, pbit, port, portless, &j);
	return bs_finish(skb, cfg, bs, &j, port);
}

/*
 * Refuse the source-routed packet df_routed left in bs_pkt, whatever its
 * addresses (DF_RULE_SOURCE_ROUTE): counted and recorded as the backstop's.
 */
__attribute__((noinline)) int df_refuse_routed(struct __sk_buff *skb)
{
	const struct df_config *cfg;
	struct bs_scratch *bs;
	struct judged j = { .rule_id = DF_RULE_SOURCE_ROUTE, .verdict = DF_DENY };
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&config, &zero);
	bs = bs_here();
	if (!cfg || !skb)
		return SKB_PASS;
	/* no slot (nested too deep): not judged, so not let through */
	if (!bs)
		return cfg->mode == DF_MODE_ENFORCE ? SKB_DROP : SKB_PASS;
	__builtin_memset(&bs->t, 0, sizeof(bs->t));
	__builtin_memset(&bs->name, 0, sizeof(bs->name));
	return bs_finish(skb, cfg, bs, &j, bs->p.dport);
}

/*
 * The fast path. A socket marked with this destination by connect or
 * sendmsg, or a connection accepted by a listener, passes, as does a TCP
 * stream socket of a fresh fence (DF_CFG_FRESH); so do packets of
 * request and time-wait sockets (SYN-ACKs and closing ACKs of passive opens
 * and finished connections). Everything else is judged, and a socket whose
 * packet was let through is marked so its next packets take the fast path.
 */
static __always_inline int backstop(struct __sk_buff *skb, struct pkt *p, int portless)
{
	const struct df_config *cfg;
	struct bpf_sock *sk = skb->sk;
	struct df_sk_mark *m;
	struct bs_scratch *slot;
	__u32 zero = 0;
	int r;

	if (!backstop_on || !sk)
		return SKB_PASS;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return SKB_PASS;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (cfg && fresh_stream(cfg, sk))
		return SKB_PASS;
	m = bpf_sk_storage_get(&sk_marks, sk, 0, 0);
	if (m) {
		if (m->flags & (DF_MARK_PASSIVE | DF_MARK_JUDGED))
			return SKB_PASS;
		if (m->family == p->family && m->proto == p->proto &&
		    m->dport == (portless ? 0 : p->dport) && m->daddr[0] == p->daddr[0] &&
		    (p->family == 4 || (m->daddr[1] == p->daddr[1] && m->daddr[2] == p->daddr[2] &&
					m->daddr[3] == p->daddr[3])))
			return SKB_PASS;
	}
	slot = bs_here();
	if (!slot)
		return SKB_PASS;
	slot->p = *p;
	/* a global function's result is any value to the verifier: name the two */
	r = df_backstop_judge(skb, portless) == SKB_DROP ? SKB_DROP : SKB_PASS;
	if (r == SKB_PASS) {
		m = bpf_sk_storage_get(&sk_marks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (m)
			mark_dest(m, p->family, p->proto, portless ? 0 : p->dport, p->daddr);
	}
	return r;
}

/*
 * A TCP listener in the fence (sk a full socket or NULL): the connections it
 * accepts inherit the passive mark.
 */
static __always_inline void mark_listener(struct bpf_sock *sk)
{
	struct df_sk_mark *m;

	if (!sk || sk->state != TCP_LISTEN_ || sk->protocol != IPPROTO_TCP_)
		return;
	m = bpf_sk_storage_get(&sk_marks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (m && !(m->flags & DF_MARK_PASSIVE))
		m->flags |= DF_MARK_PASSIVE;
}

static __always_inline int same_addr(__u8 family, const __u32 *a, const __u32 *b)
{
	return a[0] == b[0] && (family == 4 || (a[1] == b[1] && a[2] == b[2] && a[3] == b[3]));
}

/*
 * Where the socket sending a packet meant it to go. A NAT rule in the job's
 * own network namespace rewrites a packet after connect or sendmsg judged its
 * destination (Docker's embedded DNS turns 127.0.0.11:53 into another port),
 * and the answer comes back from the destination judged, the rule undone.
 * Only TCP stream and UDP datagram sockets, whose headers the kernel writes
 * from the socket or the send: a raw socket's packet says where it goes. A
 * UDP packet addressed where sendmsg last let its socket send was not moved
 * (a connected socket may sendto elsewhere); otherwise an unconnected socket
 * meant that destination and a connected one its peer.
 *
 * 1 when either port is a DNS port, and then into scratch's to_addr and
 * to_port: the socket's destination, and to_moved 1, when it is not the
 * packet's (dport, and the address in its IP header); else the packet's, and
 * to_moved 0. A packet whose socket and header name no DNS port costs no more
 * than the socket's fields (and a storage lookup for an unconnected UDP
 * socket). Global, so the verifier walks it once, not once per path of egress
 * around it (and egress holds nothing across it).
 */
__attribute__((noinline)) int df_sent_to(struct __sk_buff *skb, __u32 family, __u32 proto,
					 __u32 dport)
{
	const struct df_config *cfg;
	struct df_dns_scratch *sc;
	struct df_sk_mark *m = NULL;
	struct bpf_sock *sk;
	__u32 zero = 0, a[4] = {}, pkt[4] = {};
	__u16 port = 0; /* the socket's destination port; 0: none known */
	int connected = 0;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!skb || !cfg)
		return 0;
	sk = skb->sk;
	if (sk)
		sk = bpf_sk_fullsock(sk);
	if (sk && sk->protocol == proto &&
	    sk->type == (proto == IPPROTO_TCP_ ? SOCK_STREAM_ : SOCK_DGRAM_)) {
		port = bpf_ntohs((__u16)sk->dst_port);
		connected = port != 0;
		if (port && family == 4 && sk->family == AF_INET_) {
			a[0] = sk->dst_ip4;
		} else if (port && sk->family == AF_INET6_) {
			a[0] = sk->dst_ip6[0];
			a[1] = sk->dst_ip6[1];
			a[2] = sk->dst_ip6[2];
			a[3] = sk->dst_ip6[3];
			if (family == 4) {
				/* a dual-stack socket's IPv4 peer, ::ffff:a.b.c.d */
				port = v4_mapped(a) ? port : 0;
				a[0] = a[3];
				a[1] = a[2] = a[3] = 0;
			}
		} else if (!port && proto == IPPROTO_UDP_) {
			m = bpf_sk_storage_get(&sk_marks, sk, 0, 0);
			if (m && m->s_family == family && m->s_port) {
				port = m->s_port;
				a[0] = m->s_addr[0];
				if (family == 6) {
					a[1] = m->s_addr[1];
					a[2] = m->s_addr[2];
					a[3] = m->s_addr[3];
				}
			}
		} else {
			port = 0;
		}
	}
	/* most packets: neither the packet nor its socket names a DNS port */
	if (!is_dns_port(cfg, (__u16)dport) && !(port && is_dns_port(cfg, port)))
		return 0;
	sc = scratch_here();
	if (!sc)
		return 1;
	/* the packet's destination: its IP header is at the start */
	bpf_skb_load_bytes(skb, family == 4 ? 16 : 24, pkt, family == 4 ? 4 : 16);
	sc->to_moved = 0;
	sc->to_port = (__u16)dport;
	__builtin_memcpy(sc->to_addr, pkt, sizeof(pkt));
	if (!port)
		return 1;
	if (connected && proto == IPPROTO_UDP_) {
		m = bpf_sk_storage_get(&sk_marks, sk, 0, 0);
		/* sent where sendmsg last let it: a sendto past the connected peer */
		if (m && m->s_family == family && m->s_port == (__u16)dport &&
		    same_addr(family, m->s_addr, pkt))
			return is_dns_port(cfg, (__u16)dport);
	}
	if (port != (__u16)dport || !same_addr(family, a, pkt)) {
		__builtin_memcpy(sc->to_addr, a, sizeof(a));
		sc->to_port = port;
		sc->to_moved = 1;
	}
	return is_dns_port(cfg, (__u16)dport) || is_dns_port(cfg, port);
}

/*
 * A DNS answer leaving the fence from a DNS port, whatever port it goes to:
 * the question it answers (its key reversed) is cancelled, so the answer,
 * when it comes back in, is no answer to a question of this fence.
 */
static __always_inline void answer_leaves(const struct pkt *p, __u16 txid)
{
	struct df_dns_scratch *sc = scratch_here();

	if (!sc)
		return;
	pending_key(&sc->qk, p, txid, 1);
	if (df_pending_look())
		df_pending_drop();
}

/* what egress_run leaves to the backstop, besides SKB_PASS and SKB_DROP */
#define TO_BACKSTOP 2
#define TO_BACKSTOP_PORTLESS 3


/*
 * A packet's verdict, or TO_BACKSTOP(_PORTLESS) with the packet in p: the
 * caller runs the backstop from one place, so the verifier walks it once
 * rather than once per return (old verifiers prune little across them).
 */
static __always_inline int egress_run(struct __sk_buff *skb, struct pkt *p)
{
	const struct df_config *cfg;
	struct df_dns_scratch *sc;
	struct df_counters *c;
	struct dnshdr h;
	struct judged j;
	__u32 zero = 0;
	__u16 qtype = 0, flags;
	int len, refuse = 0, framing;
	__u32 reading;
	__u8 ev;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return SKB_PASS;
	len = parse_pkt(skb, p);
	if (len < 0)
		return SKB_PASS;
	if (len > 0)
		return TO_BACKSTOP_PORTLESS;
	/* a DNS server inside the fence answering: never trusted as provenance */
	if (is_dns_port(cfg, p->sport) && !is_dns_port(cfg, p->dport)) {
		if (dns_start(skb, p) < 0 || bpf_skb_load_bytes(skb, p->off, &h, sizeof(h)))
			return TO_BACKSTOP;
		if (bpf_ntohs(h.flags) & 0x8000)
			answer_leaves(p, h.id);
		return TO_BACKSTOP;
	}
	/* a question: to a DNS port, as the packet or its socket says */
	if (!df_sent_to(skb, p->family, p->proto, p->dport))
		return TO_BACKSTOP;
	framing = dns_start(skb, p);
	if (framing < 0 || bpf_skb_load_bytes(skb, p->off, &h, sizeof(h)))
		return TO_BACKSTOP;
	/*
	 * An answer to a client whose port is a DNS port too: from a DNS
	 * port, it cancels its question as any answer from inside.
	 */
	if ((bpf_ntohs(h.flags) & 0x8000) && is_dns_port(cfg, p->sport))
		answer_leaves(p, h.id);
	/* over TCP, the reading that asks (or is refused), when the guess is not it */
	reading = df_dns_reading(skb, p->off, p->len, (__u32)framing);
	p->off = reading & 0xffff;
	p->len = reading >> 16;
	if (bpf_skb_load_bytes(skb, p->off, &h, sizeof(h)))
		return TO_BACKSTOP;
	flags = bpf_ntohs(h.flags);
	if (flags & 0x8000)
		return TO_BACKSTOP; /* an answer (to a DNS port client): not a question */

	sc = scratch_here();
	c = bpf_map_lookup_elem(&counters, &zero);
	/* no scratch (nested deeper than DF_SCRATCH_LEVELS): not judged, so not let through */
	if (!sc || !c) {
		if (cfg->mode == DF_MODE_ENFORCE)
			return SKB_DROP;
		return TO_BACKSTOP;
	}
	__sync_fetch_and_add(&c->dns_queries, 1);

	len = -1;
	if (((flags >> 11) & 0xf) == 0 && bpf_ntohs(h.qd) == 1)
		len = df_parse_name(skb, p->off + sizeof(h), p->len - sizeof(h));
	if (len > 0 && bpf_skb_load_bytes(skb, p->off + sizeof(h) + len, &qtype, 2) == 0)
		qtype = bpf_ntohs(qtype);
	if (len <= 0)
		__sync_fetch_and_add(&c->dns_unparsable, 1);
	/* the question as the pending table keeps it, built in scratch (the stack is full) */
	__builtin_memset(&sc->q, 0, sizeof(sc->q));
	judge_question(cfg, sc, len, &j, &sc->q.target, &sc->q.name);
	/*
	 * refused, or refused on some port or protocol (tcp/x:443): either
	 * way another name resolving to its addresses must not take them over
	 */
	sc->q.deny = j.verdict == DF_DENY || REREAD(sc->q_some_deny);
	ev = question_event(cfg, c, &j);
	refuse = ev == DF_EV_BLOCKED;
	if (ev != DF_EV_ALLOWED || cfg->mode == DF_MODE_OBSERVE) {
		struct task_info t = {};

		if (skb_task_helpers) {
			current_task(&t);
		} else {
			__u64 cookie = bpf_get_socket_cookie(skb);
			struct task_info *o = bpf_map_lookup_elem(&sock_owner, &cookie);

			if (o)
				t = *o;
		}
		/* the resolver the job asked, which its rules name */
		record(ev, DF_HOOK_DNS, p->proto, p->family, sc->to_addr, sc->to_port, j.rule_id,
		       &sc->q.name, qtype, &t);
	}
	if (refuse)
		return SKB_DROP;
	if (len > 0) {
		__u64 now = bpf_ktime_get_ns();

		pending_key(&sc->qk, p, h.id, 0);
		df_pending_put(now);
		/*
		 * Moved by a NAT rule, the answer comes from the socket's destination;
		 * moved by another cgroup's sendmsg program (a socket load balancer),
		 * from the packet's: the question waits under both.
		 */
		if (sc->to_moved) {
			__builtin_memcpy(sc->qk.resolver, sc->to_addr, sizeof(sc->qk.resolver));
			sc->qk.resolver_port = sc->to_port;
			df_pending_put(now);
		}
	}
	return TO_BACKSTOP;
}

/*
 * An IP header straight to TCP: IPv4 without options, IPv6 without extension
 * headers (the packet data starts at the IP header). Anything else may carry
 * a route the socket was given (IPV6_RTHDR, IP_OPTIONS): egress_run reads it.
 * One byte for IPv4, two for IPv6, no helper call.
 */
static __always_inline int plain_ip(struct __sk_buff *skb)
{
	__u8 *d = (__u8 *)(long)skb->data, *end = (__u8 *)(long)skb->data_end;

	if (d + 8 > end)
		return 0;
	return d[0] == 0x45 || ((d[0] >> 4) == 6 && d[6] == IPPROTO_TCP_);
}

/*
 * IPv4 options, or an IPv6 extension header that is or may come before a
 * routing header (or a header not in the linear data): df_routed looks.
 */
static __always_inline int may_route(struct __sk_buff *skb)
{
	__u8 *d = (__u8 *)(long)skb->data, *end = (__u8 *)(long)skb->data_end;

	if (d + 8 > end)
		return 1;
	if ((d[0] >> 4) == 4)
		return d[0] != 0x45;
	return d[6] == IPPROTO_HOPOPTS_ || d[6] == IPPROTO_ROUTING_ || d[6] == IPPROTO_DSTOPTS_;
}

/*
 * A packet of a quiet TCP connection (quiet_tcp) whose header routes it
 * nowhere else (plain_ip): most of a job's packets.
 */
static __always_inline int egress_quiet(struct __sk_buff *skb)
{
	const struct df_config *cfg;
	struct bpf_sock *sk = skb->sk;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&config, &zero);
	return cfg && sk && quiet_tcp(cfg, bpf_sk_fullsock(sk)) && plain_ip(skb);
}

SEC("cgroup_skb/egress")
int df_egress(struct __sk_buff *skb)
{
	struct pkt p = {};
	int r;

	/* passed before the nesting level is taken (and egress_run's set-up) */
	if (egress_quiet(skb))
		return SKB_PASS;
	scratch_enter();
	if (may_route(skb) && df_routed(skb) == 1) {
		/* refused before anything reads it as DNS or passes it on its socket */
		r = df_refuse_routed(skb) == SKB_DROP ? SKB_DROP : SKB_PASS;
	} else {
		r = egress_run(skb, &p);
		if (r == TO_BACKSTOP || r == TO_BACKSTOP_PORTLESS)
			r = backstop(skb, &p, r == TO_BACKSTOP_PORTLESS);
	}
	scratch_leave();
	return r;
}

/* ------------------------------------------------------------------------
 * DNS over TCP in enforce mode: a refused question fails the write.
 *
 * Egress can drop a TCP segment but not fail the send() that queued it: the
 * client would wait out its timeout while TCP retransmits into the drop. So
 * the fence's TCP connections to a DNS port join a sockhash when they are
 * established (sock_ops), and the hash's sk_msg program reads each question
 * in the write that carries it, before anything is queued: a refused one
 * fails that send() at once with EACCES (what sk_msg's SK_DROP returns).
 * Questions it lets through go on to egress, which judges, records and
 * remembers them as any other: this program records only what it refuses.
 * Loaded only for fences whose own mode is enforce and that have a name
 * rule or default deny; it passes everything while break-glass holds the
 * fence in audit.
 * ------------------------------------------------------------------------ */

/* the DNS header and the most of a question judging needs: name and type */
#define TCP_Q_JUDGE (2 + sizeof(struct dnshdr) + DF_DNS_NAME_MAX + 2)

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, DF_DNS_TCP_SOCKS);
	__type(key, __u64);
	__type(value, __u64);
} dns_socks SEC(".maps");

SEC("sockops")
int df_sockops(struct bpf_sock_ops *ops)
{
	const struct df_config *cfg;
	__u32 zero = 0;
	__u64 cookie;

	if (ops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB ||
	    (ops->family != AF_INET_ && ops->family != AF_INET6_))
		return 1;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !is_dns_port(cfg, (__u16)bpf_ntohl(ops->remote_port)))
		return 1;
	/* a full hash leaves the socket to egress: refused questions are dropped there */
	cookie = bpf_get_socket_cookie(ops);
	bpf_sock_hash_update(ops, &dns_socks, &cookie, BPF_ANY);
	return 1;
}

/*
 * Copy the question name, the avail bytes after the DNS header at off (0, or
 * 2 after a length; pulled into the message's first page), into scratch and
 * parse it.
 */
__attribute__((noinline)) int df_msg_parse_name(struct sk_msg_md *msg, __u32 off, __u32 avail)
{
	const struct df_config *cfg;
	struct df_dns_scratch *sc;
	__u32 zero = 0, n = avail;
	__u8 *data, *end;

	cfg = bpf_map_lookup_elem(&config, &zero);
	sc = scratch_here();
	if (!cfg || !sc || !msg || n == 0 || off > 2)
		return -1;
	if (n > DF_DNS_NAME_MAX)
		n = DF_DNS_NAME_MAX;
	data = msg->data;
	end = msg->data_end;
	for (__u32 i = 0; i < DF_DNS_NAME_MAX; i++) {
		__u32 o = off + sizeof(struct dnshdr) + i;
		__u8 *b;

		if (i >= n)
			break;
		BOUND(o, 511);
		b = data + o;
		if (b + 1 > end)
			return -1;
		sc->buf[i] = *b;
	}
	/* bounded after the copy: before it, the verifier would walk the copy once per length */
	return parse_name(sc, cfg, name_window(n));
}

static __always_inline int pass_message(struct sk_msg_md *msg, __u32 len)
{
	bpf_msg_apply_bytes(msg, len);
	return SK_PASS;
}

static __always_inline int dns_msg_run(struct sk_msg_md *msg)
{
	const struct df_config *cfg;
	struct df_dns_scratch *sc;
	struct df_counters *c;
	struct df_name_key target;
	struct df_name_id name = {};
	struct task_info t = {};
	struct judged j;
	__u32 zero = 0, size, want, need, off, pl, daddr[4] = {};
	__u16 qtype = 0, flags, qd;
	__u8 *data, *end, family;
	int len = -1;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || cfg->mode != DF_MODE_ENFORCE)
		return SK_PASS;
	/*
	 * Each run starts where a message does: its length, then the message
	 * (or, read as in dns_start, the message without it). Written in pieces
	 * (a length alone, a question a few bytes a write), it is held back
	 * (corked) until enough of it is there to be judged whole: the send()
	 * that completes it gets the verdict, those before it returned at once.
	 */
	size = msg->size;
	if (size < 2 + sizeof(struct dnshdr)) {
		bpf_msg_cork_bytes(msg, 2 + sizeof(struct dnshdr));
		return SK_PASS;
	}
	need = size < TCP_Q_JUDGE ? size : TCP_Q_JUDGE;
	if (bpf_msg_pull_data(msg, 0, need, 0))
		return pass_message(msg, size);
	data = msg->data;
	end = msg->data_end;
	if (data + 2 + sizeof(struct dnshdr) > end)
		return pass_message(msg, size);
	pl = (__u32)data[0] << 8 | data[1];
	/*
	 * Read as the resolver reads the stream: the socket is in the hash from
	 * its first byte, a verdict holds to the end of its message
	 * (apply_bytes) and a piece of one is held until there is enough of it
	 * (cork), so each run starts where a message does, with its length.
	 * (Egress, which sees segments, not writes, has to guess: dns_start.)
	 * A pass holds for the rest of this message only; a refusal for the
	 * whole write: nothing of it is sent and send() fails (a pass before it
	 * in the same write was sent: send() returns those bytes).
	 */
	off = 2;
	flags = (__u16)data[4] << 8 | data[5];
	qd = (__u16)data[6] << 8 | data[7];
	want = pl + 2;
	if ((flags & 0x8000) || pl < sizeof(struct dnshdr))
		return pass_message(msg, want); /* an answer, or too short to ask anything */
	/* the message, as far as judging needs, before anything of it goes */
	if (size < want && size < TCP_Q_JUDGE) {
		bpf_msg_cork_bytes(msg, want < TCP_Q_JUDGE ? want : TCP_Q_JUDGE);
		return SK_PASS;
	}

	sc = scratch_here();
	c = bpf_map_lookup_elem(&counters, &zero);
	if (!sc || !c)
		return pass_message(msg, want);
	if (((flags >> 11) & 0xf) == 0 && qd == 1)
		len = df_msg_parse_name(msg, off, need - off - sizeof(struct dnshdr));
	judge_question(cfg, sc, len, &j, &target, &name);
	if (j.verdict == DF_ALLOW)
		return pass_message(msg, want); /* egress counts and records it */
	__sync_fetch_and_add(&c->dns_queries, 1);
	if (len <= 0)
		__sync_fetch_and_add(&c->dns_unparsable, 1);
	if (question_event(cfg, c, &j) != DF_EV_BLOCKED)
		return pass_message(msg, want);
	if (len > 0) {
		__u32 q = off + sizeof(struct dnshdr) + (__u32)len;
		__u8 *b;

		BOUND(q, 511);
		b = (__u8 *)(long)msg->data + q;
		if (b + 2 <= (__u8 *)(long)msg->data_end)
			qtype = (__u16)b[0] << 8 | b[1];
	}
	family = 4;
	if (msg->family == AF_INET6_) {
		daddr[0] = msg->remote_ip6[0];
		daddr[1] = msg->remote_ip6[1];
		daddr[2] = msg->remote_ip6[2];
		daddr[3] = msg->remote_ip6[3];
		if (v4_mapped(daddr))
			daddr[0] = daddr[3]; /* ::ffff:a.b.c.d is reported as a.b.c.d, as egress sees it */
		else
			family = 6;
	} else {
		daddr[0] = msg->remote_ip4;
	}
	{
		__u64 id = bpf_get_current_pid_tgid();
		struct task_info *w = bpf_map_lookup_elem(&dns_writers, &id);

		if (w)
			t = *w;
		t.pid = (__u32)id;
		t.tgid = id >> 32;
		t.uid = (__u32)bpf_get_current_uid_gid();
	}
	record(DF_EV_BLOCKED, DF_HOOK_DNS, IPPROTO_TCP_, family, daddr,
	       (__u16)bpf_ntohl(msg->remote_port), j.rule_id, &name, qtype, &t);
	return SK_DROP;
}

SEC("sk_msg")
int df_dns_msg(struct sk_msg_md *msg)
{
	int r;

	scratch_enter();
	r = dns_msg_run(msg);
	scratch_leave();
	return r;
}

struct rr_fixed {
	__u16 type, class;
	__u32 ttl;
	__u16 rdlen;
} __attribute__((packed));

static __always_inline void learn(void *map, const void *key, const struct df_pending_val *q,
				  __u32 ttl, const struct df_config *cfg, __u64 now)
{
	struct df_prov np = {}, *old;
	__u64 t = ttl;

	if (t < cfg->ttl_floor_s)
		t = cfg->ttl_floor_s;
	np.name = q->name;
	np.target = q->target;
	np.deny = q->deny;
	np.expires_ns = now + t * 1000000000ULL;
	old = bpf_map_lookup_elem(map, key);
	/* an address a refused name resolved to stays refused until it expires */
	if (old && old->expires_ns > now && old->deny && !np.deny)
		return;
	/* the same answer again (a cache refreshing): move the expiry in place */
	if (old && old->name.h1 == np.name.h1 && old->name.h2 == np.name.h2 &&
	    old->target.h1 == np.target.h1 && old->target.h2 == np.target.h2 &&
	    old->target.kind == np.target.kind && old->deny == np.deny) {
		old->expires_ns = np.expires_ns;
		return;
	}
	if (bpf_map_update_elem(map, key, &np, BPF_ANY) == 0) {
		__u32 zero = 0;
		__u64 *g = bpf_map_lookup_elem(&prov_gen, &zero);

		/* after the update: a send judged from here on finds the address */
		if (g)
			__sync_fetch_and_add(g, 1);
	}
}

/* The offset just past the owner name at off (labels, or ending in a pointer), or -1. */
__attribute__((noinline)) int df_skip_name(struct __sk_buff *skb, __u32 off)
{
	if (!skb)
		return -1;
	for (int i = 0; i < DF_DNS_LABELS_MAX; i++) {
		__u8 l;

		if (off >= skb->len || bpf_skb_load_bytes(skb, off, &l, 1))
			return -1;
		if ((l & 0xc0) == 0xc0)
			return (int)(off + 2); /* a compression pointer ends the name */
		if (l == 0)
			return (int)(off + 1);
		if (l > 63)
			return -1;
		off += l + 1;
	}
	return -1;
}

/* Learn the address in scratch->a_addr (family 4 or 6) for the question in scratch->q. */
__attribute__((noinline)) int df_learn(struct __sk_buff *skb, __u32 family, __u32 ttl)
{
	const struct df_config *cfg;
	struct df_dns_scratch *sc;
	__u32 zero = 0, w[4];

	cfg = bpf_map_lookup_elem(&config, &zero);
	sc = scratch_here();
	if (!cfg || !sc || !skb)
		return 0;
	__builtin_memcpy(w, sc->a_addr, sizeof(w));
	/* an IPv4-mapped AAAA (::ffff:a.b.c.d) is judged as IPv4, so it is learnt as one */
	if (family == 6 && v4_mapped(w))
		learn(&prov4, &w[3], &sc->q, ttl, cfg, bpf_ktime_get_ns());
	else if (family == 4)
		learn(&prov4, &sc->a_addr[0], &sc->q, ttl, cfg, bpf_ktime_get_ns());
	else
		learn(&prov6, sc->a_addr, &sc->q, ttl, cfg, bpf_ktime_get_ns());
	return 1;
}

/* Every address in the answer section is provenance for the question's name (CNAME chains included). */
__attribute__((noinline)) int df_walk_answers(struct __sk_buff *skb, __u32 start, __u32 an)
{
	struct df_dns_scratch *sc;
	__u32 off, learned = 0;

	sc = scratch_here();
	if (!sc || !skb)
		return 0;
	sc->a_off = start;
	for (__u32 rr = 0; rr < DF_DNS_ANSWERS_MAX; rr++) {
		struct rr_fixed f;
		__u16 type, rdlen;
		int next;

		/* through map memory: one state per record for the verifier, not one per path */
		off = REREAD(sc->a_off);
		if (rr >= an || off >= skb->len)
			break;
		next = df_skip_name(skb, off);
		if (next < 0)
			break;
		off = (__u32)next;
		if (bpf_skb_load_bytes(skb, off, &f, sizeof(f)))
			break;
		off += sizeof(f);
		type = bpf_ntohs(f.type);
		rdlen = bpf_ntohs(f.rdlen);
		if (bpf_ntohs(f.class) == 1 && type == 1 && rdlen == 4) {
			if (bpf_skb_load_bytes(skb, off, sc->a_addr, 4) == 0)
				learned += df_learn(skb, 4, bpf_ntohl(f.ttl));
		} else if (bpf_ntohs(f.class) == 1 && type == 28 && rdlen == 16) {
			if (bpf_skb_load_bytes(skb, off, sc->a_addr, 16) == 0)
				learned += df_learn(skb, 6, bpf_ntohl(f.ttl));
		}
		/* past the end stops the walk: never wrap back into the packet */
		sc->a_off = off + rdlen;
	}
	return (int)learned;
}

/* cfg and sk (the full socket, or NULL) as df_ingress found them */
static __always_inline int ingress_run(struct __sk_buff *skb, const struct df_config *cfg,
				       struct bpf_sock *sk)
{
	struct df_dns_scratch *sc;
	struct df_counters *c;
	struct dnshdr h;
	struct pkt p = {};
	__u32 zero = 0;
	int len;

	mark_listener(sk);
	if (parse_pkt(skb, &p) != 0)
		return SKB_PASS;
	if (!is_dns_port(cfg, p.sport))
		return SKB_PASS;
	if (dns_start(skb, &p) < 0 || bpf_skb_load_bytes(skb, p.off, &h, sizeof(h)))
		return SKB_PASS;
	if (!(bpf_ntohs(h.flags) & 0x8000) || bpf_ntohs(h.qd) != 1)
		return SKB_PASS;
	c = bpf_map_lookup_elem(&counters, &zero);
	if (!c)
		return SKB_PASS;
	sc = scratch_here();
	if (!sc)
		return SKB_PASS;
	pending_key(&sc->qk, &p, h.id, 1);
	/* the question it answers, left pending until the names agree */
	if (!df_pending_look()) {
		__sync_fetch_and_add(&c->dns_untrusted, 1);
		return SKB_PASS;
	}
	len = df_parse_name(skb, p.off + sizeof(h), p.len - sizeof(h));
	if (len <= 0 || sc->sh1[0] != sc->q.name.h1 || sc->sh2[0] != sc->q.name.h2) {
		__sync_fetch_and_add(&c->dns_untrusted, 1);
		return SKB_PASS;
	}
	df_pending_drop();
	__sync_fetch_and_add(&c->dns_answers, 1);
	df_walk_answers(skb, p.off + sizeof(h) + (__u32)len + 4, bpf_ntohs(h.an));
	return SKB_PASS;
}

SEC("cgroup_skb/ingress")
int df_ingress(struct __sk_buff *skb)
{
	const struct df_config *cfg;
	struct bpf_sock *sk = skb->sk;
	__u32 zero = 0;
	int r;

	/*
	 * A TCP connection (not a listener) with no DNS port at either end: no
	 * answer to read and no listener to mark. Its ports are the packet's:
	 * ingress runs after any NAT was undone.
	 */
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return SKB_PASS;
	if (sk)
		sk = bpf_sk_fullsock(sk);
	if (tcp_off_dns(cfg, sk) && sk->state != TCP_LISTEN_)
		return SKB_PASS;
	scratch_enter();
	r = ingress_run(skb, cfg, sk);
	scratch_leave();
	return r;
}
