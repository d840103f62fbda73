"""The Jinja2 environment the report page and its charts are rendered with.

Templates live in templates/ of this package (shipped in the wheel as package data). Every value
is escaped unless it is Markup (a chart rendered by the same environment), and an undefined name
is an error, not an empty string. The unit formatters are filters: `{{ total|cores }}`, `{{ peak|bytes }}`,
`{{ ts|utc }}`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from shared.core.timeutil import utc_minute
from shared.domain.rightsizing import format_bytes, format_cores, format_millicores, format_span


@cache
def environment() -> Environment:
    """Built on first use: importing the report costs nothing for JSON and CSV answers."""
    env = Environment(loader=PackageLoader("shared.domain.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(cores=format_cores, millicores=format_millicores, bytes=format_bytes, span=format_span,
                       utc=lambda seconds: f"{utc_minute(seconds)} UTC")
    return env


def render(template: str, **context: Any) -> str:
    """The named template of templates/ rendered with `context`."""
    return environment().get_template(template).render(**context)
