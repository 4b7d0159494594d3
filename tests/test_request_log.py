"""One structured log line per request (logger ``mesa.requests``) and the request id in X-Request-ID."""

from __future__ import annotations

import json
import logging
import re

import pytest

from portal.domain.models import Role
from tests.conftest import user_by_role


@pytest.fixture
def request_lines(caplog):
    """The request log lines written so far, parsed."""
    caplog.set_level(logging.INFO, logger="mesa.requests")

    def lines() -> list[dict]:
        return [json.loads(record.getMessage()) for record in caplog.records if record.name == "mesa.requests"]

    return lines


def test_each_request_writes_one_line_with_its_route_status_method_and_duration(client, request_lines):
    response = client.get("/api/search?q=printer")
    assert response.status_code == 200
    [line] = request_lines()
    assert line["method"] == "GET" and line["status"] == 200
    assert line["route"] == "/api/search" and line["endpoint"] == "api.search"
    assert line["user_id"] == "-"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


def test_the_route_is_the_url_rule_not_the_path(client, request_lines):
    client.get("/articles/no-such-article")
    [line] = request_lines()
    assert line["route"] == "/articles/<slug>" and line["status"] == 404


def test_a_path_that_matches_no_route_is_logged_with_no_route(client, request_lines):
    client.get("/nowhere/at/all")
    [line] = request_lines()
    assert line["route"] == "-" and line["endpoint"] == "-" and line["status"] == 404


def test_a_well_formed_incoming_request_id_is_kept_and_echoed(client, request_lines):
    response = client.get("/", headers={"X-Request-ID": "lb-7f3a.42:1"})
    assert response.headers["X-Request-ID"] == "lb-7f3a.42:1"
    assert request_lines()[0]["request_id"] == "lb-7f3a.42:1"


@pytest.mark.parametrize("incoming", [None, "", "has space", "x" * 129, 'quote"inside', "-starts-with-dash",
                                      "line\\nbreak"])
def test_a_missing_or_malformed_request_id_is_replaced_by_a_new_one(client, request_lines, incoming):
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    response = client.get("/", headers=headers)
    request_id = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id) and request_id != incoming
    assert request_lines()[0]["request_id"] == request_id


def test_two_requests_without_an_id_get_different_ids(client):
    assert client.get("/").headers["X-Request-ID"] != client.get("/").headers["X-Request-ID"]


def test_the_signed_in_users_id_is_logged(client, auth, db, request_lines):
    auth.login(Role.CUSTOMER)
    customer = user_by_role(db, Role.CUSTOMER)
    client.get("/tickets")
    line = request_lines()[-1]
    assert line["user_id"] == str(customer.id) and line["route"] == "/tickets" and line["status"] == 200


def test_a_signed_in_users_request_that_loads_no_user_still_names_them(client, auth, db, request_lines):
    auth.login(Role.CUSTOMER)
    customer = user_by_role(db, Role.CUSTOMER)
    client.get("/static/help.js")
    assert request_lines()[-1]["user_id"] == str(customer.id)


def test_a_failing_request_is_logged_with_its_500(client, request_lines, monkeypatch):
    import portal.views.api

    def broken_search():
        raise RuntimeError("the search service broke")

    monkeypatch.setattr(portal.views.api, "get_search", broken_search)
    response = client.get("/api/search?q=printer")
    assert response.status_code == 500 and response.headers["X-Request-ID"]
    line = request_lines()[-1]
    assert line["status"] == 500 and line["route"] == "/api/search"
    assert line["request_id"] == response.headers["X-Request-ID"]


def test_a_post_refused_by_csrf_is_logged_with_its_400(client, request_lines):
    client.post("/login", data={"email": "a@b.org", "password": "x"})
    line = request_lines()[-1]
    assert line["method"] == "POST" and line["status"] == 400 and line["route"] == "/login"
