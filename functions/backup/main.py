"""backup: an online backup of the database, then backup retention; from a PingSource CloudEvent or HTTP POST."""

from typing import TYPE_CHECKING

import functions_framework

from shared.entry.backup import backup_from_http
from shared.entry.http import Answer, handles_errors, json_answer, start_function

if TYPE_CHECKING:
    import flask

SETTINGS = start_function("backup")


@functions_framework.http
@handles_errors("backup")
def backup(request: "flask.Request") -> Answer:
    """Run one backup and prune old ones; the outcome as JSON, non-2xx when the backup failed."""
    body, status = backup_from_http(request, SETTINGS)
    return json_answer(body, status)
