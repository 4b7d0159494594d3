"""Database engine, one session per request, and the `flask db` commands (Alembic migrations)."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup
from flask import Flask, current_app, g
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def database_url(app: Flask) -> str:
    """The configured URL, or the SQLite file in the instance folder."""
    url = app.config["MESA_DATABASE_URL"]
    if url:
        return url
    return f"sqlite:///{Path(app.instance_path) / 'mesa.db'}"


def _configure_sqlite(dbapi_connection, _record) -> None:
    """Foreign keys on, and write-ahead logging: the server's worker processes read while one of them writes
    (in SQLite's default mode a write waits for every reader and blocks them), and a commit costs one sync
    of the log instead of several (still synced: a committed ticket survives a crash)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for the URL; SQLite gets foreign keys on (PostgreSQL has them always) and the WAL."""
    sqlite = url.startswith("sqlite")
    # SQLite lets one writer at a time in; the others wait up to 30 s (a publish embeds outside the lock,
    # so a wait is short) instead of pysqlite's 5 s.
    # PostgreSQL: an unreachable host fails in 5 s (a /healthz probe must not hang until the network gives up).
    engine = create_engine(url, pool_pre_ping=not sqlite,
                           connect_args={"timeout": 30} if sqlite else {"connect_timeout": 5})
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
    return engine


def get_session() -> Session:
    """The current request's (or CLI command's) session; views commit, teardown closes."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["mesa_db"]()
    return g.db_session


def close_session(_exc=None) -> None:
    """Close the session at the end of the request; anything not committed is rolled back."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def alembic_config(app: Flask):
    """An Alembic configuration pointing at Mesa's migrations and the app's database."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url(app).replace("%", "%%"))
    return config


def upgrade_database(app: Flask) -> None:
    """Bring the schema to the newest migration (creates the database if needed)."""
    from alembic import command

    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(app), "head")


@click.group(cls=AppGroup, name="db")
def db_cli() -> None:
    """Database schema commands."""


@db_cli.command("upgrade")
def upgrade_command() -> None:
    """Apply the schema migrations (safe to run again)."""
    upgrade_database(current_app)
    click.echo(f"Database ready: {current_app.extensions['mesa_engine'].url.render_as_string(hide_password=True)}")


@db_cli.command("revision")
@click.option("-m", "--message", required=True, help="what the migration changes")
def revision_command(message: str) -> None:
    """Write a new migration from the difference between the models and the database (developers)."""
    from alembic import command

    command.revision(alembic_config(current_app), message=message, autogenerate=True)


def init_app(app: Flask) -> None:
    """Create the engine and session factory, register teardown and the `flask db` commands."""
    engine = make_engine(database_url(app))
    app.extensions["mesa_engine"] = engine
    app.extensions["mesa_db"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(close_session)
    app.cli.add_command(db_cli)
