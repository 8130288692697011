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
#define DF_HOOK_DNS 5
#define DF_HOOK_EGRESS 6 /* the egress backstop: a packet no connect or sendmsg judged */

/* Protocol bits of a rule; a rule without a protocol matches every protocol. */
#define DF_PROTO_TCP 0x01
#define DF_PROTO_UDP 0x02
#define DF_PROTO_OTHER 0x04
#define DF_PROTO_ANY 0xff

/*
 * Socket marks (sk_storage) for the egress backstop: the destination the
 * connect or sendmsg program judged, so egress passes its packets after one
 * lookup; PASSIVE for TCP children of a listener (cloned from it): their
 * packets answer someone else's connection.
 */
#define DF_MARK_PASSIVE 0x1
/*
 * A TCP stream or UDP datagram socket connect/sendmsg judged: every change of
 * its destination goes through those hooks again, so its packets pass whatever
 * destination egress sees (connect-time load balancing and DNAT rewrite it
 * after the hooks). Raw, ping and other sockets keep the destination compare.
 */
#define DF_MARK_JUDGED 0x2
/*
 * A socket connect/sendmsg judged with a DNS port as its destination (once is
 * enough). A TCP socket marked JUDGED without it, on a local port that is no
 * DNS port, carries nothing egress or ingress read: its packets pass both
 * without being parsed.
 */
#define DF_MARK_DNS 0x4

struct df_sk_mark {
	__u8 family; /* 4 or 6; 0: no destination */
	__u8 proto; /* IPPROTO_* */
	__u16 dport; /* host order */
	__u32 flags;
	__u32 daddr[4]; /* network order, IPv4 in daddr[0] */
	/*
	 * A UDP socket: the last destination sendmsg allowed by the rules alone,
	 * the mode and the provenance generation then (see cached_allow() in
	 * fence.bpf.c), and a keyed hash of them written last, 0 while they are
	 * written: a reader compares the fields themselves and the hash tells it
	 * that they were not half rewritten under it.
	 */
	__u32 c_addr[4];
	__u16 c_port;
	__u8 c_family;
	__u8 c_mode;
	__u32 c_pad;
	__u64 c_gen;
	__u64 c_key;
	/*
	 * A UDP datagram socket: the last destination sendmsg let it send to
	 * (s_family 0: none yet), where egress finds what an unconnected
	 * socket's packet was meant for once a NAT rule rewrote it (see
	 * df_sent_to() in fence.bpf.c).
	 */
	__u32 s_addr[4];
	__u16 s_port;
	__u8 s_family;
	__u8 s_pad;
	__u32 s_pad2;
};

/*
 * The fence's cgroup was made empty for it and its programs attached before
 * anything entered it (depfence run): every TCP stream socket of the cgroup was
 * then made under the fence, so each either went through connect4/6 or was
 * accepted by a listener in it. egress passes such a socket's packets without
 * the mark connect would leave (allocating socket storage costs more than the
 * rest of a connect's judging), exactly as it passes a marked one.
 */
#define DF_CFG_FRESH 0x1

/* Rule id 0 is the policy default; rule i of the policy has id i + 1. */
#define DF_RULE_DEFAULT 0
/* A DNS question that could not be parsed to a name (judged by the default). */
#define DF_RULE_UNPARSABLE 0xffffffffu
/*
 * A packet routed past its destination (an IPv6 routing header, an IPv4 loose
 * or strict source route option): refused by egress whatever the rules say
 * (report: rule "source-route"). Its header names only the next hop; the
 * addresses after it, and the one connect or sendmsg judged, ride in the route.
 */
#define DF_RULE_SOURCE_ROUTE 0xfffffffeu
/* IPv6 hop-by-hop and destination options headers walked before a routing header */
#define DF_EXT_WALK 3

/* DNS */
#define DF_DNS_NAME_MAX 256 /* wire bytes of a name, terminating zero included */
#define DF_DNS_LABELS_MAX 128
#define DF_DNS_PORTS 4
#define DF_DNS_ANSWERS_MAX 32
#define DF_DEFAULT_PROVENANCE 2048
/* DNS senders remembered for the programs that cannot ask who runs (sock_owner, dns_writers) */
#define DF_DNS_SENDERS 256
/* TCP connections to a DNS port whose questions are read before they are queued */
#define DF_DNS_TCP_SOCKS 1024
/* per-CPU DNS scratch slots, one per nesting level of the fence's programs on a CPU */
#define DF_SCRATCH_LEVELS 2
#define DF_DEFAULT_NAMES 4096
#define DF_DEFAULT_NAME_TARGETS 4096
/* Keyed hashes of names: h = (h * base + byte + 1) mod prime, bases random per fence. */
#define DF_HASH_P1 2147483647u /* 2^31 - 1 */
#define DF_HASH_P2 2147483629u

#define DF_NAME_EXACT 0
#define DF_NAME_ONE 1 /* *.x */
#define DF_NAME_MANY 2 /* **.x */

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
	__u32 flags; /* DF_PV_*; 0 in address rules */
	struct df_entry e[DF_MAX_ENTRIES];
};

/* a name rule target some entry refuses, on some port or protocol or on all */
#define DF_PV_SOME_DENY 1

struct df_key4 {
	__u32 prefixlen;
	__u32 addr; /* network order */
};

struct df_key6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/*
 * The address filter: one bit for each value of an address's first 16 bits
 * (an IPv4 /16; for IPv6 the first group), set where some address rule's
 * prefix covers addresses that start so (df_compiled_filter). An address
 * whose bit is clear matches no address rule: it is judged by the default
 * without the LPM lookup. Set bits only say "look". [0] IPv4, [1] IPv6.
 */
