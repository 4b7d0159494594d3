"""Bad input over the pages and their forms answers 4xx with a message, never 5xx: ids of 2^63 and more,
Unicode digits (``²`` passes ``isdigit()``), signs, text that is not UTF-8, huge bodies, lists for single
values. Every route with an integer in its path is walked from the URL map; every form of the permission
table is posted (signed in as a role that may post it) with each bad value in each field."""

from __future__ import annotations

import pytest
from werkzeug.routing.converters import BaseConverter

from portal.domain.models import Role
from portal.domain.numbers import MAX_ID, parse_id, parse_int
from portal.url_converters import BoundedIntConverter
from tests.conftest import AuthActions, csrf_token_from
from tests.test_tickets_views import ROUTES, permission_fixtures

EN = {"Accept-Language": "en"}
BAD_INTEGERS = [str(2**63), str(2**64), "9" * 40, str(MAX_ID + 1), "²", "٣", "-1", "0", "+1", "1e3", "0x10",
                "1.5", " ", "1 2", "00000000000000000001"]
BAD_VALUES = BAD_INTEGERS + ["", "x" * 30_000, "ä\u202e\ufeff", "<script>alert(1)</script>"]


@pytest.mark.parametrize("raw, expected", [
    ("42", 42), (" 42 ", 42), ("0", None), (str(MAX_ID), MAX_ID), (str(MAX_ID + 1), None), (str(2**63), None),
    ("²", None), ("٣", None), ("-1", None), ("+1", None), ("", None), (None, None), ("1e3", None), (7, 7),
    (True, None), (2**63, None),
])
def test_an_id_is_ascii_digits_within_what_the_database_holds(raw, expected):
    assert parse_id(raw) == expected


def test_a_bounded_number_keeps_to_its_range():
    assert parse_int("5", low=1, high=5) == 5 and parse_int("6", low=1, high=5) is None
    assert parse_int("0") == 0 and parse_int("0", low=1) is None


def integer_rules(app):
    """The rules with an integer converter in their path, and the names of those parts."""
    for rule in app.url_map.iter_rules():
        names = [name for name, converter in rule._converters.items()
                 if isinstance(converter, BoundedIntConverter) or type(converter).__name__ == "IntegerConverter"]
        if names:
            yield rule, names


def test_every_int_in_a_path_uses_the_bounded_converter(seeded_app):
    """No route keeps Werkzeug's own (unbounded, any-digit) integer converter."""
    rules = list(integer_rules(seeded_app))
    assert len(rules) >= 12
    others = [rule.rule for rule in seeded_app.url_map.iter_rules() for converter in rule._converters.values()
              if type(converter).__name__ in ("IntegerConverter", "NumberConverter")]
    assert others == []
    assert all(isinstance(c, BaseConverter) for rule, _ in rules for c in rule._converters.values())


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.ADMIN])
def test_every_route_with_an_integer_in_its_path_answers_4xx_to_bad_integers(seeded_app, role):
    client = seeded_app.test_client()
    AuthActions(client).login(role)
    token = csrf_token_from(client.get("/", headers=EN).text)
    failures = []
    for rule, names in integer_rules(seeded_app):
        for bad in BAD_INTEGERS:
            path = rule.rule
            for name in names:
                path = path.replace(f"<int:{name}>", bad.strip() or "%20")
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                if method == "GET":
                    response = client.get(path, headers=EN)
                else:
                    response = client.post(path, data={"csrf_token": token, "version": "1"}, headers=EN)
                if not 400 <= response.status_code < 500:
                    failures.append((method, path, response.status_code))
    assert failures == []


def test_a_valid_id_still_reaches_the_page(seeded_app):
    ids = permission_fixtures(seeded_app)
    client = seeded_app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    assert client.get(f"/tickets/{ids['ticket']}", headers=EN).status_code == 200
    assert client.get(f"/tickets/{ids['ticket']}0000000000", headers=EN).status_code == 404  # 11 digits


@pytest.mark.parametrize("url", [
    "/desk/?level={bad}", "/desk/?priority={bad}", "/reports/?days={bad}",
    "/kb/articles/laptop-disk-full/history?from={bad}", "/kb/articles/laptop-disk-full/history?to={bad}",
    "/kb/articles/laptop-disk-full/history?from={bad}&to={bad}", "/admin/outbox?status={bad}",
    "/search?q=vpn&k={bad}", "/api/search?q=vpn&k={bad}", "/api/suggest?q=vpn+client&k={bad}",
])
def test_integer_query_parameters_answer_4xx_or_ignore_bad_values(seeded_app, url):
    client = seeded_app.test_client()
    AuthActions(client).login(Role.ADMIN)
    for bad in BAD_INTEGERS:
        response = client.get(url.format(bad=bad), headers=EN)
        assert response.status_code in (200, 400), (url.format(bad=bad), response.status_code)
        if response.status_code == 400:
            message = response.json["error"] if "/api/" in url else response.text
            assert "whole number" in message


def test_the_search_api_names_the_bad_k(client):
    for bad in ("²", str(2**64), "-1", "٣"):
        response = client.get(f"/api/search?q=vpn&k={bad}", headers=EN)
        assert response.status_code == 400 and "'k' must be a whole number" in response.json["error"]


