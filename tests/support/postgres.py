"""A real PostgreSQL server (Debian's package) for the tests: started on 127.0.0.1 on a free port in a
temporary directory, once per test session, and stopped at its end.

PostgreSQL refuses to run as root, so as root the server runs as the unprivileged `postgres` user the
Debian package creates (its directory handed over to that user); otherwise as whoever runs the tests.
Durability is off (fsync, full pages): a test server holds nothing worth a crash-safe write, and it
starts in under a second. Each test takes a fresh database (`create_database`): CREATE DATABASE from
a template is a file copy, much faster than a new server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

SUPERUSER = "postgres"


def postgres_bin_dir() -> Path | None:
    """The newest installed server's bin directory (/usr/lib/postgresql/<major>/bin), None without one."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda path: int(path.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One running server; `url(database)` names a database on it as DATABASE_URL would."""

    def __init__(self, bin_dir: Path, directory: Path, port: int, run_as: str | None) -> None:
        self.bin_dir, self.directory, self.port, self._run_as = bin_dir, directory, port, run_as
        self.host = "127.0.0.1"

    def url(self, database: str, user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"

    def command(self, *args: str) -> list[str]:
        """`args` run as the server's owner (a client tool such as psql, pg_dump or pg_ctl)."""
        if self._run_as is None:
            return list(args)
        return ["runuser", "-u", self._run_as, "--", *args]

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run `sql` as the superuser; its output (unaligned, tuples only)."""
        done = subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.host,
             "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql],
            capture_output=True, text=True, check=False, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def create_database(self, template: str | None = None) -> str:
        """A new empty database (or a copy of `template`); its name."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(self.command(str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"), "-m", mode,
                                    "-w", "stop"), capture_output=True, check=False, timeout=60)

    def start(self) -> None:
        """Start (or start again after `stop`) on the same port and data."""
        options = (f"-c listen_addresses={self.host} -p {self.port} -c unix_socket_directories={self.directory}"
                   " -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200")
        done = subprocess.run(
            self.command(str(self.bin_dir / "pg_ctl"), "-D", str(self.directory / "data"), "-o", options,
                         "-l", str(self.directory / "server.log"), "-w", "-t", "60", "start"),
            capture_output=True, text=True, check=False, timeout=90)
        if done.returncode != 0:
            log = (self.directory / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL did not start: {done.stderr.strip()}\n{log}")


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh server for the `with` block; skips nothing: without PostgreSQL installed it raises, as a
    missing Prometheus does (`make test` installs it)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed: run `make test` (it installs Debian's postgresql)")
    run_as = SUPERUSER if os.geteuid() == 0 else None
    directory = Path(tempfile.mkdtemp(prefix="k8s-monitor-pg-"))
    try:
        if run_as:
            user = pwd.getpwnam(run_as)
            os.chown(directory, user.pw_uid, user.pw_gid)
        server = PostgresServer(bin_dir, directory, _free_port(), run_as)
        done = subprocess.run(
            server.command(str(bin_dir / "initdb"), "-D", str(directory / "data"), "-A", "trust", "-U", SUPERUSER,
                           "--no-sync", "-E", "UTF8", "--locale=C"),
            capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip()}")
        server.start()
        try:
            yield server
        finally:
            server.stop("immediate")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
