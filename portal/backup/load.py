"""`flask restore`: a backup's tables into an empty database at the same schema revision, in one transaction
(a restore that fails leaves the database as it was), then the search index rebuilt from the database."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..domain.models import Base
from . import BackupError, database_message
from .codec import RowCodec
from .dump import BATCH_ROWS
from .manifest import Manifest, TableEntry, inside, read_manifest, verify_files
from .schema import backed_up_tables, require_revision

LOCK_TIMEOUT = "10s"  # PostgreSQL: how long a restore waits for other sessions to let go of the tables


@dataclass
class RestoreReport:
    """What a restore did: the backup's manifest, the rows inserted, and the rows --force deleted first."""

    manifest: Manifest
    rows: int = 0
    replaced: dict[str, int] = field(default_factory=dict)


def restore_backup(engine: Engine, directory: Path, head: str, force: bool = False) -> RestoreReport:
    """Restore the backup in ``directory``; BackupError (with the database untouched) when it cannot.

    The backup must be of this Mesa's schema revision and intact (every file's sha256, every table's row
    count). The database must be migrated to that revision and hold no data, unless ``force``: then
    everything in it is deleted first, in the same transaction as the restore.
    """
    try:
        return _restore(engine, Path(directory), head, force)
    except SQLAlchemyError as exc:
        raise BackupError(f"The restore failed and the database was left as it was: {database_message(exc)}") from None
    except OSError as exc:
        raise BackupError(f"Reading the backup failed, and the database was left as it was: {exc}") from None


def _restore(engine: Engine, directory: Path, head: str, force: bool) -> RestoreReport:
    manifest = read_manifest(directory)
    if manifest.alembic_revision != head:
        raise BackupError(f"The backup is of schema revision {manifest.alembic_revision}, but this Mesa's "
                          f"migrations are at {head}. Restore it with the Mesa version that made it (then "
                          f"upgrade Mesa and run `flask db upgrade`).")
    tables = backed_up_tables(Base.metadata)
    entries = _entries_by_table(manifest, tables)
    verify_files(directory, manifest)
    report = RestoreReport(manifest)
    with engine.connect() as connection:
        require_revision(connection, head)
        connection.rollback()
        with connection.begin():
            _lock(connection)
            held = {name: count for name, count in _row_counts(connection, tables).items() if count}
            if held and not force:
                raise BackupError(
                    f"The database already holds data ({_counts(held)}). Restore into an empty database made "
                    f"with `flask db upgrade`, or add --force to delete everything in this one first (in the "
                    f"same transaction: if the restore fails, nothing is lost).")
            if force:
                _empty(connection)
                report.replaced = held
            for table in tables:
                report.rows += _load_table(connection, table, directory, entries[table.name])
            _advance_sequences(connection, tables)
    return report


def rebuild_search_index(session: Session, progress: bool = False) -> str:
    """Rebuild the search index from the restored database and say what it holds (the one place a restore
    touches search: a new generation of the index, in the database; each process loads it when it notices)."""
    from ..search import get_search

    info = get_search().rebuild(session, progress=progress, force=True, load=False)
    vectors = ", ".join(f"{count} {backend}" for backend, count in info["vectors"].items()) or "no"
    return f"{info['articles']} articles ({vectors} vectors)"


def _entries_by_table(manifest: Manifest, tables) -> dict[str, TableEntry]:
    """The backup's file for each table; BackupError unless it holds exactly this Mesa's tables and columns."""
    entries = {entry.name: entry for entry in manifest.tables}
    expected = {table.name: [column.name for column in table.columns] for table in tables}
    if set(entries) != set(expected):
        missing, unknown = sorted(set(expected) - set(entries)), sorted(set(entries) - set(expected))
        raise BackupError(f"The backup's tables differ from this Mesa's (missing: {', '.join(missing) or '-'}; "
                          f"unknown: {', '.join(unknown) or '-'}).")
    for name, columns in expected.items():
        if sorted(entries[name].columns) != sorted(columns):
            raise BackupError(f"The backup's table {name} has the columns {', '.join(entries[name].columns)}; "
                              f"this Mesa's has {', '.join(columns)}.")
    return entries


def _lock(connection: Connection) -> None:
    """Keep every other writer out until the restore commits, so nothing slips in between check and insert."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        names = ", ".join(connection.dialect.identifier_preparer.format_table(t) for t in Base.metadata.sorted_tables)
        connection.exec_driver_sql(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")


def _row_counts(connection: Connection, tables) -> dict[str, int]:
    return {table.name: connection.scalar(select(func.count()).select_from(table)) for table in tables}


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}: {count}" for name, count in counts.items())


def _empty(connection: Connection) -> None:
    """Delete every row of every table (the search index's too: it is rebuilt), children first."""
    for table in reversed(Base.metadata.sorted_tables):
        connection.execute(table.delete())


def _load_table(connection: Connection, table, directory: Path, entry: TableEntry) -> int:
    """Insert one table's rows from its JSON lines, in batches; BackupError naming a bad line or a short file."""
    codec, batch, count = RowCodec(table), [], 0
    with open(inside(directory, entry.file), "rb") as stream:
        for number, line in enumerate(stream, 1):
            try:
                batch.append(codec.decode(json.loads(line.decode("utf-8"))))
            except ValueError as exc:  # also bad JSON and bad UTF-8
                raise BackupError(f"{entry.file}, line {number}: {exc}") from None
            count += 1
            if len(batch) == BATCH_ROWS:
                _insert(connection, table, batch)
                batch = []
    if batch:
        _insert(connection, table, batch)
    if count != entry.rows:
        raise BackupError(f"{entry.file} has {count} rows but the manifest says {entry.rows}.")
    return count


def _insert(connection: Connection, table, rows: list[dict]) -> None:
    try:
        connection.execute(table.insert(), rows)
    except SQLAlchemyError as exc:
        raise BackupError(f"Restoring the table {table.name} failed, and the database was left as it was: "
                          f"{database_message(exc)}") from None


def _advance_sequences(connection: Connection, tables) -> None:
    """PostgreSQL: move each id sequence past the restored ids, so new rows do not collide with them.

    A sequence is never moved backwards (after --force it may have handed out higher ids than the backup
    holds): should anything fail after this, the rolled-back data keeps ids the sequence is already past.
    """
    if connection.dialect.name != "postgresql":
        return  # SQLite gives a new row the highest id + 1
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        sequence = connection.scalar(text("SELECT pg_get_serial_sequence(:table, :column)"),
                                     {"table": table.name, "column": column.name})
        if sequence is None:
            continue
        last_value, is_called = connection.execute(text(f"SELECT last_value, is_called FROM {sequence}")).one()
        highest = max(connection.scalar(select(func.max(column))) or 0, last_value if is_called else 0)
        if highest:
            connection.execute(text("SELECT setval(:sequence, :value, true)"), {"sequence": sequence, "value": highest})
