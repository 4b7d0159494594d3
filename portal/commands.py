"""`flask kb`, `flask index`, `flask users`, `flask desk`, `flask mail`, `flask backup` and `flask restore`
commands."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup, with_appcontext
from flask import Flask, current_app

from indexer import ArticleFormatError

from .db import get_session
from .domain import articles as article_service
from .domain import users as user_service
from .domain.errors import Invalid
from .domain.models import Role
from .search import get_search


@click.group(cls=AppGroup, name="kb")
def kb_cli() -> None:
    """Knowledge-base import and export (Markdown files with YAML front matter)."""


@kb_cli.command("import")
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True,
              help="replace articles changed in the portal with their files (default: keep the portal's)")
def kb_import(directory: Path | None, overwrite: bool) -> None:
    """Import the articles of DIRECTORY (default: MESA_ARTICLES_DIR); never undoes work done in the portal.

    Unchanged files are skipped; a changed file updates its article only if nobody changed that article in
    the portal since it was imported. Articles changed in the portal are kept and listed.
    """
    directory = directory or Path(current_app.config["MESA_ARTICLES_DIR"])
    if not directory.is_dir():
        raise click.ClickException(f"{directory} is not a directory of articles.")
    session = get_session()
    try:
        report = article_service.import_directory(session, directory, overwrite=overwrite)
    except ArticleFormatError as exc:
        raise click.ClickException(str(exc)) from None
    session.commit()
    # Once there is an index, what changed is embedded into it now, a group of articles per commit (the
    # models never run inside the import's transaction, which would hold the database's write lock).
    indexed = get_search().sync(session) if report.created or report.updated or report.overwritten else False
    summary = (f"Imported {directory}: {len(report.created)} new, {len(report.updated)} updated, "
               f"{len(report.unchanged)} unchanged")
    if report.kept:
        summary += (f", kept {len(report.kept)} edited in the portal ({_some(report.kept)}; "
                    f"`flask kb import --overwrite` would replace them with the files)")
    if report.overwritten:
        summary += f", overwrote {len(report.overwritten)} edited in the portal ({_some(report.overwritten)})"
    if indexed:
        summary += "; the search index is up to date"
    click.echo(summary + ".")


def _some(slugs: list[str], shown: int = 5) -> str:
    """A few slugs for a message, and how many more."""
    more = f" and {len(slugs) - shown} more" if len(slugs) > shown else ""
    return ", ".join(slugs[:shown]) + more


@kb_cli.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def kb_export(directory: Path) -> None:
    """Write every article to DIRECTORY as <slug>.md."""
    count = article_service.export_directory(get_session(), directory)
    click.echo(f"Exported {count} articles to {directory}.")


@click.group(cls=AppGroup, name="index")
def index_cli() -> None:
    """The search index."""


@index_cli.command("build")
@click.option("--force", is_flag=True, help="embed every article again into a new generation")
@click.option("--quiet", is_flag=True, help="no progress bar")
def index_build(force: bool, quiet: bool) -> None:
    """Bring the search index (in the database) in step with the published articles.

    Only the articles that differ are embedded, unless the models changed (or --force): then a new
    generation is built beside the active one and replaces it in one step. A build that was stopped goes
    on where it stopped. Publishing meanwhile is safe.
    """
    from sqlalchemy.exc import IntegrityError

    search, session = get_search(), get_session()
    if not force and search.is_current(session):
        click.echo("Index up to date.")
        return
    try:
        info = search.rebuild(session, progress=not quiet, force=force)
    except IntegrityError:
        raise click.ClickException("Another `flask index build` is writing the same index; run one at a time "
                                   "(this one stopped; what both wrote is kept).") from None
    models = ", ".join(f"{backend} / {field['model']}" for backend, field in info["fields"].items()) or "no model"
    click.echo(f"Indexed {info['articles']} articles with the {info['ranking']} ranking ({models}); "
               f"generation {info['generation']}, change {info['last_change']}; snapshot {info['snapshot']}.")


@index_cli.command("info")
def index_info() -> None:
    """Show what the search index in the database holds."""
    from .search import SearchUnavailable

    search = get_search()
    if search.fallback_reason:
        click.echo(f"MESA_RANKING cannot run on this machine ({search.fallback_reason}); "
                   f"using the {search.ranking.name} ranking instead.")
    try:
        info = search.info(get_session())
    except SearchUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(info, indent=2, ensure_ascii=False))


@click.group(cls=AppGroup, name="users")
def users_cli() -> None:
    """Accounts."""


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", default="")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.CUSTOMER.value,
              show_default=True)
@click.password_option(help="asked for when not given")
def users_create(email: str, name: str, role: str, password: str) -> None:
    """Create an account."""
    session = get_session()
    try:
        user = user_service.create_user(session, email, name, password, role)
    except Invalid as exc:
        raise click.ClickException(exc.message) from None
    session.commit()
    click.echo(f"Created {user.role.value} {user.email}.")


@users_cli.command("demo")
def users_demo() -> None:
    """Create the demo accounts that are missing and print their passwords (shown only this once)."""
    session = get_session()
    created = user_service.create_demo_accounts(session)
    session.commit()
    if not created:
        click.echo("Demo accounts exist already (their passwords were printed when they were created; "
                   "`flask users create` makes new accounts).")
        return
    click.echo("Demo accounts (passwords are shown only now; write them down):")
    for user, password in created:
        click.echo(f"  {user.role.value:<9} {user.email:<24} {password}")


@click.group(cls=AppGroup, name="desk")
def desk_cli() -> None:
    """The service desk: defaults and the periodic sweep."""


DEFAULT_CANNED_REPLIES = (
    ("Need more information",
     "Hello {requester_name},\n\nTo go on with {ticket_number} we need a little more information: "
     "when did it start, what exactly do you see (a screenshot helps), and the asset tag of the device.\n\n"
     "Thank you,\n{agent_name}"),
    ("Necesitamos más información",
     "Hola {requester_name}:\n\nPara seguir con el ticket {ticket_number} necesitamos algo más de información: "
     "desde cuándo ocurre, qué ves exactamente (una captura ayuda) y la etiqueta de inventario del equipo.\n\n"
     "Gracias,\n{agent_name}"),
    ("Solved, please confirm",
     "Hello {requester_name},\n\nWe believe {ticket_number} is solved. If anything still does not work, just "
     "reply here and the ticket will be reopened.\n\n{agent_name}"),
)


@desk_cli.command("defaults")
def desk_defaults() -> None:
    """Create a default team for every category and a few canned replies, if there are none yet."""
    from sqlalchemy import select

    from .domain.models import CannedReply, Team, User
    from .i18n import CATEGORY_LABELS

    session = get_session()
    if session.scalar(select(Team).limit(1)) is None:
        team = Team(name="Service desk", categories=list(CATEGORY_LABELS))
        session.add(team)
        for user in session.scalars(select(User)):
            if user.is_agent and user.team_id is None:
                user.team = team
        click.echo("Created the team 'Service desk' for every category, with the existing agents.")
    if session.scalar(select(CannedReply).limit(1)) is None:
        session.add_all(CannedReply(title=title, body=body) for title, body in DEFAULT_CANNED_REPLIES)
        click.echo(f"Created {len(DEFAULT_CANNED_REPLIES)} canned replies.")
    session.commit()


@desk_cli.command("sweep")
def desk_sweep() -> None:
    """Escalate L1 tickets near their resolution target and close old resolved tickets, telling their requesters
    (for cron; the serving processes also run it every MESA_SWEEP_INTERVAL seconds unless MESA_BACKGROUND_JOBS=0).
    Skipped when another process is sweeping at this moment."""
    from .background import worker_id
    from .desk_sweep import run_sweep

    report = run_sweep(get_session(), current_app, worker_id())
    if not report.ran:
        click.echo("Another process is sweeping right now; nothing done.")
        return
    summary = f"Escalated {len(report.escalated)} tickets, closed {len(report.closed)}"
    if report.warned:
        summary += f", warned agents of {len(report.warned)} SLA targets about to be missed"
    if report.conflicts:
        summary += f"; {report.conflicts} changed by someone meanwhile, left for the next sweep"
    click.echo(summary + ".")


@click.group(cls=AppGroup, name="mail")
def mail_cli() -> None:
    """E-mail: notifications (the outbox) and the help-desk mailbox."""


@mail_cli.command("send-outbox")
def mail_send_outbox() -> None:
    """Send every due message of the outbox through SMTP (for cron; the serving processes also send it unless
    MESA_BACKGROUND_JOBS=0). Safe beside them: each message is claimed before it is sent."""
    from .background import worker_id
    from .domain.outbox import backlog
    from .domain.models import utcnow
    from .mailer import deliver_all_due

    session = get_session()
    if not current_app.config["MESA_SMTP_HOST"]:
        raise click.ClickException("MESA_SMTP_HOST is not set: notifications are only kept in the outbox "
                                   f"({backlog(session, utcnow()).pending} waiting), nothing is sent.")
    report = deliver_all_due(session, current_app.config, worker_id())
    waiting = backlog(session, utcnow())
    summary = (f"Sent {report.sent}, failed {report.failed}, will retry {report.retrying}; "
               f"{waiting.pending} pending, {waiting.failed} failed in the outbox.")
    if report.stopped:
        raise click.ClickException(summary + " The SMTP server could not be used; see the outbox's last errors.")
    click.echo(summary)


@mail_cli.command("fetch")
def mail_fetch_command() -> None:
    """Fetch the help-desk mailbox (MESA_IMAP_*): new mail becomes tickets, replies land on their tickets,
    automatic and bad mail is refused or quarantined (for cron; with MESA_MAIL_IN the serving processes also
    fetch). Safe beside them: one process fetches at a time, and each message is processed once."""
    from .background import worker_id
    from .mail_fetch import fetch

    if not current_app.config["MESA_IMAP_HOST"]:
        raise click.ClickException("MESA_IMAP_HOST is not set: there is no mailbox to fetch.")
    report = fetch(get_session(), current_app, worker_id())
    if not report.ran:
        click.echo("Another process is fetching the mailbox right now; nothing done.")
        return
    outcomes = ", ".join(f"{count} {name}" for name, count in sorted(report.outcomes.items())) or "nothing new"
    summary = f"Fetched {report.processed} e-mails: {outcomes}"
    if report.already_recorded:
        summary += f"; {report.already_recorded} already processed, flagged now"
    if report.left_for_later:
        summary += f"; {report.left_for_later} left for the next fetch"
    if report.problems:
        raise click.ClickException(summary + ". The mailbox could not be read: " + "; ".join(report.problems))
    click.echo(summary + ".")


@click.command("backup")
@click.argument("directory", type=click.Path(path_type=Path))
@with_appcontext
def backup_command(directory: Path) -> None:
    """Write the database and the articles to DIRECTORY, which must be new or empty.

    Every table but the search index's (rebuilt at restore), as JSON lines from one consistent snapshot,
    with manifest.json (schema revision, row counts, sha256 of each file); the articles also as Markdown.
    """
    from .backup import BackupError
    from .backup.dump import take_backup
    from .backup.schema import migrations_head

    try:
        manifest = take_backup(current_app.extensions["mesa_engine"], directory, migrations_head(current_app))
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    rows = sum(table.rows for table in manifest.tables)
    click.echo(f"Backed up {rows} rows of {len(manifest.tables)} tables and {manifest.articles} articles "
               f"(schema revision {manifest.alembic_revision}) to {directory}.")


@click.command("restore")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True,
              help="delete everything in a database that holds data first (in the same transaction)")
@click.option("--quiet", is_flag=True, help="no progress bar while the search index is rebuilt")
@with_appcontext
def restore_command(directory: Path, force: bool, quiet: bool) -> None:
    """Restore a backup made by `flask backup` into this empty, migrated database; then rebuild the index.

    Refused, with the database untouched, when the backup is of another schema revision, a file does not
    match its sha256, or the database holds data (unless --force).
    """
    from .backup import BackupError
    from .backup.load import rebuild_search_index, restore_backup
    from .backup.schema import migrations_head

    try:
        report = restore_backup(current_app.extensions["mesa_engine"], directory, migrations_head(current_app),
                                force=force)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    manifest = report.manifest
    replaced = f", after deleting {sum(report.replaced.values())} rows that were there" if report.replaced else ""
    click.echo(f"Restored {report.rows} rows of {len(manifest.tables)} tables from {directory} (taken "
               f"{manifest.created_at} on {manifest.database}){replaced}.")
    try:
        summary = rebuild_search_index(get_session(), progress=not quiet)
    except Exception as exc:  # the database is restored and committed; only the derived index is missing
        raise click.ClickException(f"The database was restored, but rebuilding the search index failed ({exc}); "
                                   f"run `flask index build`.") from None
    click.echo(f"Search index rebuilt: {summary}.")


def init_app(app: Flask) -> None:
    """Register the command groups and commands."""
    for group in (kb_cli, index_cli, users_cli, desk_cli, mail_cli):
        app.cli.add_command(group)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    from . import demo_commands

    demo_commands.init_app(app)
