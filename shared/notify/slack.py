"""A Slack incoming-webhook message for one alert group: fallback text plus Block Kit blocks.

Slack rejects a message whose section text passes 3000 characters or that has more than 50 blocks
(400 `invalid_blocks`), and reads `&`, `<` and `>` as markup. Everything here is escaped and cut to
those limits, so a long description or two hundred alerts still arrive as one readable message.
"""

from __future__ import annotations

from shared.core.formats import utc_minute
from shared.domain.alerts.model import Alert
from shared.notify.message import PRODUCT, AlertGroup, alert_names, context_labels, headline

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_HEADER_CHARS = 150
MAX_CONTEXT_CHARS = 2000
MAX_TEXT_CHARS = 3000
_ELLIPSIS = "…"
_ICONS = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


def escape(text: str) -> str:
    """Slack's three control characters as entities; nothing else is escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis, never inside an `&amp;`-style entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(_ELLIPSIS)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + _ELLIPSIS


def link(url: str, label: str) -> str:
    """`<url|label>` for an http(s) URL; anything else is shown as escaped text."""
    if not url.startswith(("http://", "https://")):
        return escape(url)
    return f"<{escape(url).replace('|', '%7C')}|{escape(label)}>"


def slack_payload(group: AlertGroup, cluster: str | None = None) -> dict:
    """The JSON body to POST to the webhook; `cluster` (CLUSTER_NAME) in its title."""
    icon = _ICONS.get(group.severity, ":white_circle:")
    title = truncate(f"{headline(group, cluster)} — {alert_names(group)}", MAX_HEADER_CHARS)
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}}]
    room = MAX_BLOCKS - 2  # the header and the footer
    shown = group.alerts[:room]
    blocks += [_section(alert, icon) for alert in shown]
    hidden = len(group.alerts) - len(shown) + group.truncated
    footer = PRODUCT
    if hidden:
        footer += f" · {hidden} more alert{'s' if hidden != 1 else ''} not shown"
    if group.external_url:
        footer += f" · {link(group.external_url, 'open')}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(footer, MAX_CONTEXT_CHARS)}]})
    return {"text": truncate(escape(_fallback(group, cluster)), MAX_TEXT_CHARS), "blocks": blocks}


def _section(alert: Alert, icon: str) -> dict:
    state = f"{icon} *FIRING*" if alert.status == "firing" else ":white_check_mark: *RESOLVED*"
    lines = [f"{state} *{escape(alert.name)}* — {escape(alert.summary)}"]
    labels = " ".join(f"`{escape(k)}={escape(v)}`" for k, v in context_labels(alert))
    if labels:
        lines.append(labels)
    span = f"since {utc_minute(alert.starts_at)}"
    if alert.status != "firing":
        span += f", resolved {utc_minute(alert.ends_at)}"
    if alert.generator_url:
        span += f" · {link(alert.generator_url, 'source')}"
    lines.append(span)
    if alert.description:
        lines.append(escape(alert.description))
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate("\n".join(lines), MAX_SECTION_CHARS)}}


def _fallback(group: AlertGroup, cluster: str | None) -> str:
    """The notification text (phones, screen readers): the headline and the first few alerts."""
    firsts = "; ".join(f"{a.name} {a.where}".strip() for a in group.alerts[:5])
    more = f"; +{len(group.alerts) - 5} more" if len(group.alerts) > 5 else ""
    return f"[{PRODUCT}] {headline(group, cluster)}: {firsts}{more}"
