"""The knowledge loop: promotion, personal-data removal, workflow, revisions, duplicates, feedback, safety."""

import html as html_lib
import re

import pytest
from sqlalchemy import select

import indexer

from portal.db import get_session
from portal.domain import knowledge, privacy
from portal.domain import tickets as svc
from portal.domain.errors import Conflict, Invalid, NotAllowed
from portal.domain.models import Article, Role, Ticket
from portal.search import get_search
from tests.conftest import AuthActions, csrf_token_from, register_and_confirm, user_by_role

EN = {"Accept-Language": "en"}


def resolved_ticket(db, description=None, solution="Delete the GlobalProtect profile and sign in again.",
                    subject="GlobalProtect keeps asking for the portal address"):
    from flask import current_app

    customer = user_by_role(db, Role.CUSTOMER)
    ticket = svc.create_ticket(
        db, customer, subject,
        description or ("Hi, I am Customer (customer@example.com, +34 612 345 678). Since today GlobalProtect "
                        "asks for the portal address on my laptop LT-7781 and will not connect."),
        "vpn", 2, 2, current_app.extensions["mesa_sla"], asset_tag="LT-7781")
    l2 = user_by_role(db, Role.AGENT_L2)
    svc.add_reply(db, ticket, l2, "Please send a screenshot of the error.", True, ticket.version)
    svc.resolve(db, ticket, l2, solution, ticket.version)
    db.commit()
    return ticket


def test_draft_from_ticket_removes_the_customers_details(db):
    ticket = resolved_ticket(db)
    draft = knowledge.draft_from_ticket(ticket)
    assert draft.title == "GlobalProtect keeps asking for the portal address"
    assert draft.lang == "en" and draft.category == "vpn"
    assert "## Problem" in draft.body and "## Solution" in draft.body
    assert "Delete the GlobalProtect profile" in draft.body
    assert "screenshot" not in draft.body  # a request for information is conversation, not a step
    for personal in ("customer@example.com", "612 345 678", "LT-7781", "Customer"):
        assert personal not in draft.body, personal
    assert "[asset tag]" in draft.body
    assert "[e-mail]" not in draft.body and "[phone]" not in draft.body  # the introduction is dropped whole


@pytest.mark.parametrize("phone", [
    "+34 612 345 678", "+34612345678", "612 345 678", "612 34 56 78", "91-555-12-34", "(555) 123-4567",
    "555-123-4567", "555.123.4567", "+44 20 7946 0958", "+1 (555) 123-4567 ext. 4411", "ext. 4411",
    "extensión 4411", "0034 612345678",
])
def test_phone_numbers_are_removed(phone):
    assert privacy.remove_phone_numbers(f"Call me on {phone}, thanks.") == "Call me on [phone], thanks."


@pytest.mark.parametrize("technical", [
    "192.168.10.25", "192.168.10.25:8080", "10.0.0.0/24", "10.0.19045.3803", "16.0.17328.20142", "build 19045.3803",
    "2024-03-15", "2024-03-15 10:30", "2024-03-15T10:30:00", "15/03/2024", "15.03.2024", "3/15/2024",
    "10:30", "10:30:45", "9:00-17:30", "2019-2024", "KB5034441", "0x80070005", "error 1603", "port 443",
    "INC0012345", "LT-7781",
])
def test_ip_addresses_versions_dates_and_times_are_kept(technical):
    text = f"Seen with {technical} today."
    assert privacy.remove_phone_numbers(text) == text


def test_a_promoted_draft_keeps_the_technical_details_and_loses_the_phone_number(db):
    ticket = resolved_ticket(
        db, description="Since 2024-03-15 10:30 Windows 10.0.19045.3803 cannot reach 192.168.10.25. "
                        "Call me at (555) 123-4567 ext. 4411.",
        solution="Updated the driver to 31.0.101.4502 and reset the gateway to 192.168.10.1.")
    body = knowledge.draft_from_ticket(ticket).body
    for kept in ("2024-03-15 10:30", "10.0.19045.3803", "192.168.10.25", "31.0.101.4502", "192.168.10.1"):
        assert kept in body, kept
    assert "555" not in body and "Call me" not in body  # a request to be called is not for the article


