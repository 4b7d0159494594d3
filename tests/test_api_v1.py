"""The versioned JSON API: tokens (hashed, scoped, revocable), the OpenAPI document, errors, workflows."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import select

from portal.db import get_session
from portal.domain import api_tokens
from portal.domain.models import ApiToken, OutboxMessage, Role, User
from tests.conftest import ROLE_EMAILS, AuthActions, csrf_token_from, user_by_role
from tests.test_tickets_views import API_ROUTES, ROLES, api_body, permission_fixtures

EN = {"Accept-Language": "en"}


def make_token(app, role_or_email, scope="write") -> str:
    """A token of the seeded account of a role (or of the account with that e-mail)."""
    with app.app_context():
        session = get_session()
        email = ROLE_EMAILS.get(role_or_email, role_or_email)
        user = session.scalar(select(User).where(User.email == email))
        secret = api_tokens.create_token(session, user, f"{scope} token", scope)[1]
        session.commit()
    return secret


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}", **EN}


def create_ticket(client, secret, **fields):
    response = client.post("/api/v1/tickets", json={"subject": "VPN drops", "description": "Every hour.",
                                                    "category": "vpn", **fields}, headers=bearer(secret))
    assert response.status_code == 201, response.text
    return response.json


# ----- the same permission table as the pages, with tokens instead of the session -----------------------


@pytest.mark.parametrize("method, path, data, expected", API_ROUTES,
                         ids=[f"{m} {p}{' from ticket' if 'ticket_id' in d else ''}" for m, p, d, _ in API_ROUTES])
@pytest.mark.parametrize("role_index", range(len(ROLES)), ids=["anonymous", "customer", "l1", "l2", "admin"])
def test_tokens_get_the_same_answers_as_the_session(seeded_app, method, path, data, expected, role_index):
    ids = permission_fixtures(seeded_app)
    role = ROLES[role_index]
    headers = bearer(make_token(seeded_app, role)) if role is not None else {}
    response = seeded_app.test_client().open(path.format(**ids), method=method, headers=headers,
                                             json=api_body(data, ids) if method != "GET" else None)
    assert response.status_code == expected[role_index], (method, path, role, response.text)


def test_another_customer_sees_nothing_of_a_customers_tickets_or_tokens(seeded_app):
    ids = permission_fixtures(seeded_app)
    stranger_secret = make_token(seeded_app, "stranger@example.com")
    client = seeded_app.test_client()
    own = client.get("/api/v1/tickets", headers=bearer(stranger_secret)).json["tickets"]
    assert [t["id"] for t in own] == [ids["other_ticket"]]
    for method, url, body in (("GET", f"/api/v1/tickets/{ids['ticket']}", None),
                              ("POST", f"/api/v1/tickets/{ids['ticket']}/replies",
                               {"body": "me too", "version": ids["ticket_version"]})):
        response = client.open(url, method=method, json=body, headers=bearer(stranger_secret))
        assert response.status_code == 404 and response.json == {"error": f"There is no ticket #{ids['ticket']}."}
    assert client.get(f"/api/v1/tickets/{ids['other_ticket']}", headers=bearer(stranger_secret)).status_code == 200


# ----- tokens ------------------------------------------------------------------------------------------


def test_a_token_is_shown_once_stored_hashed_and_works_until_revoked(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    page = client.get("/account", headers=EN)
    created = client.post("/account/tokens", data={"name": "Inventory script", "scope": "write",
                                                   "csrf_token": csrf_token_from(page.text)}, headers=EN)
    assert created.status_code == 200 and "shown only now" in created.text
    secret = re.search(r'<code id="new-token">(mesa_[\w-]+)</code>', created.text).group(1)
    with seeded_app.app_context():
        stored = get_session().scalar(select(ApiToken).where(ApiToken.name == "Inventory script"))
        assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in (stored.token_hash, stored.prefix) and secret.startswith(stored.prefix)
        assert stored.last_used_at is None
        token_id = stored.id
    listing = client.get("/account", headers=EN)
    assert secret not in listing.text and "Inventory script" in listing.text and "Never" in listing.text

    other = seeded_app.test_client()
    me = other.get("/api/v1/me", headers=bearer(secret))
    assert me.status_code == 200
    assert me.json["email"] == ROLE_EMAILS[Role.CUSTOMER] and me.json["auth"] == "token"
    with seeded_app.app_context():
        assert get_session().get(ApiToken, token_id).last_used_at is not None
    assert "Never" not in client.get("/account", headers=EN).text

    revoked = client.post(f"/account/tokens/{token_id}/revoke",
                          data={"csrf_token": csrf_token_from(listing.text)}, headers=EN)
    assert revoked.status_code == 302
    after = other.get("/api/v1/me", headers=bearer(secret))
    assert after.status_code == 401 and after.json == {"error": "The API token is not valid or was revoked."}
    assert after.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_request_does_not_sign_the_browser_in(seeded_app):
    client = seeded_app.test_client()
    secret = make_token(seeded_app, Role.AGENT_L1)
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/desk/").status_code == 302  # the pages still ask to sign in


def test_creating_a_token_needs_a_name_and_a_known_access(client, auth):
    auth.login(Role.CUSTOMER)
    token = csrf_token_from(client.get("/account").text)
    nameless = client.post("/account/tokens", data={"name": " ", "scope": "read", "csrf_token": token}, headers=EN)
    assert nameless.status_code == 400
    admin_scope = client.post("/account/tokens", data={"name": "x", "scope": "admin", "csrf_token": token},
                              headers=EN)
    assert admin_scope.status_code == 400 and "Not a valid choice" in admin_scope.text
    assert client.post("/account/tokens", data={"name": "x", "scope": "read"}).status_code == 400  # no CSRF


def test_a_token_of_a_deactivated_account_stops_working(seeded_app):
    secret = make_token(seeded_app, Role.AGENT_L1)
    with seeded_app.app_context():
        session = get_session()
        user_by_role(session, Role.AGENT_L1).active = False
        session.commit()
    assert seeded_app.test_client().get("/api/v1/me", headers=bearer(secret)).status_code == 401


@pytest.mark.parametrize("header", ["Bearer mesa_not-a-token", "Basic dXNlcjpwYXNz", "Bearer", "mesa_x"])
def test_a_wrong_authorization_header_is_refused_not_ignored(client, header):
    response = client.get("/api/v1/me", headers={"Authorization": header, **EN})
    assert response.status_code == 401 and "error" in response.json


def test_a_read_token_reads_but_may_not_write(seeded_app):
    client = seeded_app.test_client()
    reader = make_token(seeded_app, Role.CUSTOMER, scope="read")
    assert client.get("/api/v1/tickets", headers=bearer(reader)).status_code == 200
    refused = client.post("/api/v1/tickets", json={"subject": "x", "description": "y"}, headers=bearer(reader))
    assert refused.status_code == 403
    assert refused.json == {"error": "This token can only read. Create a token with write access to change data."}
    assert client.get("/api/v1/tickets", headers=bearer(reader)).json == {"tickets": []}


def test_session_writes_need_the_csrf_header_token_writes_do_not(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    body = {"subject": "Printer", "description": "Jammed."}
    without = client.post("/api/v1/tickets", json=body, headers=EN)
    assert without.status_code == 400 and "did not come from this site" in without.json["error"]
    token = csrf_token_from(client.get("/").text)
    assert client.post("/api/v1/tickets", json=body, headers={"X-CSRFToken": token}).status_code == 201
    secret = make_token(seeded_app, Role.CUSTOMER)
    assert seeded_app.test_client().post("/api/v1/tickets", json=body, headers=bearer(secret)).status_code == 201


# ----- errors ------------------------------------------------------------------------------------------


def test_bad_input_answers_400_in_the_one_error_shape(seeded_app):
    client = seeded_app.test_client()
    secret = make_token(seeded_app, Role.CUSTOMER)
    cases = [
        ({"subject": "x"}, "description: Missing data for required field."),
        ({"subject": "x", "description": "y", "impact": 7}, "impact: Must be one of: 1, 2, 3."),
        ({"subject": "x", "description": "y", "priority": 1}, "priority: Unknown field."),
        ({"subject": ["x"], "description": "y"}, "subject: Not a valid string."),
        ({"subject": "two\nlines", "description": "y"}, "must fit on one line"),
        ({"subject": "x" * 201, "description": "y"}, "at most 200 characters"),
    ]
    for body, message in cases:
        response = client.post("/api/v1/tickets", json=body, headers=bearer(secret))
        assert response.status_code == 400 and list(response.json) == ["error"], body
        assert message in response.json["error"], (body, response.json)
    nul = client.post("/api/v1/tickets", json={"subject": "x", "description": "a\x00b"}, headers=bearer(secret))
    assert nul.status_code == 400 and "NUL character" in nul.json["error"]
    for raw in (b"{not json", b"\xff\xfe{}", b"[1, 2]"):
        response = client.post("/api/v1/tickets", data=raw, content_type="application/json", headers=bearer(secret))
        assert response.status_code == 400 and "error" in response.json, raw


def test_unknown_things_and_methods_answer_json(seeded_app):
    client = seeded_app.test_client()
    secret = make_token(seeded_app, Role.AGENT_L2)
    assert client.get("/api/v1/tickets/4242", headers=bearer(secret)).json == {"error": "There is no ticket #4242."}
    assert client.get(f"/api/v1/tickets/{2**64}", headers=bearer(secret)).status_code == 404
    assert client.get("/api/v1/articles/no-such-article", headers=bearer(secret)).status_code == 404
    assert client.get("/api/v1/nothing-here", headers=EN).json == {"error": "There is no such page."}
    wrong = client.delete("/api/v1/tickets", headers=bearer(secret))
    assert wrong.status_code == 405 and wrong.json == {"error": "This address does not accept that kind of request."}
    assert client.get("/api/v1/reports?days=12", headers=bearer(secret)).status_code == 400


def test_a_body_over_the_limit_answers_413(seeded_app):
    secret = make_token(seeded_app, Role.CUSTOMER)
    huge = b'{"subject": "x", "description": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    response = seeded_app.test_client().post("/api/v1/tickets", data=huge, content_type="application/json",
                                             headers=bearer(secret))
    assert response.status_code == 413 and response.json["error"].startswith("What you sent is too large: at most 2 MB")


# ----- the OpenAPI document and the reference ---------------------------------------------------------


def test_the_openapi_document_describes_every_api_route_and_the_error_shape(seeded_app):
    spec = seeded_app.test_client().get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    documented = {(method.upper(), re.sub(r"\{(\w+)\}", r"<\1>", path))
                  for path, item in spec["paths"].items() for method in item if method != "parameters"}
    routes = {(method, re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule))
              for rule in seeded_app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes and routes == documented
    assert spec["components"]["schemas"]["Error"]["required"] == ["error"]
    assert spec["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    create = spec["paths"]["/api/v1/tickets"]["post"]
    assert create["responses"]["default"] == {"$ref": "#/components/responses/DEFAULT_ERROR"}
    assert set(spec["components"]["schemas"]["TicketCreate"]["required"]) == {"subject", "description"}


def test_the_reference_page_loads_swagger_ui_from_mesa_without_inline_scripts(client):
    page = client.get("/api/reference", headers=EN)
    assert page.status_code == 200 and 'data-spec-url="/api/openapi.json"' in page.text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and all(body.strip() == "" for _, body in scripts)
    sources = [re.search(r'src="([^"]+)"', attrs).group(1) for attrs, _ in scripts]
    assert all(src.startswith("/") and not src.startswith("//") for src in sources)
    for src in sources:
        assert client.get(src).status_code == 200
    assert client.get("/api/reference/assets/index.html").status_code == 404


# ----- workflows ---------------------------------------------------------------------------------------


def test_v1_search_answers_as_the_search_page_endpoint(client):
    assert client.get("/api/v1/search?q=vpn&k=3").json == client.get("/api/search?q=vpn&k=3").json
    assert client.get("/api/v1/search?q=vpn&k=0").status_code == 400
    assert client.get("/api/v1/search").status_code == 400


def test_a_ticket_worked_through_the_api(seeded_app):
    client = seeded_app.test_client()
    customer, agent = make_token(seeded_app, Role.CUSTOMER), make_token(seeded_app, Role.AGENT_L1)
    ticket = create_ticket(client, customer, impact=2, urgency=1)
    assert ticket["status"] == "new" and ticket["priority"] == 2 and ticket["assignee"]["name"] == "Agent L1"
    url = f"/api/v1/tickets/{ticket['id']}"
    noted = client.post(f"{url}/notes", json={"body": "Check the VPN logs", "version": ticket["version"]},
                        headers=bearer(agent)).json
    replied = client.post(f"{url}/replies", json={"body": "Which VPN client?", "version": noted["version"]},
                          headers=bearer(agent)).json
    assert replied["status"] == "open"
    timed = client.post(f"{url}/time", json={"minutes": 15, "note": "logs", "version": replied["version"]},
                        headers=bearer(agent)).json
    assert timed["minutes_spent"] == 15
    stale = client.post(f"{url}/status", json={"status": "pending_customer", "version": replied["version"]},
                        headers=bearer(agent))
    assert stale.status_code == 409
    escalated = client.post(f"{url}/escalate", json={"reason": "Needs the network team", "version": timed["version"]},
                            headers=bearer(agent)).json
    assert escalated["level"] == 2 and escalated["status"] == "escalated"

    seen = client.get(url, headers=bearer(customer)).json
    kinds = [event["kind"] for event in seen["events"]]
    assert "note" not in kinds and "reply" in kinds and seen["minutes_spent"] is None
    assert "Check the VPN logs" not in str(seen)
    answer = client.post(f"{url}/replies", json={"body": "Cisco", "version": seen["version"]},
                         headers=bearer(customer))
    assert answer.status_code == 200
    with seeded_app.app_context():
        mails = get_session().scalars(select(OutboxMessage.subject).where(
            OutboxMessage.ticket_id == ticket["id"], OutboxMessage.recipient == ROLE_EMAILS[Role.CUSTOMER]))
        subjects = list(mails)
    assert any("New reply" in s or "Nueva respuesta" in s for s in subjects)  # the agent's reply was e-mailed
    assert len(subjects) == 2  # received + the reply; never the note


def test_an_article_written_reviewed_and_published_through_the_api_is_found(seeded_app):
    client = seeded_app.test_client()
    writer, publisher = make_token(seeded_app, Role.AGENT_L1), make_token(seeded_app, Role.AGENT_L2)
    draft = client.post("/api/v1/articles", json={
        "title": "Calibrate the badge reader", "body": "## Steps\n\nHold the badge reader button for ten seconds.",
        "lang": "en", "category": "hardware", "tags": ["badge", "reader"]}, headers=bearer(writer)).json
    assert draft["status"] == "draft" and draft["tags"] == ["badge", "reader"]
    slug = draft["slug"]
    anonymous = seeded_app.test_client()
    assert anonymous.get(f"/api/v1/articles/{slug}").status_code == 404
    submitted = client.post(f"/api/v1/articles/{slug}/state", json={"action": "submit", "version": draft["version"]},
                            headers=bearer(writer)).json
    refused = client.post(f"/api/v1/articles/{slug}/state", json={"action": "publish",
                                                                 "version": submitted["version"]},
                          headers=bearer(writer))
    assert refused.status_code == 403
    published = client.post(f"/api/v1/articles/{slug}/state", json={"action": "publish",
                                                                   "version": submitted["version"]},
                            headers=bearer(publisher)).json
    assert published["status"] == "published"
    assert anonymous.get(f"/api/v1/articles/{slug}").json["body"].startswith("## Steps")
    hits = anonymous.get("/api/v1/search", query_string={"q": "calibrate badge reader button", "k": 5}).json
    assert slug in [hit["slug"] for hit in hits["results"]]
    listed = anonymous.get("/api/v1/articles", query_string={"category": "hardware", "limit": 200}).json
    assert slug in [a["slug"] for a in listed["articles"]] and listed["total"] >= 1
    edited = client.put(f"/api/v1/articles/{slug}", json={
        "title": "Calibrate the badge reader", "body": "## Steps\n\nHold the button for twenty seconds.",
        "lang": "en", "category": "hardware", "version": published["version"], "note": "longer"},
                        headers=bearer(publisher)).json
    assert "twenty" in edited["body"] and edited["version"] > published["version"]


def test_reports_answer_the_reports_page_numbers(seeded_app):
    client = seeded_app.test_client()
    customer, agent = make_token(seeded_app, Role.CUSTOMER), make_token(seeded_app, Role.AGENT_L2)
    create_ticket(client, customer)
    report = client.get("/api/v1/reports?days=7", headers=bearer(agent)).json
    assert report["tickets_created"] == 1 and set(report["funnel"]) >= {"search", "solved", "ticket_created"}
    assert client.get("/api/v1/reports", headers=bearer(customer)).status_code == 403


def test_a_token_over_its_rate_limit_is_answered_429_with_retry_after(tmp_path):
    from portal.apiv1.ratelimit import TokenRateLimit

    clock = [100.0]
    limit = TokenRateLimit(3, clock=lambda: clock[0])
    assert [limit.retry_after(1) for _ in range(3)] == [None, None, None]
    assert limit.retry_after(1) == 60 and limit.retry_after(2) is None  # another token has its own count
    clock[0] += 59.5
    assert limit.retry_after(1) == 1
    clock[0] += 1
    assert limit.retry_after(1) is None  # a new minute


def test_the_rate_limit_setting_applies_to_api_tokens(seeded_app):
    seeded_app.extensions["mesa_api_rate_limit"].per_minute = 2
    seeded_app.config["MESA_API_RATE_LIMIT"] = 2
    secret = make_token(seeded_app, Role.CUSTOMER)
    client = seeded_app.test_client()
    statuses = [client.get("/api/v1/me", headers=bearer(secret)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = client.get("/api/v1/me", headers=bearer(secret))
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json["error"].startswith("Too many requests with this token: at most 2 a minute.")
