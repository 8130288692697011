/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Emit a parsed yajl tree again, as it was read (numbers keep their text). */
#ifndef DEPFENCE_OCI_JSON_EMIT_H
#define DEPFENCE_OCI_JSON_EMIT_H

#include "json.h"

/* Write v (and everything under it) to g. -EINVAL when g refuses it. */
int json_emit_value(yajl_gen g, yajl_val v);

/* 1 when v is a JSON number (integer or not), 0 otherwise. */
int json_is_number(yajl_val v);

#endif