def test_spanish_tickets_make_spanish_drafts(db):
    ticket = resolved_ticket(db, subject="No me funciona la impresora de la planta 2",
                             description="La impresora de la planta 2 no imprime desde esta mañana.",
                             solution="Se reinició la cola de impresión del servidor y ya funciona.")
    draft = knowledge.draft_from_ticket(ticket)
    assert draft.lang == "es" and "## Problema" in draft.body and "## Solución" in draft.body


def test_only_resolved_tickets_with_a_solution_can_be_promoted(db):
    from flask import current_app

    ticket = svc.create_ticket(db, user_by_role(db, Role.CUSTOMER), "s", "d", "vpn", 3, 3,
                               current_app.extensions["mesa_sla"])
    with pytest.raises(Invalid, match="resolved ticket"):
        knowledge.draft_from_ticket(ticket)


def test_language_detection():
    assert knowledge.detect_language("No puedo conectarme a la VPN desde casa") == "es"
    assert knowledge.detect_language("I cannot connect to the VPN from home") == "en"


def test_workflow_permissions_per_role(db):
    l1, l2, admin = (user_by_role(db, r) for r in (Role.AGENT_L1, Role.AGENT_L2, Role.ADMIN))
    article = knowledge.create_article(db, knowledge.ArticleDraft("Reset the VPN profile", "## Steps\n\nDo it.\n"), l1)
    db.commit()
    assert article.status == "draft" and [r.number for r in article.revisions] == [1]
    with pytest.raises(NotAllowed):
        knowledge.change_state(db, article, l1, "publish", article.version)
    knowledge.change_state(db, article, l1, "submit", article.version)
    with pytest.raises(Invalid, match="Say what should change"):
        knowledge.change_state(db, article, l2, "send_back", article.version, "")
    knowledge.change_state(db, article, l2, "send_back", article.version, "Add screenshots")
    assert article.status == "draft" and article.events[-1].comment == "Add screenshots"
    knowledge.change_state(db, article, l1, "submit", article.version)
    knowledge.change_state(db, article, admin, "publish", article.version)
    assert article.status == "published"
    with pytest.raises(NotAllowed):  # L1 cannot change published content
        knowledge.edit_article(db, article, l1, knowledge.ArticleDraft("X", "Y\n"), article.version)
    knowledge.change_state(db, article, l2, "archive", article.version)
    assert article.status == "archived"
    assert [e.kind for e in article.events] == ["created", "submit", "send_back", "submit", "publish", "archive"]
    assert all(e.actor is not None and e.created_at for e in article.events)
    with pytest.raises(NotAllowed):
        knowledge.create_article(db, knowledge.ArticleDraft("x", "y\n"), user_by_role(db, Role.CUSTOMER))


def test_every_save_is_a_revision_with_a_diff_and_restore(db):
    l2 = user_by_role(db, Role.AGENT_L2)
    article = knowledge.create_article(db, knowledge.ArticleDraft("Printer", "## Steps\n\nTurn it off.\n"), l2)
    db.commit()
    knowledge.edit_article(db, article, l2, knowledge.ArticleDraft("Printer", "## Steps\n\nTurn it off and on.\n"),
                           article.version, "clearer")
    db.commit()
    assert knowledge.edit_article(db, article, l2, knowledge.ArticleDraft("Printer", "## Steps\n\nTurn it off and on.\n"),
                                  article.version) is None  # nothing changed, no revision
    diff = knowledge.diff_revisions(article.revisions[0], article.revisions[1])
    assert ("-", "Turn it off.") in diff and ("+", "Turn it off and on.") in diff
    knowledge.restore_revision(db, article, l2, 1, article.version)
    db.commit()
    assert article.body == "## Steps\n\nTurn it off.\n" and len(article.revisions) == 3
    with pytest.raises(NotAllowed):
        knowledge.restore_revision(db, article, user_by_role(db, Role.AGENT_L1), 2, article.version)


