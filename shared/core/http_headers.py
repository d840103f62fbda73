"""Extra HTTP headers from a setting: `Name=value` pairs separated by commas, checked before any request.

A multi-tenant Prometheus (Mimir, Cortex, a VictoriaMetrics proxy) picks the tenant from a header
such as `X-Scope-OrgID`; a managed one may want an API key in another. Values can be secrets, so
the whole setting is one (`PROMETHEUS_HEADERS` or `PROMETHEUS_HEADERS_FILE`), and each value is
masked in logs and answers, but a tenant id's (NAMING_HEADERS).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field-name
# Header values that name rather than authorize: a tenant id, often also a namespace's name, is not
# masked in logs and answers (masking it would hide every mention of that namespace).
NAMING_HEADERS = frozenset({"x-scope-orgid"})
# Headers the HTTP client writes itself: set here they would corrupt the request or its framing.
RESERVED = frozenset({"host", "content-length", "content-type", "transfer-encoding", "connection", "accept-encoding"})


def parse_headers(text: str) -> dict[str, str]:
    """`X-Scope-OrgID=team-a,X-Api-Key=...` as {name: value}; ValueError naming the bad pair (never its value)."""
    headers: dict[str, str] = {}
    for number, pair in enumerate((part.strip() for part in text.split(",")), start=1):
        if not pair:
            continue
        name, equals, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not equals:
            raise ValueError(f"pair {number} has no '=': write Name=value pairs separated by commas")
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"pair {number}: {name!r} is not a header name")
        if name.lower() in RESERVED:
            raise ValueError(f"pair {number}: {name} is set by the HTTP client itself")
        if not value:
            raise ValueError(f"pair {number} ({name}) has an empty value")
        if any(ord(char) < 0x20 and char != "\t" or ord(char) == 0x7F for char in value):
            raise ValueError(f"pair {number} ({name}): the value holds a control character")
        if name.lower() in (known.lower() for known in headers):
            raise ValueError(f"pair {number}: {name} is given twice")
        headers[name] = value
    return headers