#define DF_ADDR_FILTER_WORDS (65536 / 64)

/*
 * The name rule filter: one bit per name rule target, by DF_NAME_FILTER_BIT of
 * its key. A question's suffix whose bit is clear has no rule, so most of
 * them are ruled out without a hash lookup (there are one to three lookups
 * per label otherwise). Set bits only say "look".
 */
#define DF_NAME_FILTER_WORDS 4
#define DF_NAME_FILTER_BIT(h1, kind) (((h1) ^ ((__u32)(kind) << 6)) & (DF_NAME_FILTER_WORDS * 64 - 1))

struct df_config {
	__u32 mode;
	__u32 default_verdict;
	__u32 hash_b1; /* random bases of the name hashes */
	__u32 hash_b2;
	__u32 ttl_floor_s; /* provenance lives max(TTL, floor) */
	__u16 dns_ports[DF_DNS_PORTS]; /* 53 and the ports named by udp/tcp ...:53-style rules; 0 = unused */
	__u16 flags; /* DF_CFG_* */
	__u16 pad2;
	/* appended: a live fence of an earlier version has a shorter value */
	__u64 name_filter[DF_NAME_FILTER_WORDS];
};

/* A name rule target: the keyed hash of the wire-format suffix, and its kind. */
struct df_name_key {
	__u32 h1;
	__u32 h2;
	__u32 kind;
};

/* A name as the report shows it, by the keyed hash of its whole wire form. */
struct df_name_id {
	__u32 h1;
	__u32 h2;
};

struct df_name_text {
	char name[DF_DNS_NAME_MAX];
};

/* A question this fence sent and may trust the answer to. */
struct df_pending_key {
	__u8 family;
	__u8 proto;
	__u16 txid;
	__u16 resolver_port; /* host order */
	__u16 client_port;
	__u8 resolver[16];
};

struct df_pending_val {
	struct df_name_id name;
	struct df_name_key target; /* most specific rule target matching the name; kind 0xff: none */
	/*
	 * a rule refuses the name, on some port or protocol or on all: its
	 * addresses keep this provenance until it expires (learn)
	 */
	__u32 deny;
	__u64 sent_ns;
};

/*
 * The questions waiting for their answers: a set-associative table in an
 * array (DF_PENDING_SETS sets of DF_PENDING_WAYS slots, the set picked by
 * the key), written without locks. check is a keyed hash of key and val; a
 * slot whose check does not match (empty: 0, or torn by two CPUs writing at
 * once) matches no answer.
 */
#define DF_PENDING_WAYS 4
#define DF_PENDING_SETS 128
struct df_pending_slot {
	struct df_pending_key key;
	struct df_pending_val val;
	__u64 check;
};

/* Provenance: the address came from an answer for this name. */
struct df_prov {
	struct df_name_id name;
	struct df_name_key target;
	__u32 deny;
	__u64 expires_ns;
};

/* One aggregated record: per (verdict, hook, destination, protocol, rule, process). */
struct df_rec_key {
	__u8 verdict;
	__u8 hook;
	__u8 proto; /* IPPROTO_* */
	__u8 family; /* 4 or 6: the family the address was judged as */
	__u16 dport; /* host order */
	__u16 qtype; /* DNS events: the question type */
	__u32 rule_id;
	__u32 tgid;
	__u8 daddr[16]; /* IPv4 in the first 4 bytes; DNS events: the resolver */
	struct df_name_id name; /* DNS provenance or the question; 0,0 = none */
	__u64 image; /* the caller's program (bpf/attrib.h); 0 = not known */
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
	__u64 dns_answers; /* trusted answers that taught provenance */
	__u64 dns_untrusted; /* answers that matched no question of this fence */
	__u64 dns_unparsable;
};

/* Per-CPU scratch space for the DNS parser. */
struct df_dns_scratch {
	__u8 buf[DF_DNS_NAME_MAX];
	__u8 lpos[DF_DNS_LABELS_MAX]; /* offset of each label's length byte */
	char dotted[DF_DNS_NAME_MAX];
	__u32 sh1[DF_DNS_NAME_MAX]; /* keyed hashes of the suffix starting at each byte */
	__u32 sh2[DF_DNS_NAME_MAX];
	__u32 name_len; /* wire bytes, terminating zero included */
	__u32 nlabels;
	__u32 pad; /* label lengths equal to '.', pass 1 to pass 2 */
	struct df_name_key match; /* df_match_name's result */
	struct df_pending_val q; /* the question an answer answers */
	struct df_pending_key qk; /* its key, for df_pending_put and df_pending_look */
	__u32 q_slot; /* where df_pending_look found it, */
	__u32 q_some_deny; /* judge_question: a rule refuses the name on some port (DF_PV_SOME_DENY) */
	__u64 q_check; /* and that slot's check then; 0: none */
	__u32 a_off; /* answer walk: offset of the next record */
	__u32 a_pad;
	__u8 a_addr[16]; /* the address being learned */
	struct df_name_id named; /* the last name this CPU found or put in the names map */
	__u32 q_rule; /* a question's verdict, passed through memory: see judge_question */
	__u32 q_verdict;
	/* where the sending socket meant the packet to go (df_sent_to) */
	__u32 to_addr[4];
	__u16 to_port;
	__u16 to_moved; /* 1: not where the packet is addressed (a NAT rule rewrote it) */
};

#endif