def test_a_stale_edit_is_refused_and_nothing_is_overwritten(db):
    l2, admin = user_by_role(db, Role.AGENT_L2), user_by_role(db, Role.ADMIN)
    article = knowledge.create_article(db, knowledge.ArticleDraft("T", "one\n"), l2)
    db.commit()
    seen = article.version
    knowledge.edit_article(db, article, admin, knowledge.ArticleDraft("T", "two\n"), seen)
    db.commit()
    with pytest.raises(Conflict, match="changed by Admin"):
        knowledge.edit_article(db, article, l2, knowledge.ArticleDraft("T", "three\n"), seen)
    assert article.body == "two\n"


def test_appending_a_solution_to_an_existing_article(db):
    ticket = resolved_ticket(db)
    l2 = user_by_role(db, Role.AGENT_L2)
    article = db.scalar(select(Article).where(Article.slug == "vpn-connect-from-home"))
    revisions = len(article.revisions)
    knowledge.append_solution(db, article, ticket, l2, article.version)
    db.commit()
    assert article.body.rstrip().endswith("Delete the GlobalProtect profile and sign in again.")
    assert "Please send a screenshot" not in article.body  # a request for information is not a step
    assert "## GlobalProtect keeps asking for the portal address" in article.body
    assert len(article.revisions) == revisions + 1
    assert knowledge.articles_from_ticket(db, ticket) == [article]


def test_citing_links_and_numbers(db, seeded_app):
    ticket = resolved_ticket(db)
    article = db.scalar(select(Article).where(Article.slug == "vpn-connect-from-home"))
    assert knowledge.cite_articles(db, ticket, "See [this](http://x/articles/vpn-connect-from-home)") == [
        "vpn-connect-from-home"]
    assert knowledge.cite_articles(db, ticket, "again /articles/vpn-connect-from-home") == []
    knowledge.record_feedback(db, article, True, "", "session-1", None)
    knowledge.record_feedback(db, article, False, "old", "session-2", None)
    knowledge.record_feedback(db, article, True, "changed my mind", "session-2", None)
    db.commit()
    numbers = knowledge.article_numbers(db, [article])[article.id]
    assert (numbers.helpful, numbers.not_helpful, numbers.cited) == (2, 0, 1)
    assert numbers.helpful_ratio == 1.0


def agent_client(app, role):
    client = app.test_client()
    AuthActions(client).login(role)
    return client


