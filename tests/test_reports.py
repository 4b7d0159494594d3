"""The reports: deflection rate, content gaps, articles, SLA compliance, CSAT, computed from real records."""

from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import select

from portal.domain import events, knowledge
from portal.domain import tickets as svc
from portal.domain.models import Article, Role
from portal.domain.reports import build_report
from tests.conftest import user_by_role


def test_report_counts_what_happened(db):
    customer, l1 = user_by_role(db, Role.CUSTOMER), user_by_role(db, Role.AGENT_L1)
    for _ in range(3):
        events.record_event(db, "solved", "s1", customer.id, query="printer jam", article_slug="print-queue-stuck")
    events.record_event(db, "ticket_created", "s2", customer.id, query="new laptop please")
    events.record_question(db, "s3", None, "xyzzy frobnicate", 3, answered=False, confidence=0.02)
    events.record_question(db, "s3", None, "xyzzy frobnicate", 3, answered=False, confidence=0.02)
    events.record_question(db, "s3", None, "vpn", 5, answered=True, confidence=0.9)
    events.record_event(db, "search", "s5", None, query="before confidence was kept", results=0)
    for _ in range(2):
        events.record_event(db, "article_opened", "s4", None, article_slug="laptop-disk-full")
    article = db.scalar(select(Article).where(Article.slug == "mailbox-full"))
    knowledge.record_feedback(db, article, False, "", "a", None)
    knowledge.record_feedback(db, article, True, "", "b", None)
    policy = current_app.extensions["mesa_sla"]
    fast = svc.create_ticket(db, customer, "fast", "d", "vpn", 3, 3, policy)
    svc.add_reply(db, fast, l1, "on it", True, fast.version)
    svc.resolve(db, fast, l1, "done", fast.version)
    slow = svc.create_ticket(db, customer, "slow", "d", "vpn", 1, 1, policy, now=fast.created_at - timedelta(hours=10))
    svc.resolve(db, slow, l1, "late", slow.version)
    svc.submit_survey(db, fast, customer, 5)
    svc.submit_survey(db, slow, customer, 2)
    db.commit()

    report = build_report(db, days=30)
    assert report.funnel["solved"] == 3 and report.funnel["ticket_created"] == 1
    assert report.deflection_rate == pytest.approx(0.75)
    assert report.unanswered_questions == [("xyzzy frobnicate", 2), ("before confidence was kept", 1)]
    assert report.ticket_questions == [("new laptop please", 1)]
    assert [(a.slug, n) for a, n in report.top_articles] == [("laptop-disk-full", 2)]
    assert [(a.slug, total, no) for a, total, no in report.unhelpful_articles] == [("mailbox-full", 2, 1)]
    assert report.tickets_resolved == 2
    assert report.resolution_met == pytest.approx(0.5) and report.response_met == pytest.approx(0.5)
    assert report.csat_average == pytest.approx(3.5) and report.csat_satisfied == pytest.approx(0.5)


def test_empty_report_has_no_division_by_zero(db):
    report = build_report(db, days=7)
    assert report.deflection_rate is None and report.csat_average is None and report.resolution_met is None


@pytest.mark.parametrize("role, status", [(None, 302), (Role.CUSTOMER, 403), (Role.AGENT_L1, 200),
                                          (Role.AGENT_L2, 200), (Role.ADMIN, 200)])
def test_reports_page_is_for_agents(client, auth, role, status):
    auth.login(role)
    response = client.get("/reports/?days=90", headers={"Accept-Language": "en"})
    assert response.status_code == status
    if status == 200:
        assert "deflection" in response.text and "Content gaps" in response.text
