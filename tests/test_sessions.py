"""Session cookies: SameSite=Lax and HttpOnly always, Secure as MESA_SECURE_COOKIES says; a copy of the cookie
stops working at sign-out and with a new password; a sign-in ends after MESA_SESSION_HOURS."""

import time

import pytest

from portal import create_app
from portal.db import get_session
from portal.domain.models import Role
from portal.session_cookies import SIGNED_IN_AT
from tests.conftest import AuthActions, user_by_role

EN = {"Accept-Language": "en"}


def session_cookie_header(response) -> str:
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]
    return header


def signed_in_as(client) -> bool:
    """Whether the client's cookie still opens a signed-in page."""
    return client.get("/tickets", headers=EN).status_code == 200


def copy_of_session(client, app):
    """A second client holding a copy of ``client``'s session cookie (as a thief, or a saved file, would)."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def test_the_session_cookie_is_samesite_lax_and_httponly_without_secure_over_plain_http_in_tests(client, auth):
    header = session_cookie_header(auth.login(Role.CUSTOMER))
    assert "SameSite=Lax" in header and "HttpOnly" in header and "Secure" not in header


@pytest.mark.parametrize("settings, secure", [
    ({"MESA_SECURE_COOKIES": "true"}, True),
    ({"MESA_SECURE_COOKIES": "false", "MESA_PORTAL_URL": "https://help.example"}, False),
    ({"MESA_SECURE_COOKIES": "auto", "MESA_PORTAL_URL": "https://help.example"}, True),
    ({"MESA_SECURE_COOKIES": "auto"}, False),  # tests, plain http://127.0.0.1
])
def test_secure_cookies_follow_the_setting(tmp_path, settings, secure):
    app = create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path), "MESA_RANKING": "fake", **settings})
    assert app.config["SESSION_COOKIE_SECURE"] is secure and app.config["REMEMBER_COOKIE_SECURE"] is secure
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax" == app.config["REMEMBER_COOKIE_SAMESITE"]


def test_production_marks_cookies_secure_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("MESA_SECRET_KEY", raising=False)
    app = create_app({"MESA_ENV": "production", "MESA_INSTANCE_DIR": str(tmp_path), "MESA_RANKING": "fake"})
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_a_saved_cookie_no_longer_works_after_sign_out(seeded_app, client, auth):
    auth.login(Role.CUSTOMER)
    saved = copy_of_session(client, seeded_app)
    assert signed_in_as(saved)
    assert auth.logout().status_code == 302
    assert not signed_in_as(client)
    response = saved.get("/tickets", headers=EN)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_signing_in_again_after_sign_out_works(client, auth):
    auth.login(Role.CUSTOMER)
    auth.logout()
    auth.login(Role.CUSTOMER)
    assert signed_in_as(client)


def test_a_new_password_ends_every_session(seeded_app, client, auth):
    auth.login(Role.AGENT_L1)
    assert client.get("/desk/", headers=EN).status_code == 200
    with seeded_app.app_context():
        user_by_role(get_session(), Role.AGENT_L1).set_password("another long password")
        get_session().commit()
    assert client.get("/desk/", headers=EN).status_code == 302


def test_a_sign_in_ends_after_the_session_hours(seeded_app, client, auth):
    auth.login(Role.CUSTOMER)
    with client.session_transaction() as session:
        session[SIGNED_IN_AT] = int(time.time()) - 11 * 3600
    assert signed_in_as(client)
    with client.session_transaction() as session:
        session[SIGNED_IN_AT] = int(time.time()) - 12 * 3600 - 5
    assert not signed_in_as(client)


@pytest.mark.parametrize("session_id, accepted", [
    ("{id}:{token}", True),  # the control: the cookie as Mesa issues it
    ("{id}", False),  # Mesa's old format: the id alone
    ("{id}:", False), ("{id}:not-the-token", False), ("²:{token}", False), ("9" * 30 + ":{token}", False),
])
def test_a_signed_session_must_name_the_users_current_token(seeded_app, client, auth, session_id, accepted):
    """Even with the signing key, a cookie naming the admin's id without the current token is no one."""
    auth.login(Role.CUSTOMER)
    with seeded_app.app_context():
        admin = user_by_role(get_session(), Role.ADMIN)
        forged = session_id.format(id=admin.id, token=admin.session_token)
    with client.session_transaction() as session:
        session["_user_id"] = forged
    assert client.get("/admin/outbox", headers=EN).status_code == (200 if accepted else 302)


def test_the_session_hours_must_be_at_least_one(tmp_path):
    with pytest.raises(RuntimeError, match="MESA_SESSION_HOURS=0"):
        create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path), "MESA_SESSION_HOURS": "0"})


def test_the_upgrade_gives_every_existing_account_a_token_of_its_own(tmp_path):
    """Accounts from before the upgrade can sign in (an empty token would match no cookie) and share nothing."""
    from alembic import command
    from sqlalchemy import MetaData, create_engine, insert, select

    from portal.db import alembic_config
    from portal.domain.models import utcnow

    url = f"sqlite:///{tmp_path / 'old.db'}"
    app = create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path), "MESA_DATABASE_URL": url})
    command.upgrade(alembic_config(app), "0008")
    engine = create_engine(url)
    tables = MetaData()
    tables.reflect(engine)
    with engine.begin() as connection:
        for number in (1, 2):
            connection.execute(insert(tables.tables["users"]).values(
                id=number, email=f"u{number}@example.com", name="U", password_hash="!", role="customer",
                active=True, created_at=utcnow()))
    command.upgrade(alembic_config(app), "0010")
    upgraded = MetaData()
    upgraded.reflect(engine)
    with engine.connect() as connection:
        tokens = list(connection.execute(select(upgraded.tables["users"].c.session_token)).scalars())
    engine.dispose()
    app.extensions["mesa_engine"].dispose()
    assert len(tokens) == 2 and len(set(tokens)) == 2 and all(len(token) >= 32 for token in tokens)