def editor_form(page: str) -> dict:
    """The editor form's fields as a browser sends them: inputs, the text, the selected options."""
    start = page.index('id="editor-form"')
    form = page[start:page.index("</form>", start)]
    values = {name: html_lib.unescape(value) for name, value in
              re.findall(r'<input type="(?:text|hidden)" name="([^"]+)" value="([^"]*)"', form)}
    values.update((name, html_lib.unescape(text)) for name, text in
                  re.findall(r'<textarea name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S))
    for name, options in re.findall(r'<select name="([^"]+)">(.*?)</select>', form, re.S):
        values[name] = re.search(r'<option value="([^"]+)" selected', options).group(1)
    return values


def post_on_page(client, page_url: str, url: str, data: dict, with_version: bool = False):
    """Open a page and send one of its forms (its CSRF token, and the version it shows when asked)."""
    page = client.get(page_url, headers=EN)
    if with_version:
        data = {**data, "version": re.search(r'name="version" value="(\d+)"', page.text).group(1)}
    return client.post(url, headers=EN, data={**data, "csrf_token": csrf_token_from(page.text)})


def suggested_on_the_help_page(client, subject: str, description: str) -> list[str]:
    """What "Check for answers" on /help suggests for a request (the page without JavaScript)."""
    page = post_on_page(client, "/help", "/help", {
        "subject": subject, "description": description, "category": "general", "type": "incident",
        "impact": "3", "urgency": "2", "action": "check"})
    assert page.status_code == 200, page.text
    return re.findall(r'<li class="suggestion" data-slug="([^"]+)"', page.text)


PROBLEM = {
    "subject": "The expenses application closes when I attach a receipt photo",
    "description": "Every time I attach the photo of a taxi receipt to my expense report, the expenses "
                   "application closes without any message. I am Customer, call me on +34 612 345 678.",
    "category": "software", "type": "incident", "impact": "3", "urgency": "2",
}
SOLUTION = ("The expenses application cannot read HEIC photos, the format phones use by default. Convert the "
            "receipt photo to JPG (or take it again with the camera set to 'Most compatible') and attach it "
            "again.")
# The next customer's words: different wording, sharing only some word stems (expen-, recei-, appli-), which
# is what the test embedder can match; the real-model test below shares no distinctive word at all.
PARAPHRASE = ("Expenses app shuts down with pictures of receipts",
              "Adding pictures of my receipts to a claim makes the expenses application shut down.")


def test_the_whole_loop_from_ticket_to_a_suggestion_for_the_next_customer(seeded_app):
    """A customer's ticket is resolved by L2, promoted, reviewed, published; a new customer's paraphrased
    question then finds that article as a suggestion before creating a ticket. All through the pages."""
    customer_a = agent_client(seeded_app, Role.CUSTOMER)
    checked = post_on_page(customer_a, "/help", "/help", {**PROBLEM, "action": "check"})
    created = customer_a.post("/help", headers=EN, data={
        **PROBLEM, "action": "submit", "csrf_token": csrf_token_from(checked.text),
        "shown": re.findall(r'name="shown" value="([^"]+)"', checked.text)})
    assert created.status_code == 302, created.text
    ticket_id = int(created.headers["Location"].rsplit("/", 1)[1])

    # L1 takes it from the queue and escalates it; L2 finds it in their queue and resolves it.
    l1, l2 = agent_client(seeded_app, Role.AGENT_L1), agent_client(seeded_app, Role.AGENT_L2)
    assert f'data-ticket="{ticket_id}"' in l1.get("/desk/?mine=1", headers=EN).text
    assert post_on_page(l1, f"/tickets/{ticket_id}", f"/tickets/{ticket_id}/escalate",
                        {"reason": "Needs the expenses application's admin console"}, True).status_code == 302
    assert f'data-ticket="{ticket_id}"' in l2.get("/desk/?mine=1", headers=EN).text
    assert post_on_page(l2, f"/tickets/{ticket_id}", f"/tickets/{ticket_id}/resolve",
                        {"solution": SOLUTION}, True).status_code == 302
    assert "cannot read HEIC photos" in customer_a.get(f"/tickets/{ticket_id}", headers=EN).text

    # L2 promotes it: the editor opens with the draft, without the customer's details, and saves it.
    assert f"/kb/from-ticket/{ticket_id}" in l2.get(f"/tickets/{ticket_id}", headers=EN).text
    editor = l2.get(f"/kb/from-ticket/{ticket_id}", headers=EN)
    assert editor.status_code == 200
    draft = editor_form(editor.text)
    assert "HEIC" in draft["body"] and (draft["lang"], draft["category"]) == ("en", "software")
    assert "612 345 678" not in draft["body"] and "Customer" not in draft["body"]
    # The fake embedder's confidence is no measure of topics: on this long draft it reaches about 0.47 for a VPN
    # article, where the default ranking (for which MESA_DUPLICATE_THRESHOLD 0.45 was fitted) gives 0.02.
    seeded_app.config["MESA_DUPLICATE_THRESHOLD"] = 0.6
    saved = l2.post("/kb/new", headers=EN, data={**draft, "action": "save"})
    assert saved.status_code == 302, "a new topic needs no duplicate check"
    slug = saved.headers["Location"].split("/kb/articles/")[1].split("/")[0]
    anonymous = seeded_app.test_client()
    assert slug not in [r["slug"] for r in anonymous.get("/api/suggest", query_string={
        "q": " ".join(PARAPHRASE)}).json["results"]], "a draft is never suggested"

    # Review: L2 submits it, L1 may not publish, an admin approves and publishes.
    edit_url, state_url = f"/kb/articles/{slug}/edit", f"/kb/articles/{slug}/state"
    assert post_on_page(l2, edit_url, state_url, {"action": "submit"}, True).status_code == 302
    assert post_on_page(l1, edit_url, state_url, {"action": "publish"}, True).status_code == 403
    admin = agent_client(seeded_app, Role.ADMIN)
    assert post_on_page(admin, edit_url, state_url, {"action": "publish"}, True).status_code == 302
    article_page = anonymous.get(f"/articles/{slug}", headers=EN)
    assert article_page.status_code == 200 and "HEIC" in article_page.text and "612 345 678" not in article_page.text

    # A new customer registers and asks in their own words: the article is suggested before any ticket.
    customer_b = seeded_app.test_client()
    assert register_and_confirm(seeded_app, customer_b, "Bruno Vidal", "bruno@example.com").status_code == 302
    assert slug in suggested_on_the_help_page(customer_b, *PARAPHRASE)
    typed = customer_b.get("/api/suggest", query_string={"q": " ".join(PARAPHRASE)}).json["results"]
    assert slug in [r["slug"] for r in typed]  # the same while typing (the page's script)
    page = post_on_page(customer_b, "/help", "/help/solved", {"article": slug, "query": " ".join(PARAPHRASE)})
    assert page.status_code == 200 and "No ticket was created" in page.text
    with seeded_app.app_context():
        assert [t.id for t in get_session().scalars(select(Ticket))] == [ticket_id]

    # The ticket and the article point at each other; archiving takes the article out of suggestions at once.
    assert f"/articles/{slug}" in l2.get(f"/tickets/{ticket_id}", headers=EN).text
    assert f"/tickets/{ticket_id}" in l2.get(f"/articles/{slug}", headers=EN).text
    assert post_on_page(l2, edit_url, state_url, {"action": "archive"}, True).status_code == 302
    assert slug not in suggested_on_the_help_page(customer_b, *PARAPHRASE)


def app_with_the_default_model(directory):
    """The portal as `make run` builds it: a fresh SQLite database and the real default model.

    The one place that names the search settings (MESA_RANKING, the default), so that a change of the
    ranking settings is adapted here only.
    """
    from portal import create_app

    return create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(directory / "instance"),
                       "MESA_DATABASE_URL": f"sqlite:///{directory / 'mesa.db'}",
                       "MESA_INDEX_PATH": str(directory / "index.npz"),
                       "MESA_RANKING": indexer.DEFAULT_RANKING, "MESA_EMBEDDER_MODEL": ""})


