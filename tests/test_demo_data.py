"""Demo data (portal/demo_data.py, `flask demo`): realistic months of activity that the desk and the reports
show, clearly marked, that nobody can sign in as, and that `flask demo remove` takes out without touching
anything real."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from portal import demo_data
from portal.db import get_session
from portal.domain import events
from portal.domain import tickets as ticket_service
from portal.domain import users as user_service
from portal.domain.models import (ArticleFeedback, PortalEvent, Role, SurveyResponse, Ticket, TicketEvent,
                                  TicketStatus, User)
from portal.domain.reports import build_report

from .conftest import ROLE_EMAILS, user_by_role

NOW = datetime(2026, 11, 30, 17, 0, tzinfo=timezone.utc)
ANSWERED = {"vpn-conectar-desde-casa", "reset-your-password", "restablecer-contrasena"}


def classify(question: str) -> demo_data.Answer:
    """A stand-in for the search: VPN and password questions are answered by their article, nothing else is."""
    text = question.casefold()
    if "vpn" in text and ("casa" in text or "conecta" in text):
        return demo_data.Answer(3, True, 0.9, ("vpn-conectar-desde-casa",))
    if "password" in text:
        return demo_data.Answer(3, True, 0.8, ("reset-your-password",))
    if "contraseña" in text:
        return demo_data.Answer(3, True, 0.8, ("restablecer-contrasena",))
    return demo_data.Answer(3, False, 0.05, ())


def table_counts(session) -> dict[str, int]:
    """Rows per table that demo data writes to."""
    return {model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (User, Ticket, TicketEvent, PortalEvent, SurveyResponse, ArticleFeedback)}


def seed(session, **options) -> demo_data.DemoCounts:
    from portal.domain.sla import SlaPolicy

    policy = SlaPolicy.parse("1=0.5/4,2=1/8,3=4/24,4=8/72,5=24/120")
    return demo_data.seed(session, policy, classify, now=NOW, **options)


def test_seeding_makes_months_of_consistent_tickets(db):
    counts = seed(db, days=60)
    db.commit()
    tickets = list(db.scalars(select(Ticket)))
    assert counts.tickets == len(tickets) > 150
    assert min(t.created_at for t in tickets) < NOW - timedelta(days=50)
    for ticket in tickets:
        assert ticket.created_at <= ticket.updated_at <= NOW
        assert ticket.response_due_at > ticket.created_at and ticket.resolution_due_at > ticket.response_due_at
        if ticket.first_response_at is not None:
            assert ticket.created_at < ticket.first_response_at <= NOW
        if any(e.kind == "self_solved" for e in ticket.events):  # closed from the acknowledgement's link
            assert ticket.status == TicketStatus.CLOSED and ticket.resolved_at is None and not ticket.solution
            assert ticket.created_at < ticket.closed_at <= NOW
        elif ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
            assert ticket.first_response_at < ticket.resolved_at <= NOW and ticket.solution
        else:
            assert ticket.resolved_at is None and ticket.survey is None
        assert (ticket.closed_at is not None) == (ticket.status == TicketStatus.CLOSED)
        assert ticket.events[0].kind == "created" and ticket.events[0].actor_id == ticket.requester_id
        assert [e.created_at for e in ticket.events] == sorted(e.created_at for e in ticket.events)
    statuses = {t.status for t in tickets}
    assert {TicketStatus.CLOSED, TicketStatus.RESOLVED} <= statuses and statuses & set(ticket_service.OPEN_STATUSES)
    assert any(t.level == 2 for t in tickets) and any(t.survey for t in tickets)
    assert {t.lang for t in tickets} == {"es", "en"}
    assert any(e.data.get("channel") == "email" for t in tickets for e in t.events if e.kind == "created")
    self_solved = [t for t in tickets if any(e.kind == "self_solved" for e in t.events)]
    by_mail = list(db.scalars(select(PortalEvent).where(PortalEvent.kind == "solved", PortalEvent.channel == "email")))
    assert self_solved and sorted(e.ticket_id for e in by_mail) == sorted(t.id for t in self_solved)


def test_the_same_seed_makes_the_same_data(db, seeded_app, tmp_path):
    first = seed(db, days=20)
    subjects = [t.subject for t in db.scalars(select(Ticket).order_by(Ticket.created_at))]
    db.rollback()
    assert seed(db, days=20) == first
    assert [t.subject for t in db.scalars(select(Ticket).order_by(Ticket.created_at))] == subjects


def test_whether_a_question_was_answered_is_what_the_search_said(db):
    seed(db, days=30)
    searches = list(db.scalars(select(PortalEvent).where(PortalEvent.kind == "search")))
    assert searches
    for event in searches:
        assert event.answered == classify(event.query).answered
    solved = list(db.scalars(select(PortalEvent).where(PortalEvent.kind == "solved")))
    assert solved and {e.article_slug for e in solved} <= ANSWERED


def test_the_reports_fill_with_the_demo_activity(db):
    seed(db, days=60)
    db.commit()
    report = build_report(db, days=30, now=NOW, limit=100)
    assert report.funnel["search"] > 50 and report.funnel["solved"] > 0 and report.funnel["ticket_created"] > 0
    assert 0 < report.deflection_rate < 1
    unanswered = [query for query, _ in report.unanswered_questions]
    assert "cuántos días de vacaciones me quedan" in unanswered or "dónde pido las vacaciones" in unanswered
    assert report.tickets_resolved > 0 and 0 < report.resolution_met <= 1 and report.csat_responses > 0
    assert report.top_articles


def test_nobody_can_sign_in_as_a_demo_person_and_real_tickets_never_go_to_demo_agents(db):
    seed(db, days=10)
    db.commit()
    people = list(db.scalars(select(User).where(User.email.like(f"%@{demo_data.DEMO_DOMAIN}"))))
    assert people and all(not p.has_password for p in people)
    assert all(user_service.authenticate(db, p.email, demo_data.NO_PASSWORD) is None for p in people)
    assert all(not p.active for p in people if p.is_agent)
    from portal.domain.sla import SlaPolicy

    customer = user_by_role(db, Role.CUSTOMER)
    ticket = ticket_service.create_ticket(db, customer, "Printer jam", "It jams.", "printers", 3, 3,
                                          SlaPolicy.parse("1=0.5/4,2=1/8,3=4/24,4=8/72,5=24/120"))
    assert ticket.assignee.email == ROLE_EMAILS[Role.AGENT_L1]


def test_remove_takes_out_the_demo_data_and_nothing_else(db):
    from portal.domain.sla import SlaPolicy

    customer = user_by_role(db, Role.CUSTOMER)
    real = ticket_service.create_ticket(db, customer, "Real problem", "Real.", "general", 3, 3,
                                        SlaPolicy.parse("1=0.5/4,2=1/8,3=4/24,4=8/72,5=24/120"))
    events.record_event(db, "search", "real-browser", customer.id, query="real question")
    db.commit()
    before = table_counts(db)
    seeded = seed(db, days=30)
    db.commit()
    assert table_counts(db)["tickets"] == before["tickets"] + seeded.tickets
    removed = demo_data.remove(db)
    db.commit()
    assert removed == seeded
    assert table_counts(db) == before
    assert db.get(Ticket, real.id).subject == "Real problem"
    assert demo_data.demo_ticket_count(db) == 0


def test_seeding_twice_is_refused(db):
    seed(db, days=5)
    with pytest.raises(demo_data.DemoDataPresent):
        seed(db, days=5)


def test_the_commands_seed_with_the_real_search_and_remove(seeded_app):
    runner = seeded_app.test_cli_runner()
    seeded = runner.invoke(args=["demo", "seed", "--days", "15"])
    assert seeded.exit_code == 0, seeded.output
    assert "Added 15 days of demo data" in seeded.output
    with seeded_app.app_context():
        session = get_session()
        number = demo_data.demo_ticket_count(session)
        assert number > 0
        searches = list(session.scalars(select(PortalEvent).where(PortalEvent.kind == "search")))
        assert searches and all(e.confidence is not None for e in searches)
    again = runner.invoke(args=["demo", "seed"])
    assert again.exit_code != 0 and "flask demo remove" in again.output
    removed = runner.invoke(args=["demo", "remove"])
    assert removed.exit_code == 0 and f"Removed {number} demo tickets" in removed.output
    with seeded_app.app_context():
        assert demo_data.demo_ticket_count(get_session()) == 0


def test_offer_only_speaks_on_an_empty_desk(seeded_app):
    runner = seeded_app.test_cli_runner()
    offered = runner.invoke(args=["demo", "offer"])
    assert offered.exit_code == 0 and "make demo" in offered.output
    assert demo_data.demo_ticket_count(_session(seeded_app)) == 0  # not asked on a terminal: nothing seeded
    runner.invoke(args=["demo", "seed", "--days", "3"])
    assert runner.invoke(args=["demo", "offer"]).output == ""


def _session(app):
    with app.app_context():
        return get_session()


def test_the_desk_and_the_reports_say_the_data_is_demo(seeded_app, client, auth):
    auth.login(Role.AGENT_L1)
    assert 'id="demo-notice"' not in client.get("/reports/").text
    assert seeded_app.test_cli_runner().invoke(args=["demo", "seed", "--days", "10"]).exit_code == 0
    for page in ("/reports/", "/desk/"):
        html = client.get(page).text
        assert 'id="demo-notice"' in html and demo_data.DEMO_DOMAIN in html, page


def test_remove_takes_files_attached_to_demo_tickets_too(db):
    from portal.domain.models import Attachment, AttachmentBlob

    seed(db, days=5)
    db.commit()
    demo_ticket = db.scalar(select(Ticket).limit(1))
    attachment = Attachment(ticket_id=demo_ticket.id, filename="shot.png", content_type="image/png", size=3,
                            sha256="0" * 64, storage="database")
    db.add(attachment)
    db.flush()
    db.add(AttachmentBlob(attachment_id=attachment.id, data=b"png"))
    db.commit()
    demo_data.remove(db)
    db.commit()
    assert db.scalar(select(func.count()).select_from(Attachment)) == 0
    assert db.scalar(select(func.count()).select_from(AttachmentBlob)) == 0
