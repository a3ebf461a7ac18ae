"""Validates NDJSON events against Suricata's EVE schema, extra fields allowed: every field that
both spamtap and the schema define must match the schema's type and format. Reads the schema
path from argv[1] and event lines from stdin; prints one line per problem and exits 1 if any."""
import json
import sys

import jsonschema


def allow_extra(node):
    """Drops every `additionalProperties: false` and nested `required`: spamtap writes fields
    EVE does not have, and need not write every field EVE has."""
    if isinstance(node, dict):
        node.pop("additionalProperties", None)
        node.pop("required", None)
        for value in node.values():
            allow_extra(value)
    elif isinstance(node, list):
        for value in node:
            allow_extra(value)


schema = json.load(open(sys.argv[1]))
top_required = schema.get("required", [])
allow_extra(schema)
schema["required"] = top_required
validator = jsonschema.Draft202012Validator(schema)
problems = 0
lines = 0
for number, line in enumerate(sys.stdin, 1):
    lines += 1
    event = json.loads(line)
    for error in validator.iter_errors(event):
        problems += 1
        path = ".".join(str(p) for p in error.absolute_path)
        print(f"line {number} ({event.get('event_type')}): {path}: {error.message[:300]}")
print(f"{lines} events, {problems} problems", file=sys.stderr)
sys.exit(1 if problems or lines == 0 else 0)
