"""The portal says honestly when no article answers: search page, suggestions, API, events and reports."""

import pytest
from sqlalchemy import select

from portal.db import get_session
from portal.domain import events
from portal.domain.models import PortalEvent, Role
from portal.domain.reports import build_report
from tests.conftest import csrf_token_from, make_test_app, user_by_role

GIBBERISH = "xqzv plork"
ANSWERABLE = "my laptop disk is full, how do I free up space"
EN = {"Accept-Language": "en"}


def search_events(app):
    with app.app_context():
        return list(get_session().scalars(select(PortalEvent).where(PortalEvent.kind == "search")
                                          .order_by(PortalEvent.id)))


def test_search_page_says_when_no_article_answers_and_offers_ask_for_help(client, seeded_app):
    page = client.get(f"/search?q={GIBBERISH}", headers=EN)
    assert page.status_code == 200
    assert "None of our articles seems to answer this." in page.text
    assert 'href="/help?q=xqzv+plork"' in page.text
    assert 'id="answers"' not in page.text
    (event,) = search_events(seeded_app)
    assert event.query == GIBBERISH and event.answered is False and event.confidence is not None


def test_search_page_lists_answers_when_an_article_answers(client, seeded_app):
    page = client.get(f"/search?q={ANSWERABLE}", headers=EN)
    assert 'id="answers"' in page.text and "None of our articles" not in page.text
    assert page.text.index("laptop-disk-full") < page.text.index("Not what you were looking for?")
    (event,) = search_events(seeded_app)
    assert event.answered is True


def test_ask_for_help_carries_the_search_over(client, auth):
    auth.login(Role.CUSTOMER)
    page = client.get(f"/help?q={GIBBERISH}", headers=EN)
    assert f'value="{GIBBERISH}"' in page.text


def test_api_says_whether_the_results_answer(client):
    unanswered = client.get(f"/api/search?q={GIBBERISH}").json
    assert unanswered["answered"] is False and 0 < unanswered["threshold"] < 1
    assert all(not r["answers"] and r["confidence"] < unanswered["threshold"] for r in unanswered["results"])
    answered = client.get(f"/api/search?q={ANSWERABLE}").json
    assert answered["answered"] is True
    assert answered["results"][0]["answers"] and answered["results"][0]["confidence"] >= answered["threshold"]


def test_suggestions_only_offer_confident_answers(client, auth):
    auth.login(Role.CUSTOMER)
    none = client.get(f"/api/suggest?q={GIBBERISH}").json
    assert none["results"] == [] and none["answered"] is False
    some = client.get(f"/api/suggest?q={ANSWERABLE}").json
    assert some["answered"] is True and some["results"][0]["slug"] in ("laptop-disk-full", "portatil-disco-lleno")
    assert all(r["confidence"] is not None for r in some["results"])


def test_ask_for_help_shows_no_suggestion_when_nothing_answers(client, auth):
    auth.login(Role.CUSTOMER)
    form = client.get("/help", headers=EN)
    page = client.post("/help", headers=EN, data={
        "csrf_token": csrf_token_from(form.text), "subject": "Qwxz vbnm plork",
        "description": "xqzv plork wibble zorp", "type": "incident", "category": "general", "impact": "3",
        "urgency": "3", "action": "check"})
    assert page.status_code == 200
    assert 'class="suggestion"' not in page.text.split('id="suggestion-template"')[0]
    assert "an agent will help you" in page.text


@pytest.mark.parametrize("threshold, answered", [(0.0, True), (1.0, False)])
def test_the_threshold_is_a_setting(tmp_path, seeded_sqlite_template, threshold, answered):
    import shutil

    for name in ("mesa.db", "index.npz"):
        shutil.copyfile(seeded_sqlite_template / name, tmp_path / name)
    app = make_test_app(tmp_path, f"sqlite:///{tmp_path / 'mesa.db'}", MESA_ANSWER_THRESHOLD=threshold)
    result = app.test_client().get(f"/api/search?q={ANSWERABLE}").json
    assert result["threshold"] == threshold and result["answered"] is answered
    app.extensions["mesa_engine"].dispose()


def test_a_threshold_outside_0_and_1_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="MESA_ANSWER_THRESHOLD"):
        make_test_app(tmp_path, f"sqlite:///{tmp_path / 'mesa.db'}", MESA_ANSWER_THRESHOLD=1.5)


def test_a_burst_of_suggestion_calls_while_typing_is_one_question(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    typed = ["my lap", "my laptop disk", "my laptop disk is ful", "my laptop disk is full, how do I free up space"]
    for text in typed:
        client.get(f"/api/suggest?q={text}")
    (question,) = search_events(seeded_app)
    assert question.query == typed[-1] and question.answered is True
    with seeded_app.app_context():
        shown = list(get_session().scalars(select(PortalEvent.article_slug).where(
            PortalEvent.kind == "suggestion_shown")))
    assert len(shown) == len(set(shown))  # an article shown on several keystrokes counts once
    client.get("/api/suggest?q=the printer is jammed again")  # another question
    assert len(search_events(seeded_app)) == 2


def test_a_new_search_after_the_burst_window_is_a_new_question(db):
    from datetime import timedelta

    from portal.domain.models import utcnow

    start = utcnow()
    first = events.record_question(db, "s1", None, "vpn slow", 3, True, 0.9, refining=True, now=start)
    db.flush()
    later = start + timedelta(seconds=events.BURST_SECONDS + 1)
    second = events.record_question(db, "s1", None, "vpn slow at home", 3, True, 0.9, refining=True, now=later)
    assert second is not first
    third = events.record_question(db, "s1", None, "vpn slow at home today", 3, True, 0.9, refining=True,
                                   now=later + timedelta(seconds=2))
    assert third is second and third.query == "vpn slow at home today"


@pytest.mark.parametrize("before, after, same", [
    ("vpn", "vpn slow", True), ("vpn slow at home", "vpn slow", True), ("vpn slow", "vpn slwo", True),
    ("vpn slow", "printer jam", False), ("", "vpn", False)])
def test_same_question_means_the_text_continues(before, after, same):
    assert events.same_question(before, after) is same


def test_event_text_holds_no_personal_data(db):
    customer = user_by_role(db, Role.CUSTOMER)
    text = (f"Hi, I am {customer.name}, write to jane.doe@example.com or {customer.email}, "
            "call +34 612 345 678. VPN 10.0.0.1 fails since 2026-11-30")
    event = events.record_question(db, "s1", customer.id, text, 0, False, 0.1)
    assert "@" not in event.query and "612" not in event.query and customer.name not in event.query
    assert "10.0.0.1" in event.query and "2026-11-30" in event.query and "VPN" in event.query


def test_reports_list_unanswered_questions_from_real_use(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    client.get(f"/search?q={GIBBERISH}")
    client.get(f"/search?q={ANSWERABLE}")
    with seeded_app.app_context():
        report = build_report(get_session(), days=1)
    assert report.unanswered_questions == [(GIBBERISH, 1)]
    auth.logout()
    auth.login(Role.AGENT_L1)
    page = client.get("/reports/?days=1", headers=EN)
    assert GIBBERISH in page.text.split('id="unanswered"')[1].split("</section>")[0]
