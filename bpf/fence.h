/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Types and limits shared by fence.bpf.c and user space.
 * Fixed-width types only: no pointers, no bool, no long.
 */
#ifndef DEPFENCE_BPF_FENCE_H
#define DEPFENCE_BPF_FENCE_H

#include <linux/types.h>

/* Candidate rules kept per prefix, inherited ones included (see hook/compile.c). */
#define DF_MAX_ENTRIES 16
/* Default sizes; user space may change them with bpf_map__set_max_entries(). */
#define DF_DEFAULT_PREFIXES 16384
#define DF_DEFAULT_RECORDS 4096

#define DF_COMM_LEN 16

/* Policy modes. */
#define DF_MODE_OBSERVE 0
#define DF_MODE_AUDIT 1
#define DF_MODE_ENFORCE 2

/* Rule verdicts. */
#define DF_ALLOW 1
#define DF_DENY 2

/* Event verdicts, as recorded. */
#define DF_EV_ALLOWED 0
#define DF_EV_WOULD_BLOCK 1
#define DF_EV_BLOCKED 2

/* Where an event was seen. */
#define DF_HOOK_CONNECT4 1
#define DF_HOOK_CONNECT6 2
#define DF_HOOK_SENDMSG4 3
#define DF_HOOK_SENDMSG6 4

/* Protocol bits of a rule; a rule without a protocol matches every protocol. */
#define DF_PROTO_TCP 0x01
#define DF_PROTO_UDP 0x02
#define DF_PROTO_OTHER 0x04
#define DF_PROTO_ANY 0xff

/* Rule id 0 is the policy default; rule i of the policy has id i + 1. */
#define DF_RULE_DEFAULT 0

struct df_entry {
	__u8 proto_mask;
	__u8 verdict;
	__u16 port_lo; /* host order, inclusive */
	__u16 port_hi;
	__u16 pad;
	__u32 rule_id;
};

struct df_prefix_val {
	__u32 n;
	__u32 pad;
	struct df_entry e[DF_MAX_ENTRIES];
};

struct df_key4 {
	__u32 prefixlen;
	__u32 addr; /* network order */
};

struct df_key6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct df_config {
	__u32 mode;
	__u32 default_verdict;
};

/* One aggregated record: per (verdict, hook, destination, protocol, rule, process). */
struct df_rec_key {
	__u8 verdict;
	__u8 hook;
	__u8 proto; /* IPPROTO_* */
	__u8 family; /* 4 or 6: the family the address was judged as */
	__u16 dport; /* host order */
	__u16 pad;
	__u32 rule_id;
	__u32 tgid;
	__u8 daddr[16]; /* IPv4 in the first 4 bytes */
};

struct df_rec_val {
	__u64 count;
	__u64 first_ns; /* CLOCK_MONOTONIC */
	__u64 last_ns;
	__u32 pid;
	__u32 uid;
	char comm[DF_COMM_LEN];
};

struct df_counters {
	__u64 connections;
	__u64 allowed;
	__u64 would_block;
	__u64 blocked;
	__u64 dropped_records;
	__u64 dns_queries;
	__u64 dns_blocked;
};

#endif
