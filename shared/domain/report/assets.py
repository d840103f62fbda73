"""The page's own stylesheet and script (static/), inlined into every page, and the policy allowing them.

Inlined rather than served from a path of their own: the report function answers at `/` on Knative,
under `/report` in `k8s-monitor serve` and behind whatever prefix an ingress adds, and an inlined
asset needs no route in any of them; a saved page keeps working offline. They are small (a few KB;
tests/test_report_page.py keeps them under 150 KB). The Content-Security-Policy names their SHA-256
hashes: no other script or style runs, nothing is fetched from elsewhere, and the page cannot be
framed.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from importlib import resources

from markupsafe import Markup

_PACKAGE = "shared.domain.report"


@cache
def _asset(name: str) -> str:
    return (resources.files(_PACKAGE) / "static" / name).read_text(encoding="utf-8")


def page_stylesheet() -> Markup:
    """The page's CSS, to go between <style> and </style> as it is."""
    return Markup(_asset("report.css"))


def page_script() -> Markup:
    """The page's JavaScript, to go between <script> and </script> as it is."""
    return Markup(_asset("report.js"))


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


@cache
def content_security_policy() -> str:
    """The Content-Security-Policy header of the page: its own inlined script and stylesheet only."""
    return "; ".join((
        "default-src 'none'", f"script-src {_sha256(_asset('report.js'))}",
        f"style-src {_sha256(_asset('report.css'))}", "img-src data:", "form-action 'self'",
        "base-uri 'none'", "frame-ancestors 'none'"))
