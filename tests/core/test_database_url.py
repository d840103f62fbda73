"""DATABASE_URL: what each spelling means, and errors that name what is wrong without the password."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.core.database_url import PostgresTarget, SqliteTarget, parse_database_url
from shared.core.settings import ConfigError, load_settings


def test_sqlite_urls_follow_sqlalchemy_relative_and_absolute() -> None:
    assert parse_database_url("sqlite:///data/k8s_metrics.db") == SqliteTarget(Path("data/k8s_metrics.db"))
    assert parse_database_url("sqlite:////data/k8s_metrics.db") == SqliteTarget(Path("/data/k8s_metrics.db"))


def test_a_postgresql_url_keeps_its_libpq_parameters_and_shows_no_password() -> None:
    target = parse_database_url("postgresql://monitor:s3cr%40t@db.example.com:6432/metrics"
                                "?sslmode=verify-full&sslrootcert=/etc/ca.pem")
    assert isinstance(target, PostgresTarget)
    assert (target.host, target.port, target.user, target.dbname, target.password) == (
        "db.example.com", 6432, "monitor", "metrics", "s3cr@t")
    assert target.shown == "postgresql://monitor@db.example.com:6432/metrics?sslmode=verify-full&sslrootcert=/etc/ca.pem"
    assert "s3cr" not in repr(target)
    assert target.connect_kwargs()["password"] == "s3cr@t"
    env = target.client_env()
    assert env["PGPASSWORD"] == "s3cr@t" and env["PGSSLMODE"] == "verify-full" and env["PGPORT"] == "6432"


def test_database_password_wins_over_the_url_and_the_port_defaults() -> None:
    target = parse_database_url("postgres://monitor:old@db/metrics", password="new")
    assert isinstance(target, PostgresTarget)
    assert (target.port, target.password) == (5432, "new")


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://u@h/db", "unknown database 'mysql'"),
    ("postgresql://h/db", "names its user"),
    ("postgresql://u@h", "names one database"),
    ("postgresql://u@h:port/db", "port is not a number"),
    ("postgresql://u@h/db?sslmode=sometimes", "sslmode 'sometimes' is not one of"),
    ("postgresql://u@h/db?password=hunter22", "does not belong in the query"),
    ("sqlite://data.db", "sqlite:///relative/path.db"),
])
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_database_url(url)
    assert "hunter22" not in str(caught.value)


def test_settings_read_the_password_file_and_keep_it_out_of_the_shown_url(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-secret\n")
    settings = load_settings(database_url="postgresql://monitor@db:5432/metrics?sslmode=verify-full",
                             database_password_file=secret)
    assert isinstance(settings.database, PostgresTarget)
    assert settings.database.password == "from-a-secret"
    assert settings.database.shown == "postgresql://monitor@db:5432/metrics?sslmode=verify-full"
    assert "from-a-secret" in settings.secret_values()


def test_a_sqlite_url_is_the_database_path(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/k8s_metrics.db")
    assert settings.database_path == tmp_path / "k8s_metrics.db"
    assert settings.database == SqliteTarget(tmp_path / "k8s_metrics.db")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"database_url": "postgresql://db/metrics"}, "DATABASE_URL: a PostgreSQL URL names its user"),
    ({"database_password": "pw"}, "DATABASE_PASSWORD: set, but DATABASE_URL names no PostgreSQL server"),
    ({"database_url": "sqlite:////a.db", "database_path": "/b.db"}, "DATABASE_URL: names /a.db, DATABASE_PATH /b.db"),
])
def test_contradicting_database_settings_name_the_variable(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(**overrides)
