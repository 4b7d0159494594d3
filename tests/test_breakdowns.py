"""The reports' breakdowns (portal/domain/breakdowns.py) on a small desk whose answers are known by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from portal.domain.breakdowns import build_breakdowns, percentile
from portal.domain.models import (Article, ArticleFeedback, ArticleTicketLink, PortalEvent, Role, SurveyResponse, Ticket, TicketEvent,
                                  TicketStatus, TicketType, TimeEntry)
from tests.conftest import user_by_role

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
SINCE = NOW - timedelta(days=30)


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=timezone.utc)


def ticket(db, requester, created, responded=None, resolved=None, priority=3, category="vpn",
           kind=TicketType.INCIDENT, level=1, status=None) -> Ticket:
    status = status or (TicketStatus.RESOLVED if resolved else TicketStatus.OPEN)
    made = Ticket(subject="s", description="d", type=kind, category=category, impact=3, urgency=3, priority=priority,
                  status=status, level=level, requester=requester, created_at=created, updated_at=created,
                  first_response_at=responded, resolved_at=resolved, response_due_at=created + timedelta(hours=4),
                  resolution_due_at=created + timedelta(hours=24))
    db.add(made)
    db.flush()
    return made


def test_percentile_is_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5) == 5 and percentile(list(range(1, 11)), 0.9) == 9


def test_every_breakdown_on_a_known_desk(db):
    customer, agent = user_by_role(db, Role.CUSTOMER), user_by_role(db, Role.AGENT_L1)
    fast = ticket(db, customer, at(20, 9), responded=at(20, 10), resolved=at(20, 15), priority=2)
    late = ticket(db, customer, at(20, 9), responded=at(20, 14), resolved=at(22, 10), priority=2, level=2,
                  category="printers", kind=TicketType.SERVICE_REQUEST)
    ticket(db, customer, at(24, 8), priority=4)                       # open, both targets passed: two misses
    ticket(db, customer, at(25, 10), priority=4)                      # open, nothing due yet: not counted
    ticket(db, customer, NOW - timedelta(days=40), priority=5)       # created before the period: only backlog
    db.add(TicketEvent(ticket_id=late.id, kind="status", public=True, created_at=at(21, 9),
                       data={"from": "resolved", "to": "open"}))
    db.add(SurveyResponse(ticket_id=fast.id, rating=5, comment="Quick!", created_at=at(21, 9)))
    db.add(SurveyResponse(ticket_id=late.id, rating=2, comment="", created_at=at(22, 12)))
    db.add_all([TimeEntry(ticket_id=fast.id, agent_id=agent.id, minutes=30, created_at=at(20, 10)),
                TimeEntry(ticket_id=late.id, agent_id=agent.id, minutes=90, created_at=at(21, 10))])
    vpn, stale = (db.scalar(select(Article).where(Article.slug == slug))
                  for slug in ("vpn-connect-from-home", "mailbox-full"))
    stale.updated_at = NOW - timedelta(days=400)
    for kind, slug in (("solved", vpn.slug), ("solved", vpn.slug), ("article_opened", stale.slug)):
        db.add(PortalEvent(kind=kind, session_id="x", article_slug=slug, created_at=at(21, 8)))
    db.add(ArticleFeedback(article_id=stale.id, helpful=False, comment="Outlook has no such menu", session_id="x",
                           created_at=at(21, 9)))
    db.add(ArticleFeedback(article_id=stale.id, helpful=True, comment="Thanks", session_id="y", created_at=at(21, 9)))
    db.add(ArticleTicketLink(article_id=vpn.id, ticket_id=late.id, relation="cited", created_at=at(20, 12)))
    db.add(ArticleTicketLink(article_id=vpn.id, ticket_id=fast.id, relation="cited", created_at=at(20, 12)))
    db.commit()

    found = build_breakdowns(db, SINCE, NOW)
    assert found.total.created == 4
    high = found.by_priority[2]
    assert (high.created, high.response_share, high.resolution_share) == (2, 0.5, 0.5)
    low = found.by_priority[4]
    assert (low.created, low.response_judged, low.response_met, low.resolution_judged) == (2, 1, 0, 1)
    assert found.total.response_share == 1 / 3 and found.total.resolution_share == 1 / 3
    assert high.median_first() == 1.0 and high.p90_first() == 5.0  # 1 h and 5 h
    assert found.by_type["service_request"].created == 1 and list(found.by_category)[0] == "vpn"
    assert found.escalated == 1 and found.escalation_rate == 0.25
    assert (found.resolved, found.reopened, found.reopen_rate) == (2, 1, 0.5)
    ages = dict(found.backlog_by_age)
    assert ages["< 1"] == 1 and ages["1–3"] == 1 and ages["> 30"] == 1 and sum(ages.values()) == 3
    assert [(r.comment, t.id) for r, t in found.comments] == [("Quick!", fast.id)]
    assert found.minutes_by_category == [("printers", 90), ("vpn", 30)]
    assert found.minutes_by_agent == [(agent.name, 120)]
    assert [(a.slug, n) for a, n in found.deflecting] == [(vpn.slug, 2)]
    assert [(a.slug, n) for a, n in found.stale] == [(stale.slug, 1)]
    assert [(a.slug, cited, reopened) for a, cited, reopened in found.reopening] == [(vpn.slug, 2, 1)]
    assert [(a.slug, vote.comment) for a, vote in found.unhelpful_comments] == [(stale.slug, "Outlook has no such menu")]


def test_an_empty_period_has_no_division_by_zero(db):
    found = build_breakdowns(db, SINCE, NOW)
    assert found.escalation_rate is None and found.reopen_rate is None and found.total.response_share is None
    assert [n for _, n in found.backlog_by_age] == [0] * 5


def test_the_reports_page_shows_the_breakdowns(client, auth):
    auth.login(Role.AGENT_L1)
    client.get("/language/en")
    html = client.get("/reports/?days=30").text
    for section in ("by-priority", "by-type", "by-category", "backlog-age", "csat-comments", "time-by-agent",
                    "deflecting", "stale", "reopening", "unhelpful-comments", "escalation-rate", "reopen-rate"):
        assert f'id="{section}"' in html, section


def test_the_api_answers_the_breakdowns_and_the_gaps(seeded_app, db):
    from portal.domain import events
    from tests.test_api_v1 import bearer, make_token

    for text in ("how many vacation days do I have left", "vacation days left this year", "request vacation days"):
        events.record_question(db, text, None, text, 3, answered=False, confidence=0.05)
    db.commit()
    client = seeded_app.test_client()
    agent, customer = make_token(seeded_app, Role.AGENT_L1), make_token(seeded_app, Role.CUSTOMER)
    found = client.get("/api/v1/reports/breakdowns?days=30", headers=bearer(agent))
    assert found.status_code == 200, found.text
    assert found.json["total"]["created"] == 0 and len(found.json["backlog_by_age_days"]) == 5
    gaps = client.get("/api/v1/reports/gaps?days=7", headers=bearer(agent)).json
    assert gaps["questions"] == 3 and gaps["topics"][0]["size"] == 3 and gaps["topics"][0]["languages"] == {"en": 3}
    for path in ("/api/v1/reports/breakdowns", "/api/v1/reports/gaps"):
        assert client.get(path, headers=bearer(customer)).status_code == 403
    assert client.get("/api/v1/reports/gaps?days=365", headers=bearer(agent)).status_code == 400


def test_one_rule_decides_every_sla_target():
    from portal.domain.sla import target_outcome

    due = at(20, 12)
    assert target_outcome(due, at(20, 11), None, NOW) == "met"
    assert target_outcome(due, at(20, 13), None, NOW) == "missed"          # answered late
    assert target_outcome(due, None, None, NOW) == "missed"                # never answered, the target passed
    assert target_outcome(NOW + timedelta(hours=1), None, None, NOW) is None  # not due yet: can still be met
    assert target_outcome(due, None, at(20, 10), NOW) is None              # closed by the requester before it fell due
    assert target_outcome(due, None, at(20, 14), NOW) == "missed"          # closed after it had been missed
