#!/usr/bin/env python3
"""Verdicts of chains/vcpe-chain.schema.json on descriptor files, as JSON lines.

The independent side of the schema/decoder agreement test: a standard JSON parser
(duplicate keys rejected, as RFC 8259 advises) and the jsonschema validator.
"""
import json
import sys

import jsonschema


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def main():
    schema_path, files = sys.argv[1], sys.argv[2:]
    with open(schema_path) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f, object_pairs_hook=no_duplicates)
            errors = [e.json_path + ": " + e.message[:120] for e in validator.iter_errors(doc)]
        except (ValueError, UnicodeDecodeError) as e:
            errors = ["not JSON: " + str(e)[:120]]
        print(json.dumps({"file": path, "valid": not errors, "errors": errors}))


if __name__ == "__main__":
    main()
