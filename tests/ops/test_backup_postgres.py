"""Backups and restores of a PostgreSQL store, against a real server (Debian's PostgreSQL).

The contract is the SQLite one: a compressed, checksummed, verified file in BACKUP_DIR, pruned by age;
a restore checks everything first and changes nothing when it refuses. The tables here are made with
psql, not by the store: a dump holds whatever the database holds.
"""

from __future__ import annotations

import re
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.cli import main
from shared.core.formats import iso_utc
from shared.core.settings import Settings
from shared.domain.alerts.evaluation import evaluate_rules
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.ops.backup import last_backup, list_backups, prune_backups, run_backup
from shared.ops.health import check_health
from shared.ops.restore import RestoreError, restore_backup, restore_postgres_backup
from shared.store.connection import connect, open_store
from tests.conftest import make_settings
from tests.support.postgres import PostgresServer, postgres_server
from tests.support.readme import readme_section

DAY = 86_400
PASSWORD = "pw-Never-Shown-42"
HISTORY_SQL = """
CREATE TABLE runs (id bigserial PRIMARY KEY, started_at double precision NOT NULL, status text NOT NULL);
CREATE TABLE samples (run_id bigint REFERENCES runs (id), container text, cpu_millicores real, memory_bytes bigint);
INSERT INTO runs (started_at, status) SELECT 1.8e9 + n * 300, 'ok' FROM generate_series(1, 20) AS n;
INSERT INTO samples SELECT r.id, 'app-' || c, c * 1.5, c * 1048576 FROM runs r, generate_series(1, 50) AS c;
"""
TABLES = ("runs", "samples")


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with postgres_server() as running:
        yield running


def contents(server: PostgresServer, database: str) -> dict[str, str]:
    """Every row of the history's tables, as psql prints them in a stable order."""
    return {table: server.psql(f"SELECT * FROM {table} ORDER BY 1, 2", database) for table in TABLES}


def pg_settings(tmp_path: Path, server: PostgresServer, database: str, **overrides: object) -> Settings:
    return make_settings(tmp_path, database_url=server.url(database), **overrides)


@pytest.fixture
def history(server: PostgresServer) -> Iterator[str]:
    """A database holding a short history: 20 runs of 50 samples."""
    database = server.create_database()
    server.psql(HISTORY_SQL, database)
    yield database
    server.drop_database(database)


@pytest.fixture
def scratch(server: PostgresServer) -> Iterator[str]:
    """An empty database to restore into."""
    database = server.create_database()
    yield database
    server.drop_database(database)


