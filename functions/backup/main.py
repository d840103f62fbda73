"""backup: an online backup of the database, then backup retention; from a PingSource CloudEvent or HTTP POST."""

from typing import TYPE_CHECKING

import functions_framework

from shared.entry import backup as entry

if TYPE_CHECKING:
    import flask

    from shared.entry.http import AnyAnswer


@functions_framework.http
def backup(request: "flask.Request") -> "AnyAnswer":
    """Run one backup and prune old ones; the outcome as JSON, non-2xx when the backup failed."""
    return entry.backup(request)