def distinctive_stems(text: str) -> set[str]:
    """The first five letters of a text's words of four letters or more, but the commonest ones."""
    common = {"with", "when", "that", "from", "this", "have", "will", "into", "what", "were", "they", "then"}
    return {w[:5] for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in common}


@pytest.mark.real_model
def test_the_whole_loop_with_the_real_model_matches_the_meaning_not_the_words(tmp_path):
    """The same loop with the real default model: the new customer's question shares no distinctive word
    (not even a stem) with the article, and still finds it among the suggestions."""
    from portal.domain.articles import import_directory
    from portal.domain.models import Base
    from portal.domain.users import create_user
    from tests.conftest import ARTICLES_DIR, PASSWORD, ROLE_EMAILS, role_name

    subject = "Gastify rejects the photo of my receipt"
    description = ("When I attach the photo of a restaurant receipt to my expense report in Gastify, it says "
                   "'unsupported file' and will not upload it. The photo was taken with my iPhone.")
    solution = ("iPhones save photos as HEIC, which Gastify cannot read. In Settings > Camera > Formats choose "
                "'Most Compatible' so new photos are saved as JPG, or export the photo as JPG before uploading "
                "it to Gastify.")
    question = "The reimbursement tool refuses the snapshot of my dinner bill I took on my mobile"
    assert not distinctive_stems(question) & distinctive_stems(f"{subject} {description} {solution}")

    app = app_with_the_default_model(tmp_path)
    Base.metadata.create_all(app.extensions["mesa_engine"])
    with app.app_context():
        session = get_session()
        import_directory(session, ARTICLES_DIR)
        staff = {role: create_user(session, email, role_name(role), PASSWORD, role)
                 for role, email in ROLE_EMAILS.items()}
        create_user(session, "bruno@example.com", "Bruno Vidal", PASSWORD, Role.CUSTOMER)
        session.commit()
        get_search().rebuild(session)
        ticket = svc.create_ticket(session, staff[Role.CUSTOMER], subject, description, "software", 3, 2,
                                   app.extensions["mesa_sla"])
        svc.escalate(session, ticket, staff[Role.AGENT_L1], "Needs the Gastify admin console", ticket.version)
        svc.resolve(session, ticket, staff[Role.AGENT_L2], solution, ticket.version)
        article = knowledge.create_article(session, knowledge.draft_from_ticket(ticket), staff[Role.AGENT_L2],
                                           source_ticket=ticket)
        knowledge.change_state(session, article, staff[Role.AGENT_L2], "submit", article.version)
        knowledge.change_state(session, article, staff[Role.ADMIN], "publish", article.version)
        get_search().stage_article(session, article)  # what publishing in the portal does ...
        session.commit()
        get_search().follow(wait=True)  # ... and so is this: without it, a search within 250 ms misses it
        slug = article.slug
    newcomer = app.test_client()
    signed_in = newcomer.post("/login", data={"email": "bruno@example.com", "password": PASSWORD,
                                              "csrf_token": csrf_token_from(newcomer.get("/login").text)})
    assert signed_in.status_code == 302
    suggestions = [r["slug"] for r in newcomer.get("/api/suggest", query_string={"q": question}).json["results"]]
    assert slug in suggestions, suggestions
    app.extensions["mesa_engine"].dispose()


