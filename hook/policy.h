/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Policy: mode, default verdict, rules; the rule grammar and precedence. */
#ifndef DEPFENCE_POLICY_H
#define DEPFENCE_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "../bpf/fence.h"
#include "util.h"

#define DF_RULE_MAX_LEN 300 /* bracketed IPv6 + prefix + ports, or a 253-byte name + ports */
#define DF_NAME_MAX_LEN 253
#define DF_BREAKGLASS_REASON_MAX 512

enum df_target {
	DF_TARGET_CIDR4,
	DF_TARGET_CIDR6,
	DF_TARGET_NAME,
};

/* Name kinds are DF_NAME_EXACT (github.com), DF_NAME_ONE (*.github.com: exactly
 * one more label) and DF_NAME_MANY (**.github.com: one or more), from fence.h. */

struct df_rule {
	char *text; /* normalized */
	char *source; /* where it came from: "annotation depfence.io/deny", "--allow", ... */
	uint8_t verdict; /* DF_ALLOW or DF_DENY */
	uint8_t proto_mask; /* DF_PROTO_TCP, DF_PROTO_UDP or DF_PROTO_ANY */
	uint8_t has_ports;
	uint8_t target;
	uint16_t port_lo, port_hi;
	uint8_t addr[16]; /* CIDR: network bytes, IPv4 in the first 4 */
	uint8_t prefixlen;
	uint8_t name_kind;
	char *name; /* DF_TARGET_NAME: lowercase, no trailing dot, no wildcard prefix */
};

struct df_policy {
	int mode; /* DF_MODE_* */
	int default_verdict; /* DF_ALLOW or DF_DENY */
	struct df_rule *rules;
	size_t n_rules, cap_rules;
	char *label;
	char **profiles; /* host profile names asked for, in order */
	size_t n_profiles;
	/* who set mode and default ("annotation depfence.io/mode", "--mode"); NULL: nobody */
	char *mode_source, *default_source;
	char *break_glass; /* reason: this fence alone refuses nothing (audit); NULL: off */
	char *break_glass_source;
	char *profiles_source; /* who asked for the profiles ("annotation depfence.io/profile") */
};

#define DF_PROFILE_NAME_MAX 64
#define DF_PROFILES_MAX 16

int df_parse_mode(const char *s, int *ret);
int df_parse_default(const char *s, int *ret);
const char *df_mode_name(int mode);
const char *df_verdict_name(int verdict);

void df_policy_init(struct df_policy *p);
void df_policy_free(struct df_policy *p);

/* Parse one rule. Fills *ret (owning text and name) on success. */
int df_rule_parse(const char *text, uint8_t verdict, struct df_rule *ret, struct df_error *e);
void df_rule_free(struct df_rule *r);

/*
 * Add every rule of a list separated by commas and/or whitespace.
 * key names the place the list came from, for errors and the report.
 */
int df_policy_add_list(struct df_policy *p, const char *list, uint8_t verdict, const char *key,
		       size_t max_rules, struct df_error *e);

size_t df_policy_count_names(const struct df_policy *p);

/* Add profile names from a list (commas and/or whitespace); key names the source. */
int df_policy_add_profiles(struct df_policy *p, const char *list, const char *key,
			   struct df_error *e);

/* Compiled LPM contents for one family. */
struct df_compiled {
	size_t n;
	struct df_key6 *keys; /* prefixlen + up to 16 address bytes; IPv4 uses 4 */
	struct df_prefix_val *vals;
};

int df_policy_compile(const struct df_policy *p, int family, struct df_compiled *ret,
		      struct df_error *e);
void df_compiled_free(struct df_compiled *c);

/* What the kernel does with a compiled table: longest prefix, then the first entry. */
void df_compiled_judge(const struct df_compiled *c, int family, const uint8_t *addr,
		       uint8_t proto_bit, uint16_t port, int default_verdict, uint8_t *ret_verdict,
		       uint32_t *ret_rule_id);

/* The address filter of a compiled table (DF_ADDR_FILTER_WORDS words, fence.h). */
void df_compiled_filter(const struct df_compiled *c, __u64 *ret_words);

/* Precedence made visible: < 0 when a is tried before b (same kind of target). */
int df_rule_cmp_precedence(const struct df_rule *a, const struct df_rule *b);
/* 3 protocol and ports, 2 ports, 1 protocol, 0 neither. */
int df_rule_specificity(const struct df_rule *r);

/* The reference: every address rule, most specific wins, deny on a tie. */
void df_policy_judge(const struct df_policy *p, int family, const uint8_t *addr,
		     uint8_t proto_bit, uint16_t port, uint8_t *ret_verdict, uint32_t *ret_rule_id);

/* ---- loosening: what a job's rules may do to the admin's ---- */

/* Does a match every destination b matches (same kind of target, protocols, ports)? */
int df_rule_covers(const struct df_rule *a, const struct df_rule *b);
/* Is there a destination both match? */
int df_rule_overlaps(const struct df_rule *a, const struct df_rule *b);
/* < 0 when a is more specific than b, 0 when as specific; the verdicts aside. */
int df_rule_cmp_specific(const struct df_rule *a, const struct df_rule *b);

#define DF_LOOSENS_DEFAULT ((size_t)-1)

/*
 * Would the allow rule r, added to the admin's rules, allow something the
 * admin's policy refuses? 1 and in *ret_which the index of the admin deny
 * rule it overrides (an overlapping allow at least as specific, unless an
 * admin allow that covers r already wins over that deny), or
 * DF_LOOSENS_DEFAULT when the admin's default is deny and no admin allow
 * rule covers r. 0 when it does not loosen; deny rules never do.
 */
int df_rule_loosens(const struct df_policy *admin, int admin_default, const struct df_rule *r,
		    size_t *ret_which);

/* Copy src's rules in front of p's (the admin's first). */
int df_policy_prepend_rules(struct df_policy *p, const struct df_policy *src);

/* ---- names ---- */

/* Keyed hash of a dotted name as the kernel computes it over the wire form. */
void df_name_hash(const char *dotted, uint32_t b1, uint32_t b2, uint32_t *ret_h1,
		  uint32_t *ret_h2);

struct df_compiled_names {
	size_t n;
	struct df_name_key *keys;
	struct df_prefix_val *vals;
	__u64 filter[DF_NAME_FILTER_WORDS]; /* for df_config.name_filter */
};

/* One map entry per name rule target, with the entries of every less specific
 * target that matches whatever it matches, most specific first. */
int df_policy_compile_names(const struct df_policy *p, uint32_t b1, uint32_t b2,
			    struct df_compiled_names *ret, struct df_error *e);
void df_compiled_names_free(struct df_compiled_names *c);

/* The reference for a name: most specific target, then the first entry that matches. */
int df_policy_judge_name(const struct df_policy *p, const char *name, uint8_t proto_bit,
			 uint16_t port, uint8_t *ret_verdict, uint32_t *ret_rule_id);

#endif
