"""The trends page (portal/domain/trends.py, portal/charts.py, /reports/trends): every figure per day or week
on a small hand-made desk whose answers are known, the charts' points, the CSV, filters and permissions."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from portal.charts import line_chart, nice_ceiling
from portal.domain.models import (PortalEvent, Role, SurveyResponse, Ticket, TicketEvent, TicketStatus, TicketType,
                                  TimeEntry)
from portal.domain.trends import TrendFilters, bucket_starts, build_trends
from tests.conftest import user_by_role

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)  # a Wednesday


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=timezone.utc)


def add_ticket(db, requester, created, responded=None, resolved=None, response_hours=4, resolution_hours=24,
               level=1, category="general", lang="es", rating=None, rated=None) -> Ticket:
    status = TicketStatus.RESOLVED if resolved else TicketStatus.OPEN if responded else TicketStatus.NEW
    ticket = Ticket(subject="s", description="d", type=TicketType.INCIDENT, category=category, impact=3, urgency=3,
                    priority=5, status=status, level=level, lang=lang, requester=requester, created_at=created,
                    updated_at=created, first_response_at=responded, resolved_at=resolved,
                    response_due_at=created + timedelta(hours=response_hours),
                    resolution_due_at=created + timedelta(hours=resolution_hours))
    if rating is not None:
        ticket.survey = SurveyResponse(rating=rating, created_at=rated)
    db.add(ticket)
    return ticket


@pytest.fixture
def desk(db):
    """Five tickets and a few portal questions around NOW, each figure known by hand."""
    customer = user_by_role(db, Role.CUSTOMER)
    # T1: answered and resolved in time; rated 5.
    add_ticket(db, customer, at(20, 9), responded=at(20, 10), resolved=at(20, 15), rating=5, rated=at(21, 9))
    # T2: answered late (due 13:00), resolved late (due the 21st 09:00), escalated; rated 2.
    late = add_ticket(db, customer, at(20, 9), responded=at(20, 14), resolved=at(22, 10), level=2, rating=2,
                      rated=at(22, 11))
    # T3: never answered; both targets passed while open.
    add_ticket(db, customer, at(24, 8), resolution_hours=28)
    # T4: opened two hours ago; nothing due yet.
    add_ticket(db, customer, at(25, 10))
    # T5: a VPN ticket in English, in time.
    add_ticket(db, customer, at(21, 8), responded=at(21, 9), resolved=at(21, 12), category="vpn", lang="en")
    for answered in (True, False, None):
        db.add(PortalEvent(kind="search", session_id="x", query="q", answered=answered, created_at=at(20, 8)))
    db.add(PortalEvent(kind="solved", session_id="x", created_at=at(20, 8)))
    db.add(PortalEvent(kind="ticket_created", session_id="y", created_at=at(20, 9)))
    db.flush()
    # T2 was reopened once before its final resolution on the 22nd; 90 minutes were logged on it on the 21st.
    agent = user_by_role(db, Role.AGENT_L1)
    db.add(TicketEvent(ticket_id=late.id, kind="status", public=True, created_at=at(21, 9),
                       data={"from": "resolved", "to": "open"}))
    db.add(TimeEntry(ticket_id=late.id, agent_id=agent.id, minutes=90, created_at=at(21, 10)))
    db.commit()
    return db


def by_day(charts) -> dict[str, dict[str, dict[int, float | None]]]:
    """chart -> series -> November day -> value, for the days of November that have a value."""
    table = {}
    for chart in charts:
        table[chart.key] = {s.key: {b.day: v for b, v in zip(chart.buckets, s.values) if b.month == 11 and v}
                            for s in chart.series}
    return table


def test_buckets_are_utc_days_or_weeks_from_monday():
    days = bucket_starts(at(20, 15), NOW, "day")
    assert days[0] == at(20, 0) and days[-1] == at(25, 0) and len(days) == 6
    weeks = bucket_starts(at(20, 15), NOW, "week")
    assert weeks == [at(16, 0), at(23, 0)] and all(w.weekday() == 0 for w in weeks)


def test_every_figure_per_day(desk):
    figures = by_day(build_trends(desk, 30, "day", now=NOW))
    assert figures["volume"]["created"] == {20: 2, 21: 1, 24: 1, 25: 1}
    assert figures["volume"]["resolved"] == {20: 1, 21: 1, 22: 1}
    # First response over all tickets, by the day the target fell due: T1 met and T2 missed on the 20th, T5 met
    # on the 21st, T3 missed (never answered) on the 24th; T4 is not due yet and not counted.
    assert figures["sla"]["response_met"] == {20: 50.0, 21: 100.0}
    sla = next(c for c in build_trends(desk, 30, "day", now=NOW) if c.key == "sla")
    response = dict(zip((b.day for b in sla.buckets), sla.series[0].values))
    assert response[24] == 0.0 and response[25] is None and response[23] is None
    # Resolution: T1 met and T2 missed (both due the 21st), T5 met (due the 22nd), T3 missed (due the 25th).
    resolution = dict(zip((b.day for b in sla.buckets), sla.series[1].values))
    assert (resolution[21], resolution[22], resolution[25]) == (50.0, 100.0, 0.0)
    assert figures["times"]["first_response_hours"] == {20: 3.0, 21: 1.0}  # median of 1 h and 5 h; T5 1 h
    assert figures["backlog"]["open_at_end"] == {20: 1, 21: 1, 24: 1, 25: 2}
    assert figures["escalation"]["escalated_share"] == {20: 50.0}
    assert figures["csat"]["csat_average"] == {21: 5.0, 22: 2.0}
    assert figures["csat"]["csat_responses"] == {21: 1, 22: 1}
    assert figures["self_service"]["search"] == {20: 3}
    assert figures["deflection"]["deflection_rate"] == {20: 50.0}
    assert figures["unanswered"]["unanswered_share"] == {20: 50.0}  # of the two judged; one had no verdict
    assert figures["reopens"]["reopened_share"] == {22: 100.0}  # T2, the one resolved on the 22nd
    assert figures["time_spent"]["hours_spent"] == {21: 1.5}


def test_weeks_add_up_the_days(desk):
    weeks = {c.key: c for c in build_trends(desk, 30, "week", now=NOW)}
    volume = weeks["volume"]
    assert [b.day for b in volume.buckets[-2:]] == [16, 23]
    assert volume.series[0].values[-2:] == [3.0, 2.0]


def test_ticket_filters_apply_to_ticket_charts_only(desk):
    charts = {c.key: c for c in build_trends(desk, 30, "day", TrendFilters(category="vpn"), now=NOW)}
    assert sum(charts["volume"].series[0].values) == 1
    assert sum(charts["self_service"].series[0].values) == 3
    agent = user_by_role(desk, Role.AGENT_L2)
    vpn_ticket = desk.scalar(select(Ticket).where(Ticket.category == "vpn"))
    vpn_ticket.assignee = agent
    desk.commit()
    mine = {c.key: c for c in build_trends(desk, 30, "day", TrendFilters(agent_id=agent.id), now=NOW)}
    assert sum(mine["volume"].series[0].values) == 1
    english = {c.key: c for c in build_trends(desk, 30, "day", TrendFilters(lang="en"), now=NOW)}
    assert sum(english["volume"].series[0].values) == 1
    assert all(v is None for v in english["csat"].series[0].values)  # the rated tickets are Spanish


def test_an_empty_desk_draws_zeroes_and_gaps_never_a_division_by_zero(db):
    charts = {c.key: c for c in build_trends(db, 30, "day", now=NOW)}
    assert set(charts["volume"].series[0].values) == {0.0}
    assert set(charts["deflection"].series[0].values) == {None}
    assert set(charts["sla"].series[0].values) == {None}


def test_a_chart_has_one_point_per_value_and_a_fixed_axis_for_shares():
    buckets = bucket_starts(at(20, 0), NOW, "day")
    svg = line_chart("c", "T", buckets, [("a", [1.0, None, 3.0, 4.0, None, 6.0]), ("b", [50.0] * 6)], "percent",
                     lambda b: str(b.day))
    assert svg.count('data-series="a"') == 4 and svg.count('data-series="b"') == 6
    # "a" breaks at its gaps into (1), (3, 4), (6): one line joins 3 and 4, the lone points stay points; "b" one line.
    assert svg.count("<polyline") == 2
    assert ">100<" in svg and "<script" not in svg and "style=" not in svg
    assert nice_ceiling(7) == 10 and nice_ceiling(23) == 25 and nice_ceiling(0) == 1


def test_chart_text_is_escaped():
    svg = line_chart("c", "<b>", bucket_starts(at(20, 0), at(21, 0), "day"), [("<i>", [1.0, 2.0])], "count",
                     lambda b: "<d>")
    assert "<b>" not in svg and "<i>" not in svg and "&lt;i&gt;" in svg


@pytest.mark.parametrize("role, status", [(None, 302), (Role.CUSTOMER, 403), (Role.AGENT_L1, 200),
                                          (Role.ADMIN, 200)])
def test_trends_and_their_csv_are_for_agents(client, auth, role, status):
    auth.login(role)
    for path in ("/reports/trends/", "/reports/trends/volume.csv"):
        assert client.get(path).status_code == status, path


def test_the_page_draws_every_chart_in_both_languages(client, auth):
    auth.login(Role.AGENT_L1)
    for language, title in (("en", "Deflection rate"), ("es", "Tasa de autoservicio")):
        client.get(f"/language/{language}")
        html = client.get("/reports/trends/?days=30&by=day").text
        assert title in html
        assert html.count("<svg") == 11
        # The self-service chart: three series, a point for each of the 31 days.
        section = html.split('id="trend-self_service"')[1].split("</svg>")[0]
        assert section.count('class="point"') == 3 * 31


def test_the_csv_matches_the_table(client, auth, desk):
    auth.login(Role.AGENT_L1)
    response = client.get("/reports/trends/sla.csv?days=30&by=day")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["period_start", "response_met", "resolution_met"]
    chart = next(c for c in build_trends(desk, 30, "day") if c.key == "sla")
    assert len(rows) - 1 == len(chart.buckets)
    for row, (bucket, values) in zip(rows[1:], chart.rows()):
        assert row[0] == bucket.date().isoformat()
        assert row[1:] == ["" if v is None else f"{v:g}" for v in values]


def test_unknown_filters_are_ignored_and_an_unknown_chart_is_404(client, auth):
    auth.login(Role.AGENT_L1)
    page = client.get("/reports/trends/?days=7&by=month&priority=9&team=999999&category=<x>&key=1&_external=1")
    assert page.status_code == 200
    assert re.search(r'<option value="90"\s+selected', page.text) and "week" in page.text
    assert client.get("/reports/trends/nope.csv").status_code == 404


def test_the_api_answers_the_same_figures(seeded_app, desk):
    from tests.test_api_v1 import bearer, make_token

    client = seeded_app.test_client()
    agent, customer = make_token(seeded_app, Role.AGENT_L1), make_token(seeded_app, Role.CUSTOMER)
    answer = client.get("/api/v1/reports/trends?days=30&by=day&category=vpn", headers=bearer(agent))
    assert answer.status_code == 200, answer.text
    body = answer.json
    charts = {c["key"]: c for c in body["charts"]}
    assert body["by"] == "day" and len(charts) == 11 and charts["sla"]["definition"]
    volume = charts["volume"]
    assert len(volume["periods"]) == 31 and all(len(s["values"]) == 31 for s in volume["series"])
    assert sum(volume["series"][0]["values"]) == 1  # the one VPN ticket
    assert client.get("/api/v1/reports/trends?days=365&by=day", headers=bearer(agent)).json["by"] == "week"
    assert client.get("/api/v1/reports/trends", headers=bearer(customer)).status_code == 403
    wrong = client.get("/api/v1/reports/trends?by=month", headers=bearer(agent))
    assert wrong.status_code == 400 and "by" in wrong.json["error"]
    assert client.get("/api/v1/reports/trends?team=424242", headers=bearer(agent)).status_code == 404
    assert client.get("/api/v1/reports/trends?agent=424242", headers=bearer(agent)).status_code == 404


def test_email_deflection_and_self_solved_tickets(db):
    customer = user_by_role(db, Role.CUSTOMER)
    # Offered articles by e-mail on the 20th: two tickets; one closed by "This solved my problem" an hour later.
    solved = add_ticket(db, customer, at(20, 9))
    other = add_ticket(db, customer, at(20, 9))
    db.flush()
    solved.status, solved.closed_at = TicketStatus.CLOSED, at(20, 10)
    for ticket in (solved, other):
        db.add(PortalEvent(kind="suggestion_shown", session_id="m", channel="email", ticket_id=ticket.id,
                           article_slug="vpn-connect-from-home", created_at=at(20, 9)))
    db.add(PortalEvent(kind="solved", session_id="m", channel="email", ticket_id=solved.id, created_at=at(20, 10)))
    db.commit()
    charts = {c.key: c for c in build_trends(db, 30, "day", now=NOW)}
    by_day = dict(zip((b.day for b in charts["deflection"].buckets), charts["deflection"].series[1].values))
    assert by_day[20] == 50.0
    assert set(charts["deflection"].series[0].values) == {None}  # the portal funnel counts no e-mail event
    # The self-solved ticket closed before its targets: not counted; the other missed both.
    sla = charts["sla"]
    response = dict(zip((b.day for b in sla.buckets), sla.series[0].values))
    assert response[20] == 0.0
    assert sum(1 for v in sla.series[0].values if v is not None) == 1
