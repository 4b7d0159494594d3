"""`flask backup`: one consistent snapshot of the database written as JSON lines per table, the articles as
Markdown beside them, and the manifest last. The backup is made in a hidden directory next to the target and
renamed into place when complete, so a failed or interrupted backup never looks like a finished one."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..domain.articles import export_directory
from ..domain.models import Base, utcnow
from . import BackupError, database_message
from .codec import RowCodec
from .manifest import ARTICLES_DIR, TABLES_DIR, Manifest, TableEntry, sha256_of, write_manifest
from .schema import backed_up_tables, require_revision

BATCH_ROWS = 1000


def take_backup(engine: Engine, directory: Path, head: str) -> Manifest:
    """Back up the database of ``engine`` into ``directory`` (new or empty) and return the manifest written."""
    directory = Path(directory).absolute()
    _require_new_directory(directory)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{directory.name}.partial-", dir=directory.parent))  # mode 0700
    except OSError as exc:
        raise BackupError(f"Cannot write the backup next to {directory}: {exc}") from None
    try:
        with _snapshot(engine, work) as connection:
            manifest = Manifest(require_revision(connection, head), utcnow().isoformat(), engine.dialect.name)
            for table in backed_up_tables(Base.metadata):
                manifest.tables.append(_write_table(connection, table, work, manifest.files))
            manifest.articles = _write_articles(connection, work, manifest.files)
        write_manifest(work, manifest)
        _move_into_place(work, directory)
    except SQLAlchemyError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise BackupError(f"Reading the database failed: {database_message(exc)}") from None
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise BackupError(f"Writing the backup failed: {exc}") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def _require_new_directory(directory: Path) -> None:
    """A backup never overwrites anything: the directory must not exist yet, or be empty."""
    if directory.exists() and not directory.is_dir():
        raise BackupError(f"{directory} is a file; give a new or empty directory for the backup.")
    if directory.is_dir() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty; a backup goes into a new or empty directory and never "
                          f"over an older backup (choose another name, or remove it first).")


@contextmanager
def _snapshot(engine: Engine, work: Path) -> Iterator[Connection]:
    """A connection that sees one consistent state of the database for as long as the backup reads.

    PostgreSQL: one REPEATABLE READ, READ ONLY transaction (writers are never blocked). SQLite: a reader
    would hold off every writer until the backup is written, so the file is first copied with SQLite's
    online backup API (one step, under a read lock) and the copy is read.
    """
    if engine.dialect.name != "sqlite":
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            try:
                yield connection
            finally:
                connection.rollback()
        return
    copy = work / ".snapshot.db"
    source = engine.raw_connection()
    try:
        with closing(sqlite3.connect(copy)) as target:
            source.driver_connection.backup(target)
    finally:
        source.close()
    snapshot = create_engine(f"sqlite:///{copy}")
    try:
        with snapshot.connect() as connection:
            yield connection
    finally:
        snapshot.dispose()
        copy.unlink(missing_ok=True)


def _write_table(connection: Connection, table, work: Path, files: dict[str, str]) -> TableEntry:
    """Write one table as JSON lines (one object per row, in primary-key order) and record its sha256."""
    codec = RowCodec(table)
    relative = f"{TABLES_DIR}/{table.name}.jsonl"
    path = work / relative
    path.parent.mkdir(exist_ok=True)
    digest, rows = hashlib.sha256(), 0
    query = select(table).order_by(*table.primary_key.columns)
    with open(path, "wb") as stream:
        for row in connection.execution_options(yield_per=BATCH_ROWS).execute(query).mappings():
            line = (json.dumps(codec.encode(row), ensure_ascii=False, separators=(",", ":")) + "\n").encode()
            stream.write(line)
            digest.update(line)
            rows += 1
        stream.flush()
        os.fsync(stream.fileno())
    files[relative] = digest.hexdigest()
    return TableEntry(table.name, relative, rows, codec.columns)


def _write_articles(connection: Connection, work: Path, files: dict[str, str]) -> int:
    """The articles as `flask kb export` writes them, for people to read (a restore uses the tables)."""
    with Session(bind=connection) as session:
        count = export_directory(session, work / ARTICLES_DIR)
    for path in sorted((work / ARTICLES_DIR).iterdir()):
        files[f"{ARTICLES_DIR}/{path.name}"] = sha256_of(path)
    return count


def _move_into_place(work: Path, directory: Path) -> None:
    """Rename the finished backup to its name (an empty directory there is replaced)."""
    if directory.is_dir():
        directory.rmdir()  # fails if something was put into it meanwhile: then nothing is overwritten
    os.rename(work, directory)
