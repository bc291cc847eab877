"""Schemathesis hooks for tests/api/openapi_schemathesis.rs (SCHEMATHESIS_HOOKS).

The document describes an application/x-ndjson body as a string (its lines);
schemathesis has no serializer for that media type, so this one sends the
generated string as it is.
"""
import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    # Anything else the generator makes (negative mode) goes as one JSON line.
    return (json.dumps(value) + "\n").encode("utf-8")
