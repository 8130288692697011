// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <string.h>

#include "json_emit.h"

int json_is_number(yajl_val v)
{
	return v && YAJL_IS_NUMBER(v);
}

/* json_parse() refused documents nested deeper than 64 levels: the recursion is bounded. */
int json_emit_value(yajl_gen g, yajl_val v)
{
	yajl_gen_status s;
	int r;

	if (!v || YAJL_IS_NULL(v))
		return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -EINVAL;
	if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))
		return yajl_gen_bool(g, YAJL_IS_TRUE(v)) == yajl_gen_status_ok ? 0 : -EINVAL;
	if (YAJL_IS_STRING(v))
		return jg_str(g, YAJL_GET_STRING(v));
	if (YAJL_IS_NUMBER(v)) {
		const char *t = YAJL_GET_NUMBER(v);

		return yajl_gen_number(g, t, strlen(t)) == yajl_gen_status_ok ? 0 : -EINVAL;
	}
	if (YAJL_IS_ARRAY(v)) {
		if (yajl_gen_array_open(g) != yajl_gen_status_ok)
			return -EINVAL;
		for (size_t i = 0; i < v->u.array.len; i++) {
			r = json_emit_value(g, v->u.array.values[i]);
			if (r < 0)
				return r;
		}
		return yajl_gen_array_close(g) == yajl_gen_status_ok ? 0 : -EINVAL;
	}
	if (YAJL_IS_OBJECT(v)) {
		if (yajl_gen_map_open(g) != yajl_gen_status_ok)
			return -EINVAL;
		for (size_t i = 0; i < v->u.object.len; i++) {
			r = jg_str(g, v->u.object.keys[i]);
			if (r < 0)
				return r;
			r = json_emit_value(g, v->u.object.values[i]);
			if (r < 0)
				return r;
		}
		s = yajl_gen_map_close(g);
		return s == yajl_gen_status_ok ? 0 : -EINVAL;
	}
	return -EINVAL;
}
