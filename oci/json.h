/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* A small typed accessor layer over yajl_tree: callers never poke at yajl_val internals. */
#ifndef DEPFENCE_OCI_JSON_H
#define DEPFENCE_OCI_JSON_H

#include <stddef.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "../hook/util.h"

static inline void yajl_tree_freep(yajl_val *v)
{
	if (*v)
		yajl_tree_free(*v);
}
static inline void yajl_gen_freep(yajl_gen *g)
{
	if (*g)
		yajl_gen_free(*g);
}
#define _cleanup_yajl_ _cleanup_(yajl_tree_freep)
#define _cleanup_yajl_gen_ _cleanup_(yajl_gen_freep)

/* Parse a whole document; what names the input in errors. */
int json_parse(const char *buf, const char *what, yajl_val *ret, struct df_error *e);

int json_is_object(yajl_val v);
size_t json_object_len(yajl_val obj);
const char *json_object_key(yajl_val obj, size_t i);
yajl_val json_object_value(yajl_val obj, size_t i);
yajl_val json_get(yajl_val obj, const char *key);

/* -ENOENT when absent (or null), -EINVAL with a message naming key when mistyped. */
int json_get_string(yajl_val obj, const char *key, const char **ret, struct df_error *e);
int json_get_int(yajl_val obj, const char *key, long long *ret, struct df_error *e);
int json_get_bool(yajl_val obj, const char *key, int *ret, struct df_error *e);
int json_get_object(yajl_val obj, const char *key, yajl_val *ret, struct df_error *e);
int json_get_array(yajl_val obj, const char *key, yajl_val *ret, struct df_error *e);
size_t json_array_len(yajl_val arr);
yajl_val json_array_at(yajl_val arr, size_t i);
const char *json_string(yajl_val v); /* NULL when not a string */

/* Generator helpers */
int jg_str(yajl_gen g, const char *s);
int jg_key_str(yajl_gen g, const char *k, const char *v); /* v NULL: null */
int jg_key_int(yajl_gen g, const char *k, long long v);
int jg_key_bool(yajl_gen g, const char *k, int v);
/*
 * Close the document's top-level map and take it: *ret a NUL-terminated copy
 * ending in a newline, *ret_len its length. r is what the calls before
 * returned (or'ed): not 0, or a map the generator refuses to close, is
 * -EINVAL; -ENOMEM.
 */
int jg_finish(yajl_gen g, int r, char **ret, size_t *ret_len);

#endif
