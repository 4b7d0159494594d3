"""Which tables a backup holds, and the schema revisions a backup and a database must agree on."""

from __future__ import annotations

from sqlalchemy import MetaData, Table
from sqlalchemy.engine import Connection

from . import BackupError

# The search index's tables are derived from the articles: a restore rebuilds them from the database.
DERIVED_TABLE_PREFIX = "search_"


def backed_up_tables(metadata: MetaData) -> list[Table]:
    """The tables a backup holds, parents before the tables whose foreign keys point at them."""
    return [table for table in metadata.sorted_tables if not table.name.startswith(DERIVED_TABLE_PREFIX)]


def migrations_head(app) -> str:
    """The newest schema revision of this Mesa's migrations."""
    from alembic.script import ScriptDirectory

    from ..db import alembic_config

    heads = ScriptDirectory.from_config(alembic_config(app)).get_heads()
    if len(heads) != 1:
        raise BackupError(f"The migrations have {len(heads)} heads ({', '.join(heads)}); merge them first.")
    return heads[0]


def database_revision(connection: Connection) -> str | None:
    """The schema revision the database was migrated to (None: not made by `flask db upgrade`)."""
    from alembic.migration import MigrationContext

    heads = MigrationContext.configure(connection).get_current_heads()
    return heads[0] if len(heads) == 1 else None


def require_revision(connection: Connection, head: str) -> str:
    """The database's revision, which must be this Mesa's newest; BackupError saying what to run otherwise."""
    revision = database_revision(connection)
    if revision is None:
        raise BackupError("The database has no schema revision (it was not made with `flask db upgrade`); "
                          "run `flask db upgrade` first.")
    if revision != head:
        raise BackupError(f"The database is at schema revision {revision}, but this Mesa's migrations are at "
                          f"{head}: run `flask db upgrade` first (or use the Mesa version that matches it).")
    return revision
