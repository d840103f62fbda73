"""`k8s-monitor migrate`: bring the database to this version's schema now, not at the next collection.

Useful right after an upgrade, because `health` and `report` open the database read-only and answer
"schema outdated" until a writer migrates it. A copy is taken before migrating a database with data.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """DATABASE_URL (or DATABASE_PATH) says which database; on PostgreSQL, CLUSTER_NAME or --cluster whose schema."""
    parser.add_argument("--cluster", help="PostgreSQL: the cluster whose schema to migrate (default CLUSTER_NAME)")


def run(args: argparse.Namespace) -> int:
    """Open the database as a writer, which migrates it; exit code 0 (errors raise StoreError)."""
    from shared.cli import cli_settings
    from shared.core.database_url import PostgresTarget
    from shared.store.connection import SCHEMA_VERSION, StoreError, connect, open_store, schema_version

    settings = cli_settings()
    if isinstance(settings.database, PostgresTarget):
        from shared.store.postgres import SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION

        cluster = args.cluster or settings.cluster_name
        open_store(settings, cluster=cluster).close()  # migrates, refusing a schema newer than this code
        print(f"{settings.database.shown} cluster {cluster!r}: schema version {POSTGRES_SCHEMA_VERSION} (current)")
        return 0
    if not settings.database_path.is_file():
        raise StoreError(f"database {settings.database_path} does not exist (DATABASE_PATH); nothing to migrate")
    conn = connect(settings.database_path)  # migrates, refusing a database newer than this code
    try:
        print(f"{settings.database_path}: schema version {schema_version(conn)} (current {SCHEMA_VERSION})")
    finally:
        conn.close()
    return 0
