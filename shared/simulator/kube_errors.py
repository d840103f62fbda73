"""Kubernetes `Status` error bodies, worded as the API server words them.

The collector turns these into messages an operator acts on (which RBAC verb is missing, that a
continue token expired), so codes, reasons, messages and details match the real server's.
"""

from __future__ import annotations

import json

SERVICE_ACCOUNT_USER = "system:serviceaccount:monitoring:k8s-resource-monitor"
_REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    409: "Conflict", 410: "Expired", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
    503: "ServiceUnavailable", 504: "Timeout",
}
_MESSAGES = {
    401: "Unauthorized",
    404: "the server could not find the requested resource",
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: simulated failure",
    503: "the server is currently unable to handle the request",
    504: "Timeout: request did not complete within the allotted timeout",
}


class ApiError(Exception):
    """An error answer: HTTP code plus the Status body fields."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def body(self) -> bytes:
        status: dict[str, object] = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason,
        }
        if self.details is not None:
            status["details"] = self.details
        status["code"] = self.code
        return json.dumps(status).encode()


def generic(code: int) -> ApiError:
    """The error a real server sends for a bare status code (used for injected faults)."""
    details: dict[str, object] | None = {"retryAfterSeconds": 1} if code == 429 else {} if code == 404 else None
    return ApiError(code, _REASONS.get(code, "InternalError"), _MESSAGES.get(code, f"simulated error {code}"), details)


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(resource: str, group: str, name: str | None) -> dict[str, object]:
    details: dict[str, object] = {"name": name} if name else {}
    if group:
        details["group"] = group
    details["kind"] = resource
    return details


def forbidden(verb: str, resource: str, group: str, namespace: str | None, name: str | None) -> ApiError:
    subject = f'{_qualified(resource, group)} "{name}"' if name else _qualified(resource, group)
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return ApiError(403, "Forbidden", (
        f'{subject} is forbidden: User "{SERVICE_ACCOUNT_USER}" cannot {verb} resource "{resource}"'
        f' in API group "{group}" {scope}'
    ), _details(resource, group, name))


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    _details(resource, group, name))


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                    _details(resource, group, name))


def conflict(resource: str, group: str, name: str) -> ApiError:
    return ApiError(409, "Conflict", (
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": the object has been'
        " modified; please apply your changes to the latest version and try again"
    ), _details(resource, group, name))


def continue_expired() -> ApiError:
    return ApiError(410, "Expired", (
        "The provided continue parameter is too old to display a consistent list result."
        " You can start a new list without the continue parameter."
    ))


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(kind: str, group: str, name: str, field: str, value: object, detail: str) -> ApiError:
    return ApiError(422, "Invalid", f'{kind}.{group} "{name}" is invalid: {field}: Invalid value: {value}: {detail}', {
        "name": name, "group": group, "kind": kind,
        "causes": [{"reason": "FieldValueInvalid", "message": f"Invalid value: {value}: {detail}", "field": field}],
    })
