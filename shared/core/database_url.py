"""Where the store lives: DATABASE_URL parsed into a SQLite file or a PostgreSQL server.

`sqlite:///relative/path.db` and `sqlite:////absolute/path.db` follow SQLAlchemy's spelling (three
slashes, then the path), so a URL an operator already uses elsewhere means the same here.
`postgresql://user@host:5432/dbname?sslmode=verify-full` is libpq's URL: its query parameters are
libpq connection parameters (sslmode, sslrootcert, connect_timeout, ...) passed through as they are.
The password comes from DATABASE_PASSWORD (or its _FILE twin, a mounted Secret) or from the URL;
`shown` is the URL without it, the only form logs, answers and archives ever see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

POSTGRES_SCHEMES = ("postgresql", "postgres")
DEFAULT_POSTGRES_PORT = 5432
# libpq's values; `disable` and `allow` send the password in clear text over the network.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class SqliteTarget:
    """A SQLite file on a mounted volume: one writer, one node."""

    path: Path

    @property
    def shown(self) -> str:
        return f"sqlite:///{self.path}"


@dataclass(frozen=True)
class PostgresTarget:
    """A PostgreSQL database that many processes, nodes and clusters share."""

    host: str
    port: int
    user: str
    dbname: str
    parameters: dict[str, str] = field(default_factory=dict)  # libpq parameters from the URL's query
    password: str | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        """The URL without a password: what may be logged or answered."""
        query = "&".join(f"{name}={value}" for name, value in sorted(self.parameters.items()))
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}" + (f"?{query}" if query else "")

    def connect_kwargs(self) -> dict[str, str | int]:
        """libpq connection parameters (psycopg.connect(**...)), the password included when set."""
        kwargs: dict[str, str | int] = {"host": self.host, "port": self.port, "user": self.user,
                                        "dbname": self.dbname, **self.parameters}
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs

    def client_env(self) -> dict[str, str]:
        """Environment for the libpq client tools (pg_dump, pg_restore, psql): the password travels in
        PGPASSWORD, never on a command line another process could read."""
        env = {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user, "PGDATABASE": self.dbname}
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        for name, variable in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("sslcert", "PGSSLCERT"),
                               ("sslkey", "PGSSLKEY"), ("connect_timeout", "PGCONNECT_TIMEOUT")):
            if name in self.parameters:
                env[variable] = self.parameters[name]
        return env


DatabaseTarget = SqliteTarget | PostgresTarget


def parse_database_url(url: str, password: str | None = None) -> DatabaseTarget:
    """DATABASE_URL as a target; `password` (DATABASE_PASSWORD) wins over one in the URL.

    Raises ValueError with a message that never quotes a password.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
            raise ValueError("a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db")
        if parts.query:
            raise ValueError("a SQLite URL takes no query parameters")
        return SqliteTarget(Path(unquote(parts.path[1:])))
    if scheme not in POSTGRES_SCHEMES:
        shown = scheme or url.split(":", 1)[0][:20]
        raise ValueError(f"unknown database {shown!r}: use sqlite:///path or postgresql://user@host:5432/dbname")
    try:
        port = parts.port or DEFAULT_POSTGRES_PORT
    except ValueError:
        raise ValueError("the port is not a number") from None
    if not parts.hostname:
        raise ValueError("a PostgreSQL URL names its server: postgresql://user@host:5432/dbname")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or "/" in dbname:
        raise ValueError("a PostgreSQL URL names one database: postgresql://user@host:5432/dbname")
    if not parts.username:
        raise ValueError("a PostgreSQL URL names its user: postgresql://user@host:5432/dbname")
    parameters = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "password" in parameters:
        raise ValueError("the password does not belong in the query: set DATABASE_PASSWORD (or _FILE)")
    sslmode = parameters.get("sslmode")
    if sslmode is not None and sslmode not in SSL_MODES:
        raise ValueError(f"sslmode {sslmode!r} is not one of {', '.join(SSL_MODES)}")
    in_url = unquote(parts.password) if parts.password is not None else None
    return PostgresTarget(parts.hostname, port, unquote(parts.username), dbname, parameters,
                          password if password is not None else in_url)
