"""`flask backup` and `flask restore`: every table as JSON lines with a manifest, and the articles as Markdown.

``schema`` picks the tables and reads schema revisions, ``codec`` turns column values into JSON and back,
``manifest`` describes and checks a backup directory, ``dump`` writes one and ``load`` restores one.
"""


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


def database_message(exc: Exception) -> str:
    """The database's own words for an error (first line, without SQLAlchemy's background link)."""
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
