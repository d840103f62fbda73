"""HTML from Jinja2 templates, autoescaped: every page and message the monitor renders as HTML.

Each package keeps its templates in its own `templates/` folder, shipped in the wheel as package
data. Every value is escaped unless it is Markup (a fragment rendered by the same environment), an
undefined name is an error rather than an empty string, and the unit formatters of
shared/core/formats.py are filters: `{{ total|cores }}`, `{{ peak|bytes }}`, `{{ ts|utc }}`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from shared.core.formats import format_bytes, format_cores, format_duration, format_millicores, utc_minute


@cache
def _environment(package: str) -> Any:
    """Built on first use: a JSON or CSV answer never imports Jinja2."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader(package, "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(cores=format_cores, millicores=format_millicores, bytes=format_bytes,
                       duration=format_duration, utc=utc_minute)
    return env


def render(package: str, template: str, **context: Any) -> str:
    """`template` from the `templates/` folder of `package`, rendered with `context`."""
    return str(_environment(package).get_template(template).render(**context))
