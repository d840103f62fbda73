"""`k8s-monitor migrate`: bring the database to this version's schema now, not at the next collection.

Useful right after an upgrade, because `health` and `report` open the database read-only and answer
"schema outdated" until a writer migrates it. A copy is taken before migrating a database with data.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: DATABASE_PATH says which database."""


def run(args: argparse.Namespace) -> int:
    """Open the database as a writer, which migrates it; exit code 0 (errors raise StoreError)."""
    from shared.cli import cli_settings
    from shared.store.connection import SCHEMA_VERSION, StoreError, connect, schema_version

    settings = cli_settings()
    if not settings.database_path.is_file():
        raise StoreError(f"database {settings.database_path} does not exist (DATABASE_PATH); nothing to migrate")
    conn = connect(settings.database_path)  # migrates, refusing a database newer than this code
    try:
        print(f"{settings.database_path}: schema version {schema_version(conn)} (current {SCHEMA_VERSION})")
    finally:
        conn.close()
    return 0
