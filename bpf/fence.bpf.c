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

#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

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

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
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

/* First entry that matches wins: user space stores them most specific first. */
static __always_inline int scan_entries(const struct df_prefix_val *v, __u8 pbit, __u16 port,
					struct judged *j)
{
	__u32 n = v->n;

	for (__u32 i = 0; i < DF_MAX_ENTRIES; i++) {
		const struct df_entry *e = &v->e[i];

		if (i >= n)
			break;
		if (!(e->proto_mask & pbit))
			continue;
		if (port < e->port_lo || port > e->port_hi)
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

static __always_inline void judge4(const struct df_config *cfg, __u32 addr, __u8 pbit, __u16 port,
				   struct judged *j)
{
	struct df_key4 key = { .prefixlen = 32, .addr = addr };
	const struct df_prefix_val *v = bpf_map_lookup_elem(&rules4, &key);

	if (!v || !scan_entries(v, pbit, port, j))
		judge_default(cfg, j);
}

static __always_inline void judge6(const struct df_config *cfg, const __u32 ip6[4], __u8 pbit,
				   __u16 port, struct judged *j)
{
	struct df_key6 key = { .prefixlen = 128 };
	const struct df_prefix_val *v;

	__builtin_memcpy(key.addr, ip6, 16);
	v = bpf_map_lookup_elem(&rules6, &key);
	if (!v || !scan_entries(v, pbit, port, j))
		judge_default(cfg, j);
}

static __always_inline void record(__u8 ev, __u8 hook, __u8 proto, __u8 family, const __u32 *addr,
				   __u16 port, __u32 rule_id)
{
	struct df_rec_key key = {};
	struct df_rec_val *val, init = {};
	__u64 now = bpf_ktime_get_ns();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct df_counters *c;
	__u32 zero = 0;
	long err;

	key.verdict = ev;
	key.hook = hook;
	key.proto = proto;
	key.family = family;
	key.dport = port;
	key.rule_id = rule_id;
	key.tgid = pid_tgid >> 32;
	if (family == 4)
		__builtin_memcpy(key.daddr, addr, 4);
	else
		__builtin_memcpy(key.daddr, addr, 16);

	val = bpf_map_lookup_elem(&records, &key);
	if (val) {
		__sync_fetch_and_add(&val->count, 1);
		val->last_ns = now;
		return;
	}
	init.count = 1;
	init.first_ns = now;
	init.last_ns = now;
	init.pid = (__u32)pid_tgid;
	init.uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(init.comm, sizeof(init.comm));
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

/*
 * Count, record as the mode asks, and turn the verdict into the hook's answer.
 * observe records every destination, audit and enforce record what the policy
 * refuses; only enforce refuses.
 */
static __always_inline int finish(const struct df_config *cfg, const struct judged *j, __u8 hook,
				  __u32 proto, __u8 family, const __u32 *addr, __u16 port)
{
	struct df_counters *c;
	__u32 zero = 0;
	__u8 ev;

	if (j->verdict == DF_ALLOW)
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
	if (ev != DF_EV_ALLOWED || cfg->mode == DF_MODE_OBSERVE)
		record(ev, hook, (__u8)proto, family, addr, port, j->rule_id);
	return ev == DF_EV_BLOCKED ? SOCK_REFUSE : SOCK_PASS;
}

static __always_inline int fence4(struct bpf_sock_addr *ctx, __u8 hook)
{
	const struct df_config *cfg;
	struct judged j;
	__u32 zero = 0, addr, proto;
	__u16 port;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return SOCK_PASS;
	addr = ctx->user_ip4;
	port = bpf_ntohs((__u16)ctx->user_port);
	proto = ctx->protocol;
	judge4(cfg, addr, proto_bit(proto), port, &j);
	return finish(cfg, &j, hook, proto, 4, &addr, port);
}

static __always_inline int fence6(struct bpf_sock_addr *ctx, __u8 hook)
{
	const struct df_config *cfg;
	struct judged j;
	__u32 zero = 0, ip6[4], proto;
	__u16 port;
	__u8 pbit;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return SOCK_PASS;
	ip6[0] = ctx->user_ip6[0];
	ip6[1] = ctx->user_ip6[1];
	ip6[2] = ctx->user_ip6[2];
	ip6[3] = ctx->user_ip6[3];
	port = bpf_ntohs((__u16)ctx->user_port);
	proto = ctx->protocol;
	pbit = proto_bit(proto);

	/* ::ffff:a.b.c.d is judged, and reported, as a.b.c.d */
	if (ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0x0000ffff)) {
		judge4(cfg, ip6[3], pbit, port, &j);
		return finish(cfg, &j, hook, proto, 4, &ip6[3], port);
	}
	judge6(cfg, ip6, pbit, port, &j);
	return finish(cfg, &j, hook, proto, 6, ip6, port);
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
