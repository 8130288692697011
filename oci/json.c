// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <string.h>

#include "json.h"

/* yajl_tree_free() recurses: refuse deep nesting before yajl sees it. */
#define JSON_MAX_DEPTH 64

/*
 * Before yajl sees the text: refuse nesting deeper than JSON_MAX_DEPTH
 * (-E2BIG) and a string holding \u0000 (-EILSEQ, *ret_str its opening quote):
 * yajl decodes it into the string, and every reader here takes strings as C
 * strings, so the rest of a value (or a key) would silently go. yajl_tree_parse()
 * accepts comments (the admin's files have them): a quote inside one must not
 * hide what follows, nor may a bracket inside one count.
 */
static int json_scan(const char *s, const char **ret_str)
{
	const char *str = NULL;
	int depth = 0;

	for (; *s; s++) {
		if (str) {
			if (*s == '\\' && s[1] == 'u' && !strncmp(s + 2, "0000", 4)) {
				*ret_str = str;
				return -EILSEQ;
			}
			if (*s == '\\' && s[1])
				s++;
			else if (*s == '"')
				str = NULL;
			continue;
		}
		if (*s == '/' && s[1] == '*') {
			const char *end = strstr(s + 2, "*/");

			if (!end)
				return 0; /* unterminated: yajl refuses it */
			s = end + 1;
		} else if (*s == '/' && s[1] == '/') {
			s += strcspn(s, "\n");
			if (!*s)
				return 0;
		} else if (*s == '"') {
			str = s;
		} else if (*s == '{' || *s == '[') {
			if (++depth > JSON_MAX_DEPTH)
				return -E2BIG;
		} else if ((*s == '}' || *s == ']') && depth > 0) {
			depth--;
		}
	}
	return 0;
}

