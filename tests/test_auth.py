"""Signing in and out: hashed passwords, CSRF, safe redirects."""

import pytest

from portal.db import get_session
from portal.domain.models import Role, User
from tests.conftest import PASSWORD, ROLE_EMAILS, csrf_token_from
from sqlalchemy import select


def test_login_and_logout(client, auth):
    response = auth.login(Role.AGENT_L1)
    assert response.status_code == 302
    assert "Sign out" in client.get("/", headers={"Accept-Language": "en"}).text
    assert auth.logout().status_code == 302
    assert "Sign in" in client.get("/", headers={"Accept-Language": "en"}).text


def test_wrong_password_is_refused_with_a_message(client, auth):
    response = auth.login(Role.CUSTOMER, password="wrong password")
    assert response.status_code == 401
    assert "Correo o contraseña incorrectos" in response.text  # no Accept-Language: the first UI language


def test_passwords_are_stored_hashed(seeded_app):
    with seeded_app.app_context():
        user = get_session().scalar(select(User).where(User.email == ROLE_EMAILS[Role.CUSTOMER]))
        assert PASSWORD not in user.password_hash and user.check_password(PASSWORD)


def test_login_without_csrf_token_is_refused(client):
    response = client.post("/login", data={"email": ROLE_EMAILS[Role.CUSTOMER], "password": PASSWORD},
                           headers={"Accept-Language": "en"})
    assert response.status_code == 400
    assert "did not come from this site" in response.text


def test_logout_requires_post_with_csrf(client, auth):
    auth.login(Role.CUSTOMER)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert "Sign out" in client.get("/", headers={"Accept-Language": "en"}).text


@pytest.mark.parametrize("target, expected", [
    ("/categories/vpn", "/categories/vpn"),
    ("https://evil.example/steal", "/"),
    ("//evil.example/steal", "/"),
    ("javascript:alert(1)", "/"),
])
def test_login_follows_only_on_site_next(client, target, expected):
    page = client.get("/login")
    response = client.post(f"/login?next={target}", data={
        "email": ROLE_EMAILS[Role.CUSTOMER], "password": PASSWORD, "csrf_token": csrf_token_from(page.text)})
    assert response.status_code == 302
    assert response.headers["Location"] == expected


@pytest.mark.parametrize("language, message", [("en", "Sign in first."), ("es", "Inicia sesión primero.")])
def test_the_api_asks_to_sign_in_in_the_ui_language(seeded_app, language, message):
    with seeded_app.test_request_context("/api/search", headers={"Accept-Language": language}):
        response, status = seeded_app.login_manager.unauthorized()
    assert status == 401 and response.get_json() == {"error": message}