def test_possible_duplicates_are_shown_before_saving(seeded_app):
    l2 = agent_client(seeded_app, Role.AGENT_L2)
    editor = l2.get("/kb/new", headers=EN)
    with seeded_app.app_context():
        existing = get_session().scalar(select(Article).where(Article.slug == "print-queue-stuck"))
        title, body = existing.title, existing.body
    response = l2.post("/kb/new", headers=EN, data={
        "csrf_token": csrf_token_from(editor.text), "title": title, "body": body, "lang": "en",
        "category": "printers", "visibility": "public", "tags": "", "action": "save"})
    assert response.status_code == 200
    assert "Possible duplicates" in response.text and "/articles/print-queue-stuck" in response.text
    assert "likely the same topic" in response.text and "Save as a new article anyway" in response.text
    with seeded_app.app_context():
        assert get_session().scalar(select(Article).where(Article.title == title, Article.slug != "print-queue-stuck")) is None


def test_promoted_markup_never_executes(seeded_app):
    with seeded_app.app_context():
        db = get_session()
        ticket = resolved_ticket(db, description="Broken <img src=x onerror=alert(1)> <script>alert(2)</script>",
                                 solution="Fixed [it](javascript:alert(3))")
        l2 = user_by_role(db, Role.AGENT_L2)
        draft = knowledge.draft_from_ticket(ticket)
        article = knowledge.create_article(db, draft, l2, source_ticket=ticket)
        knowledge.change_state(db, article, l2, "publish", article.version)
        get_search().stage_article(db, article)
        db.commit()
        slug = article.slug
    client = agent_client(seeded_app, Role.AGENT_L2)
    for url in (f"/articles/{slug}", f"/kb/articles/{slug}/edit", f"/kb/articles/{slug}/history"):
        text = client.get(url).text
        assert not re.search(r"<[^>]*\bonerror", text), url
        assert "<script>alert(2)" not in text and 'href="javascript:' not in text, url
    preview = client.post("/kb/preview", data={"body": "<script>alert(1)</script>**b**",
                                               "csrf_token": csrf_token_from(client.get("/kb/new").text)},
                          headers={"Accept": "application/json"})
    assert preview.json["html"].strip() == "<p>&lt;script&gt;alert(1)&lt;/script&gt;<strong>b</strong></p>"  # as text