int json_parse(const char *buf, const char *what, yajl_val *ret, struct df_error *e)
{
	const char *str = NULL;
	char err[256] = "";
	yajl_val v;
	int r;

	r = json_scan(buf, &str);
	if (r == -E2BIG)
		return df_fail(e, r, "%s: JSON nested deeper than %d levels", what, JSON_MAX_DEPTH);
	if (r < 0) {
		/* the string as written, up to its closing quote, printable ASCII only */
		char shown[72];
		size_t n = 0;

		for (const char *p = str + 1; *p && *p != '"' && n + 1 < sizeof(shown); p++) {
			shown[n++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
			if (*p == '\\' && p[1] && p[1] != 'u' && n + 1 < sizeof(shown))
				shown[n++] = *++p >= 0x20 && *p < 0x7f ? *p : '?';
		}
		shown[n] = '\0';
		return df_fail(e, r,
			       "%s: the string \"%s\" holds \\u0000 (a NUL byte), which would cut it short: refused",
			       what, shown);
	}

	v = yajl_tree_parse(buf, err, sizeof(err));
	if (!v) {
		/* yajl's message spans lines; keep the first */
		err[strcspn(err, "\n")] = '\0';
		return df_fail(e, -EINVAL, "%s: not valid JSON: %s", what, err[0] ? err : "parse error");
	}
	*ret = v;
	return 0;
}

int json_is_object(yajl_val v)
{
	return v && YAJL_IS_OBJECT(v);
}

size_t json_object_len(yajl_val obj)
{
	return json_is_object(obj) ? obj->u.object.len : 0;
}

const char *json_object_key(yajl_val obj, size_t i)
{
	return obj->u.object.keys[i];
}

yajl_val json_object_value(yajl_val obj, size_t i)
{
	return obj->u.object.values[i];
}

yajl_val json_get(yajl_val obj, const char *key)
{
	if (!json_is_object(obj))
		return NULL;
	/* the last duplicate wins, as in most JSON readers */
	for (size_t i = obj->u.object.len; i-- > 0;)
		if (!strcmp(obj->u.object.keys[i], key))
			return obj->u.object.values[i];
	return NULL;
}

int json_get_string(yajl_val obj, const char *key, const char **ret, struct df_error *e)
{
	yajl_val v = json_get(obj, key);

	if (!v || YAJL_IS_NULL(v))
		return -ENOENT;
	if (!YAJL_IS_STRING(v))
		return df_fail(e, -EINVAL, "key \"%s\": expected a string", key);
	*ret = YAJL_GET_STRING(v);
	return 0;
}

int json_get_int(yajl_val obj, const char *key, long long *ret, struct df_error *e)
{
	yajl_val v = json_get(obj, key);

	if (!v || YAJL_IS_NULL(v))
		return -ENOENT;
	if (!YAJL_IS_INTEGER(v))
		return df_fail(e, -EINVAL, "key \"%s\": expected an integer", key);
	*ret = YAJL_GET_INTEGER(v);
	return 0;
}

int json_get_bool(yajl_val obj, const char *key, int *ret, struct df_error *e)
{
	yajl_val v = json_get(obj, key);

	if (!v || YAJL_IS_NULL(v))
		return -ENOENT;
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return df_fail(e, -EINVAL, "key \"%s\": expected true or false", key);
	*ret = YAJL_IS_TRUE(v);
	return 0;
}

int json_get_object(yajl_val obj, const char *key, yajl_val *ret, struct df_error *e)
{
	yajl_val v = json_get(obj, key);

	if (!v || YAJL_IS_NULL(v))
		return -ENOENT;
	if (!YAJL_IS_OBJECT(v))
		return df_fail(e, -EINVAL, "key \"%s\": expected an object", key);
	*ret = v;
	return 0;
}

int json_get_array(yajl_val obj, const char *key, yajl_val *ret, struct df_error *e)
{
	yajl_val v = json_get(obj, key);

	if (!v || YAJL_IS_NULL(v))
		return -ENOENT;
	if (!YAJL_IS_ARRAY(v))
		return df_fail(e, -EINVAL, "key \"%s\": expected an array", key);
	*ret = v;
	return 0;
}

size_t json_array_len(yajl_val arr)
{
	return arr && YAJL_IS_ARRAY(arr) ? arr->u.array.len : 0;
}

yajl_val json_array_at(yajl_val arr, size_t i)
{
	return arr->u.array.values[i];
}

const char *json_string(yajl_val v)
{
	return v && YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629), 0 when there is none. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

int jg_str(yajl_gen g, const char *s)
{
	_cleanup_free_ unsigned char *fixed = NULL;
	const unsigned char *out = (const unsigned char *)s;
	size_t len, i, n;

	if (!s)
		return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -EINVAL;
	len = strlen(s);
	for (i = 0; i < len && (n = utf8_len(out + i)); i += n)
		;
	if (i < len) {
		/*
		 * Command lines, labels and paths are bytes, not always UTF-8 (and
		 * a length cap can cut a character); yajl lets overlong forms and
		 * surrogates through. Write '?' for what is not UTF-8 rather than
		 * lose the document or write one strict readers refuse.
		 */
		fixed = malloc(len + 1);
		if (!fixed)
			return -ENOMEM;
		memcpy(fixed, s, len + 1);
		for (; i < len; i += n) {
			n = utf8_len(fixed + i);
			if (!n) {
				fixed[i] = '?';
				n = 1;
			}
		}
		out = fixed;
	}
	return yajl_gen_string(g, out, len) == yajl_gen_status_ok ? 0 : -EINVAL;
}

int jg_key_str(yajl_gen g, const char *k, const char *v)
{
	int r = jg_str(g, k);

	return r < 0 ? r : jg_str(g, v);
}

int jg_key_int(yajl_gen g, const char *k, long long v)
{
	int r = jg_str(g, k);

	if (r < 0)
		return r;
	return yajl_gen_integer(g, v) == yajl_gen_status_ok ? 0 : -EINVAL;
}

int jg_key_bool(yajl_gen g, const char *k, int v)
{
	int r = jg_str(g, k);

	if (r < 0)
		return r;
	return yajl_gen_bool(g, v) == yajl_gen_status_ok ? 0 : -EINVAL;
}

int jg_finish(yajl_gen g, int r, char **ret, size_t *ret_len)
{
	const unsigned char *out;
	size_t len;

	if (yajl_gen_map_close(g) != yajl_gen_status_ok || r ||
	    yajl_gen_get_buf(g, &out, &len) != yajl_gen_status_ok)
		return -EINVAL;
	*ret = malloc(len + 2);
	if (!*ret)
		return -ENOMEM;
	memcpy(*ret, out, len);
	if (len == 0 || out[len - 1] != '\n')
		(*ret)[len++] = '\n';
	(*ret)[len] = '\0';
	*ret_len = len;
	return 0;
}
