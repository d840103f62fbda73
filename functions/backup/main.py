"""backup: an online backup of the database, then backup retention; from a PingSource CloudEvent or HTTP POST."""

import functions_framework

from shared.backup_entry import backup_from_http
from shared.http import handles_errors, json_answer, start_function

SETTINGS = start_function("backup")


@functions_framework.http
@handles_errors("backup")
def backup(request):  # type: ignore[no-untyped-def]
    body, status = backup_from_http(request, SETTINGS)
    return json_answer(body, status)
