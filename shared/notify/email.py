"""An alert group as an email (plain text with an HTML alternative), and sending it over SMTP.

`smtplib` verifies no certificate unless given a context, so STARTTLS and SSL always use
`ssl.create_default_context()` (with SMTP_CA_FILE for a private CA). Each SMTP failure is sorted
into worth a retry (connection trouble, 4xx replies) or not (a refused login, 5xx replies, a
certificate that does not verify), with a message that names the setting to fix.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from shared.core.settings import Settings
from shared.core.templates import render
from shared.notify.delivery import Attempt
from shared.notify.message import PRODUCT, AlertGroup, alert_names, context_labels, headline, plain_text

TEMPLATES = "shared.notify"  # the package whose templates/ hold the email
_COLORS = {"critical": "#b71c1c", "warning": "#e65100", "info": "#0d47a1"}


def email_message(group: AlertGroup, sender: str, recipients: tuple[str, ...], now: float,
                  cluster: str | None = None) -> EmailMessage:
    """The message for `group`, ready for `send_message`; `cluster` (CLUSTER_NAME) in its subject."""
    message = EmailMessage()
    message["Subject"] = f"[{PRODUCT}] {headline(group, cluster)} — {alert_names(group)}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(now, usegmt=True)
    message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
    message.set_content(plain_text(group, cluster))
    message.add_alternative(_html(group, cluster), subtype="html")
    return message


def _html(group: AlertGroup, cluster: str | None) -> str:
    """The HTML alternative, from templates/alert_email.html (autoescaped: alert text comes from outside)."""
    return render(TEMPLATES, "alert_email.html", group=group, headline=headline(group, cluster),
                  color=_COLORS.get(group.severity, "#424242"), context_labels=context_labels, product=PRODUCT)


def send_email(settings: Settings, message: EmailMessage, timeout_seconds: float | None = None) -> Attempt:
    """Deliver `message` to the SMTP server in the settings; one attempt, classified.

    `timeout_seconds` (default NOTIFY_TIMEOUT_SECONDS) bounds each exchange with the server.
    """
    host, port, security = settings.smtp_host or "", settings.smtp_port, settings.smtp_security
    timeout = settings.notify_timeout_seconds if timeout_seconds is None else timeout_seconds
    where = f"SMTP server {host}:{port}"
    try:
        context = ssl.create_default_context(cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)
    except OSError as exc:
        return Attempt("failed", f"cannot read SMTP_CA_FILE {settings.smtp_ca_file}: {exc.strerror or exc}")
    try:
        client: smtplib.SMTP
        if security == "ssl":
            client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            if security == "starttls":
                client.starttls(context=context)
            if settings.smtp_username:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                client.login(settings.smtp_username, password)
            refused = client.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        return Attempt("failed", f"{where} refused the login of SMTP_USERNAME {settings.smtp_username!r}: "
                                 f"{_reply(exc)}; check SMTP_USERNAME and SMTP_PASSWORD")
    except smtplib.SMTPNotSupportedError as exc:
        hint = "set SMTP_SECURITY=ssl or none" if security == "starttls" else "check SMTP_USERNAME"
        return Attempt("failed", f"{where} does not support what was asked ({exc}); {hint}")
    except smtplib.SMTPRecipientsRefused as exc:
        return Attempt("failed", f"{where} refused every recipient ({', '.join(exc.recipients)}); check SMTP_TO")
    except smtplib.SMTPSenderRefused as exc:
        return Attempt("failed", f"{where} refused the sender {exc.sender!r}: {_reply(exc)}; check SMTP_FROM")
    except smtplib.SMTPResponseException as exc:
        status = "retry" if 400 <= exc.smtp_code < 500 else "failed"
        return Attempt(status, f"{where} answered {_reply(exc)}")
    except ssl.SSLCertVerificationError as exc:
        return Attempt("failed", f"{where}: the TLS certificate does not verify ({exc.verify_message}); "
                                 f"fix the server certificate or set SMTP_CA_FILE to its CA")
    except ssl.SSLError as exc:
        return Attempt("failed", f"{where}: TLS failed ({exc.reason or exc}); check SMTP_SECURITY and SMTP_PORT")
    except (OSError, smtplib.SMTPException) as exc:  # refused, reset, timed out, disconnected
        return Attempt("retry", f"{where}: {type(exc).__name__}: {exc}")
    if refused:
        return Attempt("sent", f"{where} refused some recipients: {', '.join(sorted(refused))}")
    return Attempt("sent")


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {text}"
