"""How to reach this setup's Prometheus: the API's base URL, headers, credentials and TLS, from the settings.

A central Thanos, Mimir or VictoriaMetrics, a managed Prometheus and a private one behind a proxy
differ only here. Credentials are taken at each client's start (one per run, one per health check):
the bearer token file is read again every time, so a token the platform rotates (a projected
service-account token, a managed Prometheus' short-lived key) works without a restart. Each value
read is registered with the log redactor before it is used.

An answer that every query would get alike (wrong credentials, no tenant, no API at this path, a
certificate that does not verify) is explained in words that name the setting to change.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from shared.core.logs import register_secrets
from shared.core.settings import Settings

TENANT_HINTS = ("no org id", "orgid", "tenant")  # Mimir and Cortex: "no org id"; others name the tenant


@dataclass(frozen=True)
class Access:
    """The API's base URL, a session carrying the setup's headers and credentials, and how to verify TLS.

    `verify` goes with each request, not on the session: requests lets REQUESTS_CA_BUNDLE (set in
    many images) override a session's CA file, never a request's.
    """

    base_url: str
    session: requests.Session
    auth_kind: str  # "basic", "bearer" or "none": what a 401 is about
    verify: bool | str = True


def open_access(settings: Settings) -> Access:
    """A session for PROMETHEUS_URL + PROMETHEUS_PATH_PREFIX; OSError when the token file cannot be read.

    The connection pool holds PROMETHEUS_MAX_CONCURRENCY connections: the queries of a run share it.
    """
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.prometheus_max_concurrency)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    headers = settings.prometheus_header_values()
    session.headers.update(headers)
    auth_kind = "none"
    token = bearer_token(settings)
    if token is not None:
        session.headers["Authorization"] = f"Bearer {token}"
        auth_kind = "bearer"
    elif settings.prometheus_username:
        password = settings.prometheus_password.get_secret_value() if settings.prometheus_password else ""
        session.auth = (settings.prometheus_username, password)
        auth_kind = "basic"
    verify: bool | str = True
    if settings.prometheus_ca_file is not None:
        verify = str(settings.prometheus_ca_file)
    elif settings.prometheus_tls_insecure_skip_verify:
        verify = False
    return Access(settings.prometheus_url + settings.prometheus_path_prefix, session, auth_kind, verify)


def bearer_token(settings: Settings) -> str | None:
    """The token to send: PROMETHEUS_BEARER_TOKEN_FILE read now (it may have been rotated), else the variable."""
    if settings.prometheus_bearer_token_file is not None:
        token = settings.prometheus_bearer_token_file.read_text(encoding="utf-8").strip()
        register_secrets([token])
        return token or None
    if settings.prometheus_bearer_token is not None:
        return settings.prometheus_bearer_token.get_secret_value().strip() or None
    return None


def refusal_hint(status: int, error_text: str, auth_kind: str) -> str | None:
    """What to change when every query would get this answer; None when the answer is about one query.

    401: the credentials; 403: their rights or the tenant; 404: the URL or its path prefix; a 400,
    401 or 403 that names the tenant (Mimir's "no org id"): PROMETHEUS_HEADERS.
    """
    text = error_text.lower()
    if status in (400, 401, 403) and any(hint in text for hint in TENANT_HINTS):
        return ("a multi-tenant Prometheus (Mimir, Cortex) wants the tenant: set PROMETHEUS_HEADERS, e.g. "
                "X-Scope-OrgID=<tenant>")
    if status == 401:
        return {
            "basic": "the login was refused: check PROMETHEUS_USERNAME and PROMETHEUS_PASSWORD",
            "bearer": "the token was refused: check PROMETHEUS_BEARER_TOKEN_FILE (or PROMETHEUS_BEARER_TOKEN)",
        }.get(auth_kind, "it wants credentials: set PROMETHEUS_BEARER_TOKEN_FILE, or PROMETHEUS_USERNAME and "
                         "PROMETHEUS_PASSWORD, or the header it asks for in PROMETHEUS_HEADERS")
    if status == 403:
        return ("the credentials may not read this data: check their permissions, and the tenant in "
                "PROMETHEUS_HEADERS")
    if status == 404:
        return ("no Prometheus API here: check PROMETHEUS_URL and PROMETHEUS_PATH_PREFIX (Mimir and Grafana Cloud: "
                "/prometheus, VictoriaMetrics cluster: /select/<tenant>/prometheus)")
    return None


def tls_hint(exc: requests.exceptions.SSLError, settings: Settings) -> str:
    """Why TLS to Prometheus failed, and the setting that fixes it."""
    if _certificate_not_verified(exc):
        where = (f"with the CA in PROMETHEUS_CA_FILE ({settings.prometheus_ca_file})"
                 if settings.prometheus_ca_file else "with the system's CAs")
        return (f"its TLS certificate does not verify {where}: set PROMETHEUS_CA_FILE to the CA that signed it "
                f"(PROMETHEUS_TLS_INSECURE_SKIP_VERIFY=true turns verification off, for tests only)")
    return "the TLS handshake failed: check that PROMETHEUS_URL says https only where the server speaks TLS"


def _certificate_not_verified(exc: BaseException) -> bool:
    """Whether an ssl.SSLCertVerificationError is behind `exc` (requests and urllib3 wrap it twice)."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        error = pending.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        if isinstance(error, ssl.SSLCertVerificationError):
            return True
        seen.add(id(error))
        pending += [error.__cause__, error.__context__, getattr(error, "reason", None), *error.args]
    return False