def test_backup_is_a_checksummed_custom_format_dump_readable_only_by_its_owner(tmp_path, clock, server, history):
    settings = pg_settings(tmp_path, server, history)

    outcome = run_backup(settings, clock)

    assert outcome.status == "ok", outcome.error
    path = settings.backup_dir / outcome.backup.file
    assert path.name.startswith("k8s_metrics_") and path.name.endswith(".pgdump")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes()[:5] == b"PGDMP", "pg_dump's custom format"
    checked = subprocess.run(["sha256sum", "-c", path.name + ".sha256"], cwd=settings.backup_dir,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listed = subprocess.run([str(server.bin_dir / "pg_restore"), "--list", str(path)], capture_output=True,
                            text=True, check=True).stdout
    assert "TABLE DATA public runs" in listed and "TABLE DATA public samples" in listed
    assert outcome.backup.size_bytes == path.stat().st_size
    raw_bytes = int(server.psql("SELECT pg_total_relation_size('samples')", history))
    assert path.stat().st_size < raw_bytes / 4, "pg_dump compresses the data"
    assert sorted(p.name for p in settings.backup_dir.iterdir()) == sorted(
        [path.name, path.name + ".sha256", ".backup.lock"]), "no temporary file is left"


def test_restore_into_an_empty_database_brings_back_every_row(tmp_path, clock, server, history, scratch):
    expected = contents(server, history)
    backup = run_backup(pg_settings(tmp_path, server, history), clock).backup
    server.psql("DELETE FROM samples WHERE run_id > 10", history)  # later changes are not in the backup
    assert backup is not None

    result = restore_postgres_backup(pg_settings(tmp_path, server, scratch), Path(backup.file))

    assert contents(server, scratch) == expected
    assert len(expected["samples"].splitlines()) == 20 * 50
    assert result.tables == 2 and result.objects_before == []
    assert result.database == f"postgresql://postgres@127.0.0.1:{server.port}/{scratch}"


def test_a_database_that_is_not_empty_is_refused_untouched_unless_forced(tmp_path, clock, server, history, scratch):
    expected = contents(server, history)
    backup = run_backup(pg_settings(tmp_path, server, history), clock).backup
    assert backup is not None
    server.psql("CREATE TABLE runs (id bigint PRIMARY KEY, note text); INSERT INTO runs VALUES (99, 'newer');"
                "CREATE TABLE operator_notes (note text); INSERT INTO operator_notes VALUES ('kept');", scratch)
    settings = pg_settings(tmp_path, server, scratch)

    with pytest.raises(RestoreError, match=r"is not empty \(it holds public.operator_notes, public.runs") as refused:
        restore_postgres_backup(settings, Path(backup.file))
    assert f"127.0.0.1:{server.port}/{scratch}" in str(refused.value) and "--force" in str(refused.value)
    assert server.psql("SELECT * FROM runs", scratch) == "99|newer"

    result = restore_postgres_backup(settings, Path(backup.file), force=True)

    assert contents(server, scratch) == expected
    assert result.objects_before == ["public.operator_notes", "public.runs"]
    assert server.psql("SELECT note FROM operator_notes", scratch) == "kept", "objects not in the backup stay"


@pytest.mark.parametrize(("damage", "message"), [
    ("flipped byte", "damaged or incomplete: its sha256 is"),
    ("truncated with a matching checksum", "is not a readable pg_dump archive"),
    ("no checksum file", "no readable checksum file"),
])
def test_a_damaged_dump_is_refused_and_the_database_stays_empty(tmp_path, clock, server, history, scratch, damage,
                                                                  message):
    backup = run_backup(pg_settings(tmp_path, server, history), clock).backup
    assert backup is not None
    path = tmp_path / "backups" / backup.file
    data = bytearray(path.read_bytes())
    sidecar = path.with_name(path.name + ".sha256")
    if damage == "flipped byte":
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "no checksum file":
        sidecar.unlink()
    else:
        path.write_bytes(bytes(data[: len(data) // 2]))
        digest = subprocess.run(["sha256sum", path.name], cwd=path.parent, capture_output=True, text=True,
                                check=True).stdout
        sidecar.write_text(digest)

    with pytest.raises(RestoreError, match=message) as refused:
        restore_postgres_backup(pg_settings(tmp_path, server, scratch), path)

    assert "was not changed" in str(refused.value)
    assert server.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", scratch) == "0"


def test_a_backup_of_the_other_kind_is_refused_by_name(tmp_path, clock, server, history, scratch):
    sqlite_settings = make_settings(tmp_path / "sqlite")
    dump = run_backup(pg_settings(tmp_path, server, history), clock).backup
    assert dump is not None

    with pytest.raises(RestoreError, match=r"is a postgresql backup and the database .* is sqlite"):
        restore_backup(sqlite_settings, tmp_path / "backups" / dump.file)
    gz = tmp_path / "backups" / dump.file.replace(".pgdump", ".db.gz")
    gz.write_bytes(b"not used")
    with pytest.raises(RestoreError, match=r"is a sqlite backup and the database \(postgresql://.*\) is postgresql"):
        restore_postgres_backup(pg_settings(tmp_path, server, scratch), gz)


def test_old_dumps_are_pruned_keeping_the_newest_verified_one_of_each_kind(tmp_path, clock, server, history):
    settings = pg_settings(tmp_path, server, history, backup_retention_days=7)
    settings.backup_dir.mkdir()
    old_sqlite = settings.backup_dir / "k8s_metrics_20200101_000000.db.gz"
    old_sqlite.write_bytes(b"an old SQLite backup")
    digest = subprocess.run(["sha256sum", old_sqlite.name], cwd=settings.backup_dir, capture_output=True,
                            text=True, check=True).stdout
    old_sqlite.with_name(old_sqlite.name + ".sha256").write_text(digest)
    made = []
    for _ in range(3):
        outcome = run_backup(settings, clock)
        assert outcome.status == "ok", outcome.error
        made.append(outcome.backup.file)
        clock.advance(5 * DAY)

    assert outcome.removed == [made[0]], "10 days old: pruned; 5 days old: kept"
    left = {(b.name, b.kind, b.checksum) for b in list_backups(settings.backup_dir)}
    assert left == {(made[1], "postgresql", "ok"), (made[2], "postgresql", "ok"),
                    (old_sqlite.name, "sqlite", "ok")}, "the only verified SQLite backup stays, however old"
    assert prune_backups(settings.backup_dir, 7, clock.now + 30 * DAY) == [made[1]]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_server_fails_retriably_naming_it_without_the_password(tmp_path, clock):
    port = _closed_port()
    settings = make_settings(tmp_path, database_url=f"postgresql://monitor@127.0.0.1:{port}/k8s_metrics",
                             database_password=PASSWORD)

    outcome = run_backup(settings, clock)

    assert outcome.status == "failed" and outcome.retriable
    assert f"postgresql://monitor@127.0.0.1:{port}/k8s_metrics" in outcome.error and PASSWORD not in outcome.error
    assert [p.name for p in settings.backup_dir.iterdir()] == [".backup.lock"], "a failed dump leaves no file"


def test_a_wrong_password_is_named_without_being_shown(tmp_path, clock, server, history):
    server.psql(f"CREATE ROLE monitor LOGIN PASSWORD 'right-{PASSWORD}'")
    hba = server.directory / "data" / "pg_hba.conf"
    original = hba.read_text()
    try:
        hba.write_text("host all monitor 127.0.0.1/32 scram-sha-256\n" + original)
        server.psql("SELECT pg_reload_conf()")
        settings = make_settings(tmp_path, database_url=server.url(history, user="monitor"),
                                 database_password=PASSWORD)

        outcome = run_backup(settings, clock)
    finally:
        hba.write_text(original)
        server.psql("SELECT pg_reload_conf()")
        server.psql("DROP ROLE monitor")

    assert outcome.status == "failed" and not outcome.retriable
    assert "password authentication failed" in outcome.error and PASSWORD not in outcome.error
    assert f"postgresql://monitor@127.0.0.1:{server.port}/{history}" in outcome.error


def test_cli_backs_up_lists_both_kinds_and_restores_with_force(tmp_path, clock, server, history, scratch,
                                                                monkeypatch, capsys):
    expected = contents(server, history)
    sqlite_settings = make_settings(tmp_path / "sqlite", backup_dir=tmp_path / "backups")
    connect(sqlite_settings.database_path).close()
    assert run_backup(sqlite_settings, clock).status == "ok"  # a directory that served both backends
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("DATABASE_URL", server.url(history))

    assert main(["backup"]) == 0
    made = capsys.readouterr().out
    assert main(["backups"]) == 0
    listed = capsys.readouterr().out
    (dump,) = (tmp_path / "backups").glob("*.pgdump")
    assert made.startswith(f"backup {dump}: ") and "sha256 " in made
    kinds = {line.split()[0]: line.split()[1] for line in listed.splitlines()[1:]}
    assert set(kinds.values()) == {"sqlite", "postgresql"} and kinds[dump.name] == "postgresql"

    monkeypatch.setenv("DATABASE_URL", server.url(scratch))
    server.psql("CREATE TABLE runs (id int)", scratch)
    assert main(["restore", dump.name]) == 1
    assert "refused: database postgresql://" in capsys.readouterr().err
    assert main(["restore", "--force", dump.name]) == 0
    assert f"restored {dump} into postgresql://postgres@127.0.0.1:{server.port}/{scratch}: 2 tables" in \
        capsys.readouterr().out
    assert contents(server, scratch) == expected


def test_the_readme_least_privilege_role_backs_up_and_restores_its_database(tmp_path, clock, server):
    """The SQL of README.md, "The database role and TLS", run as written: its role is enough for the
    monitor's tables in a schema of their own, a backup, and a forced restore."""
    (block,) = re.findall(r"```sql\n(.*?)```", readme_section("### The database role and TLS"), re.DOTALL)
    admin = [str(server.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", server.host, "-p",
             str(server.port), "-U", "postgres", "-d", "postgres"]
    subprocess.run(admin, input=block, capture_output=True, text=True, check=True)
    try:
        as_role = [*admin[:-4], "-U", "k8s_monitor", "-d", "k8s_monitor", "-A", "-t", "-c"]
        subprocess.run([*as_role, "CREATE SCHEMA cluster_a; CREATE TABLE cluster_a.runs (id int, status text);"
                        "INSERT INTO cluster_a.runs VALUES (1, 'ok'), (2, 'ok'); SELECT pg_advisory_lock(1)"],
                       capture_output=True, text=True, check=True)
        settings = make_settings(tmp_path, database_url=f"postgresql://k8s_monitor@{server.host}:{server.port}"
                                 "/k8s_monitor", database_password="CHANGE-ME")
        outcome = run_backup(settings, clock)
        assert outcome.status == "ok", outcome.error
        subprocess.run([*as_role, "UPDATE cluster_a.runs SET status = 'failed'"], check=True, capture_output=True)

        with pytest.raises(RestoreError, match="is not empty"):
            restore_postgres_backup(settings, Path(outcome.backup.file))
        restore_postgres_backup(settings, Path(outcome.backup.file), force=True)

        restored = subprocess.run([*as_role, "SELECT id, status FROM cluster_a.runs ORDER BY id"],
                                  capture_output=True, text=True, check=True).stdout.split()
        assert restored == ["1|ok", "2|ok"]
    finally:
        server.drop_database("k8s_monitor")
        server.psql("DROP ROLE k8s_monitor")


def test_an_archive_of_another_application_is_refused_before_anything_is_dropped(tmp_path, clock, server, scratch):
    foreign = server.create_database()
    try:
        server.psql("CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1)", foreign)
        backup = run_backup(pg_settings(tmp_path, server, foreign), clock).backup
    finally:
        server.drop_database(foreign)
    assert backup is not None
    server.psql("CREATE TABLE runs (id int); INSERT INTO runs VALUES (7)", scratch)

    with pytest.raises(RestoreError, match="holds no `runs` table: it is not a backup of this monitor's database"):
        restore_postgres_backup(pg_settings(tmp_path, server, scratch), Path(backup.file), force=True)

    assert server.psql("SELECT * FROM runs", scratch) == "7"


def test_a_dump_is_recorded_in_every_clusters_store_for_health_and_the_backup_alert(tmp_path, clock, server, cluster):
    database = server.create_database()
    try:
        west = make_settings(tmp_path, cluster, database_url=server.url(database), cluster_name="west")
        east = west.model_copy(update={"cluster_name": "east"})
        for settings in (west, east):
            assert collect_once(settings, Trigger("cli"), clock=clock)[1] == 200
        clock.advance(27 * 3600)
        assert [backup_missing(settings, clock.now) for settings in (west, east)] == [True, True]

        outcome = run_backup(west, clock)

        assert outcome.status == "ok", outcome.error
        for settings in (west, east):  # the dump holds every cluster's schema
            health = check_health(settings, now=clock.now + 60).as_dict()
            assert (health["last_backup"], health["last_backup_age_seconds"]) == (iso_utc(clock.now), 60.0)
            assert backup_missing(settings, clock.now + 60) is False
            conn = open_store(settings, readonly=True)
            try:
                assert last_backup(conn) == outcome.backup
            finally:
                conn.close()
    finally:
        server.drop_database(database)


def backup_missing(settings: Settings, now: float) -> bool:
    """Whether the BackupMissing alert fires for the cluster of `settings` at `now`."""
    conn = open_store(settings, readonly=True)
    try:
        return bool(evaluate_rules(conn, settings, now).alerts["BackupMissing"])
    finally:
        conn.close()
