"""`flask demo seed | remove | offer`: fill a fresh install with months of demo activity, and take it out."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from . import demo_data
from .db import get_session
from .search import best_confidence, get_search


@click.group(cls=AppGroup, name="demo")
def demo_cli() -> None:
    """Demo data for trying Mesa: tickets, questions, surveys and votes over several months."""


def search_classifier() -> demo_data.Classifier:
    """Put each demo question to the portal's own search, as a visitor's question would be."""
    search = get_search()

    def classify(question: str) -> demo_data.Answer:
        hits = search.search(question, 5, None)
        answers = search.answers(hits)
        return demo_data.Answer(len(hits), bool(answers), best_confidence(hits), tuple(h.slug for h in answers))

    return classify


@demo_cli.command("seed")
@click.option("--days", default=120, show_default=True, help="How many days of activity, ending today.")
@click.option("--visits-per-day", default=14.0, show_default=True,
              help="People with a problem on a working day (weekends are quieter).")
def demo_seed(days: int, visits_per_day: float) -> None:
    """Add demo activity (demo people at @demo.mesa.invalid cannot sign in; `flask demo remove` takes it out)."""
    seed_and_report(days, visits_per_day)


def seed_and_report(days: int, visits_per_day: float) -> None:
    """Seed in one transaction and say what was added."""
    session = get_session()
    try:
        counts = demo_data.seed(session, current_app.extensions["mesa_sla"], search_classifier(), days=days,
                                visits_per_day=visits_per_day, auto_close_days=current_app.config["MESA_AUTO_CLOSE_DAYS"])
    except (demo_data.DemoDataPresent, ValueError) as error:
        session.rollback()
        raise click.ClickException(str(error)) from None
    session.commit()
    click.echo(f"Added {days} days of demo data: {counts.tickets} tickets, {counts.portal_events} portal events, "
               f"{counts.surveys} surveys, {counts.votes} article votes, {counts.people} demo people. "
               "`flask demo remove` takes all of it out.")


@demo_cli.command("remove")
def demo_remove() -> None:
    """Delete all demo data (and nothing else)."""
    session = get_session()
    counts = demo_data.remove(session)
    session.commit()
    click.echo(f"Removed {counts.tickets} demo tickets, {counts.portal_events} portal events, {counts.surveys} "
               f"surveys, {counts.votes} votes and {counts.people} demo people.")


@demo_cli.command("offer")
def demo_offer() -> None:
    """On a database without tickets, offer the demo data (asked only on a terminal; `make run` calls this)."""
    from sqlalchemy import func, select

    from .domain.models import Ticket

    session = get_session()
    if session.scalar(select(func.count()).select_from(Ticket)):
        return
    if not sys.stdin.isatty():
        click.echo("No tickets yet. `make demo` fills the portal with four months of demo activity.")
        return
    if click.confirm("No tickets yet. Fill the portal with four months of demo activity (removable with "
                     "`flask demo remove`)?", default=False):
        seed_and_report(120, 14.0)


def demo_data_present() -> int:
    """For the pages' demo notice: how many demo tickets the database holds (0: none)."""
    return demo_data.demo_ticket_count(get_session())


def init_app(app) -> None:
    """The `flask demo` commands, and what the pages' demo notice needs."""
    app.cli.add_command(demo_cli)
    app.jinja_env.globals.update(demo_data_present=demo_data_present, demo_domain=demo_data.DEMO_DOMAIN)
