#!/usr/bin/env python3
"""Validate JSON documents against a JSON Schema, for the subset of JSON Schema
(draft 2020-12) that tests/fixtures/report.schema.json uses. There is no
jsonschema module here; this checks exactly these keywords and refuses a
schema that uses any other, so nothing is silently unchecked:

  type (one or a list), enum, const, properties, required, items,
  additionalProperties (boolean or schema), minimum, maximum, minLength,
  maxLength, pattern (re.search), anyOf, $ref to "#/$defs/NAME";
  annotations ignored: $schema, $id, title, description, $comment.

Usage: schema_check.py SCHEMA FILE...   prints "valid FILE" or one line per
error ("FILE: /path/to/value: what is wrong"); exit 0 when all are valid.
"""
import json
import re
import sys

CHECKED = {"type", "enum", "const", "properties", "required", "items", "additionalProperties",
           "minimum", "maximum", "minLength", "maxLength", "pattern", "anyOf", "$ref", "$defs"}
IGNORED = {"$schema", "$id", "title", "description", "$comment"}

TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def keywords_ok(schema, where="#"):
    """Every keyword in the schema is one this validator checks."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise SystemExit(f"schema {where}: not an object")
    for k, v in schema.items():
        if k not in CHECKED | IGNORED:
            raise SystemExit(f"schema {where}: keyword {k!r} is not supported by this validator")
        if k in ("properties", "$defs"):
            for name, sub in v.items():
                keywords_ok(sub, f"{where}/{k}/{name}")
        elif k in ("items", "additionalProperties"):
            keywords_ok(v, f"{where}/{k}")
        elif k == "anyOf":
            for i, sub in enumerate(v):
                keywords_ok(sub, f"{where}/anyOf/{i}")
        elif k == "type":
            for t in v if isinstance(v, list) else [v]:
                if t not in TYPES:
                    raise SystemExit(f"schema {where}: unknown type {t!r}")


def validate(root, schema, value, path, errors):
    if schema is True:
        return
    if schema is False:
        errors.append(f"{path or '/'}: no value is allowed here")
        return
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/"):
            raise SystemExit(f"unsupported $ref {ref!r}")
        validate(root, root["$defs"][ref[len("#/$defs/"):]], value, path, errors)
    where = path or "/"
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[t](value) for t in types):
            errors.append(f"{where}: expected {' or '.join(types)}, got {json.dumps(value)[:60]}")
            return
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: expected {json.dumps(schema['const'])}, got {json.dumps(value)[:60]}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {json.dumps(value)[:60]} is not one of {schema['enum']}")
    if "anyOf" in schema:
        if not any(not _errors(root, sub, value, path) for sub in schema["anyOf"]):
            errors.append(f"{where}: matches none of anyOf: {json.dumps(value)[:60]}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value[:60]!r} does not match {schema['pattern']}")
    if TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} is below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} is above {schema['maximum']}")
    if isinstance(value, dict):
        for k in schema.get("required", []):
            if k not in value:
                errors.append(f"{where}: required key {k!r} is missing")
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                validate(root, props[k], v, f"{path}/{k}", errors)
            elif "additionalProperties" in schema:
                validate(root, schema["additionalProperties"], v, f"{path}/{k}", errors)
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            validate(root, schema["items"], v, f"{path}/{i}", errors)


def _errors(root, schema, value, path):
    e = []
    validate(root, schema, value, path, e)
    return e


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1]) as f:
        schema = json.load(f)
    keywords_ok(schema)
    bad = 0
    for name in sys.argv[2:]:
        try:
            with open(name) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            print(f"{name}: {e}")
            bad += 1
            continue
        errors = _errors(schema, schema, doc, "")
        for e in errors:
            print(f"{name}: {e}")
        if errors:
            bad += 1
        else:
            print(f"valid {name}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