# The forms of the pages; the JSON API (its bodies are JSON, not forms) is fuzzed by `make fuzz`.
POST_ROUTES = [(path, data) for method, path, data, _ in ROUTES if method == "POST" and not path.startswith("/api/")]


def poster_of(path: str) -> Role | None:
    """A role that may post this form: the requester for a survey, nobody for sign-in and registration,
    otherwise an admin (who may do everything agents may)."""
    if path in ("/login", "/register"):
        return None
    return Role.CUSTOMER if path.endswith("/survey") or path.startswith("/help") else Role.ADMIN


@pytest.mark.parametrize("path, data", POST_ROUTES, ids=[f"{p} {sorted(d)[:2]}" for p, d in POST_ROUTES])
def test_every_form_answers_bad_values_in_every_field_with_a_4xx_or_its_normal_answer(seeded_app, path, data):
    ids = permission_fixtures(seeded_app)
    client = seeded_app.test_client()
    role = poster_of(path)
    AuthActions(client).login(role)
    token = csrf_token_from(client.get("/login" if role is None else "/", headers=EN).text)
    url = path.format(**ids)
    form = {key: value.format(**ids) for key, value in data.items()}
    failures = []
    for field in sorted(set(form) | {"version"}):
        for bad in BAD_VALUES:
            response = client.post(url, data={**form, field: bad, "csrf_token": token}, headers=EN)
            if response.status_code >= 500:
                failures.append((field, bad[:20], response.status_code))
        response = client.post(url, data={**form, field: ["1", "2"], "csrf_token": token}, headers=EN)
        if response.status_code >= 500:
            failures.append((field, "a list", response.status_code))
    assert failures == []


INVALID_UTF8 = b"%FF%FE%C3%28"


@pytest.mark.parametrize("role, page, url", [
    (Role.CUSTOMER, "/help", "/help"),
    (None, "/register", "/register"),
    (Role.AGENT_L2, "/kb/new", "/kb/new"),
    (Role.CUSTOMER, "/", "/articles/laptop-disk-full/feedback"),
])
def test_a_form_that_is_not_utf8_is_refused_with_a_message(seeded_app, role, page, url):
    client = seeded_app.test_client()
    AuthActions(client).login(role)
    token = csrf_token_from(client.get(page, headers=EN).text)
    body = b"subject=" + INVALID_UTF8 + b"&name=x" + INVALID_UTF8 + b"&csrf_token=" + token.encode()
    response = client.post(url, data=body, content_type="application/x-www-form-urlencoded", headers=EN)
    assert response.status_code == 400 and "not valid UTF-8" in response.text


def test_a_multipart_form_that_is_not_utf8_is_refused(seeded_app):
    client = seeded_app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    token = csrf_token_from(client.get("/help", headers=EN).text)
    boundary = "mesa-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\n").encode() \
        + b"\xff\xfe\r\n" + f"--{boundary}--\r\n".encode()
    response = client.post("/help", data=body, content_type=f"multipart/form-data; boundary={boundary}",
                           headers=EN)
    assert response.status_code == 400 and "not valid UTF-8" in response.text


@pytest.mark.parametrize("url", ["/search?q=%FFvpn", "/api/search?q=%C3%28", "/api/suggest?q=vpn%FE%FF"])
def test_an_address_that_is_not_utf8_is_refused_with_a_message(client, url):
    response = client.get(url, headers=EN)
    assert response.status_code == 400
    message = response.json["error"] if url.startswith("/api/") else response.text
    assert "not valid UTF-8" in message


def test_utf8_text_still_passes(seeded_app):
    client = seeded_app.test_client()
    assert client.get("/search?q=contrase%C3%B1a", headers=EN).status_code == 200
    assert client.get("/api/search?q=caf%C3%A9+%E2%82%AC", headers=EN).status_code == 200


@pytest.mark.parametrize("accept, url", [("text/html", "/login"), ("application/json", "/login"),
                                         ("text/html", "/help")])
def test_a_body_over_the_limit_is_413_with_a_message(seeded_app, accept, url):
    client = seeded_app.test_client()
    AuthActions(client).login(Role.CUSTOMER if url == "/help" else None)
    huge = "x" * (seeded_app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post(url, data={"description": huge}, headers={**EN, "Accept": accept})
    assert response.status_code == 413
    message = response.json["error"] if accept == "application/json" else response.text
    assert "too large: at most 2 MB" in message


@pytest.mark.parametrize("field, value", [("impact", "٣"), ("urgency", "²"), ("version", "١")])
def test_other_digits_are_not_read_as_numbers_in_a_ticket_change(seeded_app, field, value):
    """Werkzeug and int() read Arabic-Indic digits as numbers; Mesa's one helper does not."""
    from portal.db import get_session
    from portal.domain.models import Ticket

    ids = permission_fixtures(seeded_app)
    client = seeded_app.test_client()
    AuthActions(client).login(Role.AGENT_L2)
    token = csrf_token_from(client.get(f"/tickets/{ids['ticket']}", headers=EN).text)
    form = {"impact": "1", "urgency": "1", "version": str(ids["ticket_version"]), field: value, "csrf_token": token}
    response = client.post(f"/tickets/{ids['ticket']}/priority", data=form, headers=EN)
    assert response.status_code in (400, 409)
    with seeded_app.app_context():
        assert get_session().get(Ticket, ids["ticket"]).priority != 1
