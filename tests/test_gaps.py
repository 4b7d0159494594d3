"""The FAQ to write (portal/domain/gaps.py, indexer/clustering.py, /reports/gaps): unanswered questions collected,
grouped by meaning on a tiny set with known groups, the page, and the draft article a group starts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from flask import current_app

from indexer import FakeEmbedder
from indexer import clustering
from indexer.clustering import cluster_vectors, threshold_for
from portal.domain import events, gaps
from portal.domain import tickets as ticket_service
from portal.domain.models import Role, utcnow
from tests.conftest import user_by_role

VACATION = ("how many vacation days do I have left", "vacation days left this year", "request vacation days off")
PARKING = ("parking badge does not open the barrier", "badge for the parking barrier broken",
           "the parking barrier ignores my badge")
ALONE = "coffee machine on floor two is broken"


def vectors(texts):
    return FakeEmbedder().encode_queries(list(texts))


def test_the_tiny_set_falls_into_its_known_groups():
    texts = [*VACATION, *PARKING, ALONE]
    clusters = cluster_vectors(vectors(texts), threshold_for("fake"))
    groups = sorted(sorted(texts[i] for i in c.members) for c in clusters)
    assert groups == sorted([sorted(VACATION), sorted(PARKING), [ALONE]])
    assert [c.size for c in clusters] == [3, 3, 1]  # biggest first


def test_clustering_edge_cases(monkeypatch):
    assert cluster_vectors(np.zeros((0, 8)), 0.5) == []
    assert [c.members for c in cluster_vectors(vectors(["one"]), 0.5)] == [(0,)]
    same = cluster_vectors(vectors(["vpn down", "vpn down", "vpn down"]), 0.01)
    assert len(same) == 1 and same[0].size == 3
    # A threshold of zero keeps different texts apart; above the exact limit the rest joins the sampled groups.
    assert len(cluster_vectors(vectors([*VACATION, *PARKING]), 0.0)) == 6
    monkeypatch.setattr(clustering, "MAX_EXACT", 4)
    sampled = cluster_vectors(vectors([*VACATION, *PARKING] * 3), threshold_for("fake"))
    assert sum(c.size for c in sampled) == 18


def test_a_text_without_any_known_word_stands_alone_instead_of_breaking_the_grouping():
    texts = ["???", *VACATION, "!!!"]
    clusters = cluster_vectors(vectors(texts), threshold_for("fake"))
    assert sorted(c.size for c in clusters) == [1, 1, 3]
    assert {texts[c.members[0]] for c in clusters if c.size == 1} == {"???", "!!!"}
    assert [c.size for c in cluster_vectors(vectors(["???", "vpn"]), 0.5)] == [1, 1]


def test_the_most_central_question_comes_first():
    texts = ["vpn drops every hour at home", "vpn drops every hour", "vpn drops", "vpn"]
    cluster = cluster_vectors(vectors(texts), 0.9)[0]
    assert texts[cluster.members[0]] in ("vpn drops every hour", "vpn drops")


def unanswered(db, text, when=None, session_id="s"):
    event = events.record_question(db, session_id, None, text, 3, answered=False, confidence=0.05,
                                   now=when or utcnow())
    return event


def test_only_questions_without_an_answer_are_collected(db):
    customer = user_by_role(db, Role.CUSTOMER)
    unanswered(db, VACATION[0])
    events.record_question(db, "t", None, "vpn not connecting", 3, answered=True, confidence=0.9)
    policy = current_app.extensions["mesa_sla"]
    alone = ticket_service.create_ticket(db, customer, ALONE, "No coffee.", "general", 3, 3, policy)
    ticket_service.create_ticket(db, customer, "VPN drops", "Every hour.", "vpn", 3, 3, policy,
                                 suggestions=[("vpn-connect-from-home", "Connect to the VPN from home")])
    by_mail = ticket_service.create_ticket(db, customer, "Mailbox full", "Cannot send.", "email", 3, 3, policy,
                                           by_email=True)
    db.flush()
    events.record_event(db, "suggestion_shown", "", customer.id, article_slug="mailbox-full", ticket_id=by_mail.id,
                        channel="email")  # offered by its acknowledgement
    db.commit()
    found = gaps.unanswered_questions(db, utcnow() - timedelta(days=1), utcnow())
    assert sorted((q.text, q.ticket_id) for q in found) == sorted([(VACATION[0], None), (ALONE, alone.id)])
    assert {q.lang for q in found} == {"en"}


def test_a_group_knows_its_trend():
    now = datetime(2026, 11, 30, tzinfo=timezone.utc)
    since = now - timedelta(days=30)
    asked = [gaps.Question(text, "en", now - timedelta(days=d)) for text, d in
             zip([*VACATION, *VACATION], (1, 2, 3, 4, 20, 5))]
    gap = gaps.group_questions(asked, vectors(q.text for q in asked), threshold_for("fake"), since, now)[0]
    assert gap.size == 6 and (gap.first_half, gap.second_half) == (1, 5) and gap.trend == "rising"
    assert len(gap.examples) == 3  # distinct texts


@pytest.mark.parametrize("role, status", [(None, 302), (Role.CUSTOMER, 403), (Role.AGENT_L1, 200)])
def test_the_faq_to_write_is_for_agents(client, auth, role, status):
    auth.login(role)
    assert client.get("/reports/gaps/").status_code == status
    assert client.get("/reports/gaps/draft?event=1").status_code in ((status,) if status != 200 else (400,))


def test_the_page_groups_the_questions_and_starts_a_draft(seeded_app, client, auth):
    with seeded_app.app_context():
        from portal.db import get_session

        db = get_session()
        for number, text in enumerate([*VACATION, *PARKING, ALONE]):
            unanswered(db, text, session_id=f"s{number}")
        customer = user_by_role(db, Role.CUSTOMER)
        ticket = ticket_service.create_ticket(db, customer, "Vacation days left?", "How many vacation days?",
                                              "general", 3, 3, current_app.extensions["mesa_sla"])
        l2 = user_by_role(db, Role.AGENT_L2)
        ticket_service.resolve(db, ticket, l2, "HR keeps the vacation days: write to hr@example.com or "
                                               f"ask {customer.name}.", ticket.version)
        db.commit()
        ticket_id = ticket.id
    auth.login(Role.AGENT_L1)
    client.get("/language/en")
    page = client.get("/reports/gaps/?days=7").text
    topics = page.split('id="gap-topics"')[1].split("</ol>")[0]
    assert topics.count('class="gap"') == 2 and ALONE not in topics and ALONE in page
    assert f"#{ticket_id}" in topics
    link = topics.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")
    editor = client.get(link).text
    assert "How people ask about it" in editor and "vacation days left this year" in editor
    assert "HR keeps the vacation days" in editor and customer_name_absent(editor)


def customer_name_absent(html: str) -> bool:
    return "ask Customer." not in html  # the requester's name is scrubbed from the solution


def test_a_draft_link_whose_questions_are_gone_says_so(client, auth):
    auth.login(Role.AGENT_L1)
    client.get("/language/en")
    response = client.get("/reports/gaps/draft?event=999999&ticket=abc")
    assert response.status_code == 400 and "pick a group" in response.text


def test_no_unanswered_question_says_so(client, auth):
    auth.login(Role.AGENT_L1)
    client.get("/language/en")
    assert 'id="no-gaps"' in client.get("/reports/gaps/").text


def test_tickets_solved_the_same_way_without_an_article_are_grouped(seeded_app, client, auth):
    with seeded_app.app_context():
        from portal.db import get_session

        db = get_session()
        customer, l2 = user_by_role(db, Role.CUSTOMER), user_by_role(db, Role.AGENT_L2)
        policy = current_app.extensions["mesa_sla"]
        solved = {}
        for subject, solution in (("Printer stuck", "Restarted the print spooler service and cleared the queue."),
                                  ("Nothing prints", "Cleared the queue and restarted the print spooler service."),
                                  ("Mouse broken", "Gave a new mouse from the store room.")):
            ticket = ticket_service.create_ticket(db, customer, subject, "Help.", "printers", 3, 3, policy)
            ticket_service.resolve(db, ticket, l2, solution, ticket.version)
            solved[subject] = ticket.id
        db.commit()
        found = gaps.solved_without_article(db, utcnow() - timedelta(days=1), utcnow())
        assert {q.ticket_id for q in found} == set(solved.values())
    auth.login(Role.AGENT_L1)
    client.get("/language/en")
    page = client.get("/reports/gaps/?days=7").text
    groups = page.split('id="solution-groups"')[1].split("</ol>")[0]
    assert groups.count('class="gap"') == 1 and "These 2 tickets were solved the same way" in groups
    assert f"#{solved['Printer stuck']}" in groups and "Mouse broken" not in groups
    link = groups.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")
    editor = client.get(link).text
    assert "print spooler" in editor and "Printer stuck" in editor
