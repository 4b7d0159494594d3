"""A backup directory's manifest.json: what it holds (schema revision, tables, row counts) and the sha256 of
every file, so a restore can refuse a backup that was changed, cut short or made by another schema."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import BackupError

FORMAT = "mesa-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
TABLES_DIR = "tables"
ARTICLES_DIR = "articles"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class TableEntry:
    """One table's file in the backup: its rows as JSON lines, and the columns each row has."""

    name: str
    file: str
    rows: int
    columns: list[str]


@dataclass
class Manifest:
    """What a backup holds; ``files`` maps every file's path in the directory to its sha256."""

    alembic_revision: str
    created_at: str
    database: str
    tables: list[TableEntry] = field(default_factory=list)
    articles: int = 0
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The manifest as written to manifest.json."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "alembic_revision": self.alembic_revision,
                "created_at": self.created_at, "database": self.database,
                "tables": [vars(table) for table in self.tables], "articles": self.articles,
                "files": dict(sorted(self.files.items()))}

    @classmethod
    def from_json(cls, data) -> "Manifest":
        """A manifest read from manifest.json; BackupError naming the first thing that is wrong."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise _bad("it is not a Mesa backup manifest")
        if data.get("format_version") != FORMAT_VERSION:
            raise _bad(f"format version {data.get('format_version')!r}; this Mesa reads version {FORMAT_VERSION}")
        for key in ("alembic_revision", "created_at", "database"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise _bad(f"'{key}' is missing")
        files = data.get("files")
        if not isinstance(files, dict) or not all(
                isinstance(path, str) and isinstance(digest, str) and _SHA256.fullmatch(digest)
                for path, digest in files.items()):
            raise _bad("'files' must map each file to its sha256")
        if not isinstance(data.get("articles"), int) or data["articles"] < 0:
            raise _bad("'articles' must be a count")
        tables = data.get("tables")
        if not isinstance(tables, list):
            raise _bad("'tables' must be a list")
        return cls(data["alembic_revision"], data["created_at"], data["database"],
                   [_table_entry(entry, files) for entry in tables], data["articles"], dict(files))


def _table_entry(entry, files: dict) -> TableEntry:
    if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("file"), str)
            and isinstance(entry.get("rows"), int) and entry["rows"] >= 0 and isinstance(entry.get("columns"), list)
            and all(isinstance(column, str) for column in entry["columns"])):
        raise _bad(f"a table entry needs a name, a file, a row count and its columns: {entry!r:.200}")
    if entry["file"] not in files:
        raise _bad(f"the file of table {entry['name']} ({entry['file']}) has no checksum")
    return TableEntry(entry["name"], entry["file"], entry["rows"], list(entry["columns"]))


def _bad(reason: str) -> BackupError:
    return BackupError(f"Bad backup manifest ({MANIFEST_NAME}): {reason}.")


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inside(directory: Path, relative: str) -> Path:
    """A path the manifest names, which must stay inside the backup directory."""
    path = (directory / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(directory.resolve()):
        raise _bad(f"the file {relative!r} lies outside the backup directory")
    return path


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write manifest.json (the last file of a backup: a directory without one is no backup)."""
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_manifest(directory: Path) -> Manifest:
    """The manifest of a backup directory; BackupError when the directory or its manifest is missing or bad."""
    if not directory.is_dir():
        raise BackupError(f"{directory} is not a directory (give the directory `flask backup` wrote).")
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise BackupError(f"{directory} has no {MANIFEST_NAME}: it is not a finished Mesa backup.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(f"it is not valid JSON ({exc})") from None
    return Manifest.from_json(data)


def verify_files(directory: Path, manifest: Manifest) -> None:
    """Every file the manifest lists must be there with its sha256; BackupError naming the first that is not."""
    for relative, expected in manifest.files.items():
        path = inside(directory, relative)
        if not path.is_file():
            raise BackupError(f"The backup is incomplete: {relative} is missing.")
        if sha256_of(path) != expected:
            raise BackupError(f"The backup was changed or damaged: {relative} does not match its sha256 in "
                              f"{MANIFEST_NAME}. Restore from another copy.")
