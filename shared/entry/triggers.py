"""What started a function: a CloudEvent (binary or structured), a plain HTTP call, or the CLI.

Bad input is answered here with a clear message and a 4xx status, before anything is stored.
"""

from __future__ import annotations

import json
from typing import Any

from shared.domain.errors import InvalidInput
from shared.domain.trigger import Trigger

PING_EVENT_TYPE = "dev.knative.sources.ping"


class BadRequest(InvalidInput):
    """A request refused at the HTTP edge; `status` is the answer (400, 401, 404, 405, 413, 415)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def is_cloudevent(headers: Any) -> bool:
    """Whether `headers` mark a CloudEvent, in binary (`Ce-Specversion`) or structured content mode."""
    content_type = (headers.get("Content-Type") or "").lower()
    return "ce-specversion" in map(str.lower, headers.keys()) or content_type.startswith(
        "application/cloudevents+json"
    )


def parse_http_trigger(request: Any, accepted_types: frozenset[str], max_bytes: int) -> Trigger:
    """A Flask request turned into a Trigger, or BadRequest naming what is wrong."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise BadRequest(f"request body of {length} bytes is larger than the limit of {max_bytes} bytes", 413)
    body = request.get_data(cache=True)
    if len(body) > max_bytes:
        raise BadRequest(f"request body is larger than the limit of {max_bytes} bytes", 413)
    if is_cloudevent(request.headers):
        return _cloudevent_trigger(request.headers, body, accepted_types)
    if request.method != "POST":
        raise BadRequest(f"method {request.method} not allowed; send POST", 405)
    return Trigger("http", parse_json_object(body, "request body"))


def _cloudevent_trigger(headers: Any, body: bytes, accepted_types: frozenset[str]) -> Trigger:
    from cloudevents.exceptions import GenericException
    from cloudevents.http import from_http

    try:
        event = from_http(dict(headers), body)
    except GenericException as exc:
        raise BadRequest(f"malformed CloudEvent: {exc}") from None
    event_type = event["type"]
    if event_type not in accepted_types:
        expected = ", ".join(sorted(accepted_types))
        raise BadRequest(f"unsupported CloudEvent type {event_type!r}; expected {expected}")
    data = event.get_data()
    if isinstance(data, (bytes, str)):
        data = parse_json_object(data.encode() if isinstance(data, str) else data, "CloudEvent data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadRequest("CloudEvent data must be a JSON object")
    return Trigger("cloudevent", data, event["source"], event["id"], event_type)


def parse_json_object(body: bytes, what: str) -> dict[str, Any]:
    """An empty body is {}; anything else must be one JSON object."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object, got {type(value).__name__}")
    return value
