"""The PostgreSQL client tools behind backups and restores of a PostgreSQL store.

A backup is `pg_dump --format=custom` (compressed by pg_dump itself, one consistent snapshot of the
database while collections go on writing), checked with `pg_restore --list`, which reads the whole
table of contents and refuses a truncated or foreign file. A restore is `pg_restore` in one
transaction: it either loads everything or changes nothing.

The tools are subprocesses (Debian's postgresql-client in the image), so nothing here depends on a
database driver or on the store's schema: whatever the database holds is dumped and restored. The
password travels only in PGPASSWORD (`PostgresTarget.client_env`), never on a command line another
process could read; errors name the server by its shown URL and have the password removed from
whatever the tools print.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shared.core.database_url import PostgresTarget

DUMP_COMPRESS_LEVEL = 6
TOOL_TIMEOUT_SECONDS = 3600  # a day's history of a large cluster dumps in minutes; a hung server must end
# What a server that is down, restarting or out of reach makes libpq say: worth trying again later.
_UNREACHABLE = ("Connection refused", "timeout expired", "Connection timed out", "No route to host",
                "could not translate host name", "server closed the connection", "the database system is")
_REFUSED_LOGIN = ("password authentication failed", "no pg_hba.conf entry", "no password supplied",
                  "does not exist")
_VERSION_MISMATCH = "server version mismatch"
# Objects a database holds of its own (not PostgreSQL's catalogs): tables, views, sequences, ...
_USER_OBJECTS_SQL = (
    "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
    " ORDER BY 1"
)
_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (?!DATA )(\S+) (\S+) ")  # a table, not its data


class PostgresToolError(Exception):
    """A client tool failed; the message names the server (no password) and says why.
    `retriable` when the server could not be reached: trying again later may succeed."""

    def __init__(self, message: str, retriable: bool = False):
        super().__init__(message)
        self.retriable = retriable


@dataclass(frozen=True)
class DumpContents:
    """What `pg_restore --list` read from a dump: the tables it creates (schema.name)."""

    tables: tuple[str, ...]


def dump_database(target: PostgresTarget, destination: Path) -> None:
    """`pg_dump` of the whole database into `destination`, an existing (empty, 0600) file it overwrites."""
    _run(target, "pg_dump", ["--format=custom", f"--compress={DUMP_COMPRESS_LEVEL}", "--no-password",
                             f"--file={destination}"], doing="dump")


def read_dump(dump: Path) -> DumpContents:
    """Read a dump's whole table of contents (`pg_restore --list`); PostgresToolError if it is damaged."""
    done = _tool("pg_restore", ["--list", str(dump)], env={}, timeout=TOOL_TIMEOUT_SECONDS)
    if done.returncode != 0:
        raise PostgresToolError(f"{dump.name} is not a readable pg_dump archive: {_first_line(done.stderr)}")
    tables = tuple(f"{m.group(1)}.{m.group(2)}" for line in done.stdout.splitlines() if (m := _TOC_TABLE.match(line)))
    return DumpContents(tables)


def user_objects(target: PostgresTarget) -> list[str]:
    """The tables, views and sequences the database holds (schema.name), outside PostgreSQL's own."""
    done = _run(target, "psql", ["-X", "--no-password", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", _USER_OBJECTS_SQL],
                doing="inspect")
    return [line for line in done.stdout.splitlines() if line]


def restore_dump(target: PostgresTarget, dump: Path, replace: bool) -> None:
    """Load `dump` in one transaction; with `replace`, the objects it holds are dropped and recreated first.

    Ownership and grants are left out: the dump may come from a server where another role owned the
    tables; restored, they belong to the role restoring them (DATABASE_URL's user).
    """
    options = ["--exit-on-error", "--single-transaction", "--no-owner", "--no-privileges", "--no-password",
               f"--dbname={target.dbname}"]
    if replace:
        options += ["--clean", "--if-exists"]
    _run(target, "pg_restore", [*options, str(dump)], doing="restore into")


def _run(target: PostgresTarget, tool: str, args: list[str], doing: str) -> subprocess.CompletedProcess[str]:
    done = _tool(tool, args, env=target.client_env(), timeout=TOOL_TIMEOUT_SECONDS)
    if done.returncode == 0:
        return done
    detail = _first_line(done.stderr)
    if target.password:
        detail = detail.replace(target.password, "***")
    unreachable = any(marker in detail for marker in _UNREACHABLE)
    advice = ""
    if _VERSION_MISMATCH in detail:
        advice = ("; the image's PostgreSQL client is older than the server: build the image with the server's "
                  "client version (README.md, \"Backups on PostgreSQL\")")
    elif unreachable:
        advice = "; check that the server is up and reachable at DATABASE_URL's host and port"
    elif any(marker in detail for marker in _REFUSED_LOGIN):
        advice = "; check DATABASE_URL's user and database, and DATABASE_PASSWORD"
    raise PostgresToolError(f"could not {doing} {target.shown}: {tool}: {detail}{advice}", retriable=unreachable)


def _tool(tool: str, args: list[str], env: dict[str, str], timeout: int) -> subprocess.CompletedProcess[str]:
    """Run a client tool with only the libpq variables of `env` added to a clean environment."""
    path = shutil.which(tool)
    if path is None:
        raise PostgresToolError(f"{tool} is not installed: backups of a PostgreSQL database need the PostgreSQL "
                                f"client tools (Debian's postgresql-client, in the image)")
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
    try:
        return subprocess.run([path, *args], env={**inherited, **env}, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise PostgresToolError(f"{tool} did not finish within {timeout}s", retriable=True) from None


def _first_line(stderr: str) -> str:
    """The tool's own error, without its name prefix; the first lines tell the cause."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    text = "; ".join(lines[:3]) or "failed without a message"
    return re.sub(r"^(pg_dump|pg_restore|psql): (error: )?", "", text)