def test_a_category_longer_than_the_database_holds_is_refused_with_a_message(seeded_app):
    l2 = agent_client(seeded_app, Role.AGENT_L2)
    editor = l2.get("/kb/new", headers=EN)
    form = {"csrf_token": csrf_token_from(editor.text), "title": "Dock flickers", "body": "## Fix\n\nUpdate.\n",
            "lang": "en", "visibility": "public", "action": "save", "confirm_new": "1"}
    response = l2.post("/kb/new", headers=EN, data={**form, "category": "c" * 61})
    assert response.status_code == 400
    assert "The category is too long: at most 60 characters." in response.text
    with seeded_app.app_context():
        assert get_session().scalar(select(Article).where(Article.title == "Dock flickers")) is None
    assert l2.post("/kb/new", headers=EN, data={**form, "category": "c" * 60}).status_code == 302
    slug = "dock-flickers"
    page = l2.get(f"/kb/articles/{slug}/edit", headers=EN)
    version = re.search(r'name="version" value="(\d+)"', page.text).group(1)
    edited = l2.post(f"/kb/articles/{slug}/edit", headers=EN, data={
        **form, "csrf_token": csrf_token_from(page.text), "category": "d" * 61, "version": version})
    assert edited.status_code == 400 and "at most 60 characters" in edited.text


def test_feedback_on_an_article_page(client, seeded_app):
    page = client.get("/articles/laptop-disk-full", headers=EN)
    assert "Was this helpful?" in page.text
    response = client.post("/articles/laptop-disk-full/feedback", headers=EN,
                           data={"helpful": "no", "comment": "Missing Mac steps", "csrf_token": csrf_token_from(page.text)})
    assert response.status_code == 303
    bad = client.post("/articles/laptop-disk-full/feedback", headers=EN,
                      data={"helpful": "maybe", "csrf_token": csrf_token_from(page.text)})
    assert bad.status_code == 400 and "Answer yes or no" in bad.text


@pytest.mark.parametrize("role, status", [(None, 302), (Role.CUSTOMER, 403), (Role.AGENT_L1, 403),
                                          (Role.AGENT_L2, 200), (Role.ADMIN, 200)])
def test_only_l2_and_admins_promote(seeded_app, role, status):
    with seeded_app.app_context():
        ticket_id = resolved_ticket(get_session()).id
    client = seeded_app.test_client()
    AuthActions(client).login(role)
    assert client.get(f"/kb/from-ticket/{ticket_id}").status_code == status


@pytest.mark.parametrize("role, status", [(None, 302), (Role.CUSTOMER, 403), (Role.AGENT_L1, 200),
                                          (Role.AGENT_L2, 200), (Role.ADMIN, 200)])
def test_only_agents_see_the_kb_desk_and_history(client, auth, role, status):
    auth.login(role)
    assert client.get("/kb/").status_code == status
    assert client.get("/kb/articles/laptop-disk-full/history").status_code == status
    assert client.get("/kb/new").status_code == status


def test_an_index_failure_refuses_the_publish_and_keeps_the_article_as_it_was(seeded_app, monkeypatch):
    import portal.search

    with seeded_app.app_context():
        db = get_session()
        l2 = user_by_role(db, Role.AGENT_L2)
        article = knowledge.create_article(db, knowledge.ArticleDraft("Dock flickers", "## Fix\n\nUpdate firmware.\n"), l2)
        db.commit()
        slug, version = article.slug, article.version

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(portal.search, "prepare_articles", broken)
    client = agent_client(seeded_app, Role.AGENT_L2)
    page = client.get(f"/kb/articles/{slug}/edit", headers=EN)
    response = client.post(f"/kb/articles/{slug}/state", headers=EN, follow_redirects=True, data={
        "action": "publish", "version": version, "csrf_token": csrf_token_from(page.text)})
    assert response.status_code == 200
    assert "The search index could not be updated (disk full), so nothing was saved" in response.text
    with seeded_app.app_context():  # published means searchable: the article stays a draft, unchanged
        assert get_session().scalar(select(Article.status).where(Article.slug == slug)) == "draft"
        assert get_session().scalar(select(Article.version).where(Article.slug == slug)) == version
    monkeypatch.undo()
    client.post(f"/kb/articles/{slug}/state", headers=EN, data={
        "action": "publish", "version": version, "csrf_token": csrf_token_from(page.text)})
    assert slug in [hit["slug"] for hit in client.get("/api/search?q=dock+flickers+firmware").json["results"]]


def bump_article_version_from_another_connection(app, slug):
    """Another worker saves the article between this request's read and its write."""
    from sqlalchemy import update

    with app.extensions["mesa_engine"].begin() as connection:
        connection.execute(update(Article).where(Article.slug == slug).values(version=Article.version + 1))


def test_an_edit_that_races_another_save_is_refused_with_the_text_kept(seeded_app, monkeypatch):
    edit_article = knowledge.edit_article

    def edit_while_someone_else_saves(session, article, *args, **kwargs):
        bump_article_version_from_another_connection(seeded_app, article.slug)
        return edit_article(session, article, *args, **kwargs)

    monkeypatch.setattr(knowledge, "edit_article", edit_while_someone_else_saves)
    client = agent_client(seeded_app, Role.AGENT_L2)
    page = client.get("/kb/articles/laptop-disk-full/edit", headers=EN)
    version = re.search(r'name="version" value="(\d+)"', page.text).group(1)
    response = client.post("/kb/articles/laptop-disk-full/edit", headers=EN, data={
        "title": "My laptop disk is full", "body": "## Steps\n\nMy careful new text.\n", "lang": "en",
        "category": "hardware", "visibility": "public", "version": version, "csrf_token": csrf_token_from(page.text)})
    assert response.status_code == 409
    assert "since you opened it" in response.text and "My careful new text." in response.text
    with seeded_app.app_context():
        body = get_session().scalar(select(Article.body).where(Article.slug == "laptop-disk-full"))
    assert "My careful new text." not in body


def test_a_workflow_step_that_races_another_save_gets_the_conflict_page(seeded_app, monkeypatch):
    change_state = knowledge.change_state

    def change_state_while_someone_else_saves(session, article, *args, **kwargs):
        bump_article_version_from_another_connection(seeded_app, article.slug)
        return change_state(session, article, *args, **kwargs)

    monkeypatch.setattr(knowledge, "change_state", change_state_while_someone_else_saves)
    client = agent_client(seeded_app, Role.AGENT_L2)
    page = client.get("/kb/articles/laptop-disk-full/edit", headers=EN)
    version = re.search(r'name="version" value="(\d+)"', page.text).group(1)
    response = client.post("/kb/articles/laptop-disk-full/state", headers=EN, data={
        "action": "archive", "version": version, "csrf_token": csrf_token_from(page.text)})
    assert response.status_code == 409
    assert "Someone else changed this at the same moment" in response.text and "Agent L2" in response.text
    with seeded_app.app_context():
        status = get_session().scalar(select(Article.status).where(Article.slug == "laptop-disk-full"))
    assert status == "published"
