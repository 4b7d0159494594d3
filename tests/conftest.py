"""Shared fixtures: an app per test on a fresh database, the starter KB indexed with the fake embedder,
one account per role, and helpers to sign in and to read CSRF tokens."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from portal import create_app
from portal.db import get_session
from portal.domain import articles as article_service
from portal.domain import users as user_service
from portal.domain.models import Base, Role
from portal.search import get_search

ROOT = Path(__file__).resolve().parent.parent
ARTICLES_DIR = ROOT / "articles"
BENCH_DIR = ROOT / "bench" / "packs"
PASSWORD = "correct horse battery"
ROLE_EMAILS = {
    Role.CUSTOMER: "customer@example.com",
    Role.AGENT_L1: "l1@example.com",
    Role.AGENT_L2: "l2@example.com",
    Role.ADMIN: "admin@example.com",
}
# Set to a PostgreSQL URL to run the database tests there (`make test-postgres` does).
POSTGRES_URL = os.environ.get("MESA_TEST_DATABASE_URL", "")


def reset_schema(url: str) -> None:
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()


def make_test_app(directory: Path, url: str, ranking: str = "fake", **settings):
    """A Mesa app whose database, index and instance folder live in ``directory``; fake ranking by default.
    CSRF protection stays on, as in production: tests post the tokens the real forms carry."""
    return create_app({
        **settings,
        "TESTING": True,
        "MESA_INSTANCE_DIR": str(directory / "instance"),
        "MESA_DATABASE_URL": url,
        "MESA_INDEX_PATH": str(directory / "index.npz"),
        "MESA_RANKING": ranking,
        "MESA_EMBEDDER_MODEL": "",
    })


def seed(app) -> None:
    """Import and index the starter KB, and create one account per role."""
    with app.app_context():
        session = get_session()
        article_service.import_directory(session, ARTICLES_DIR)
        for role, email in ROLE_EMAILS.items():
            user_service.create_user(session, email, role_name(role), PASSWORD, role)
        session.commit()
        get_search().rebuild(session)


def role_name(role: Role) -> str:
    """The display name of the seeded account of a role ("Customer", "Agent L1", ...)."""
    return role.value.replace("_", " ").title()


@pytest.fixture(scope="session")
def seeded_sqlite_template(tmp_path_factory):
    """A seeded SQLite database and index built once; each test gets a copy (seeding takes a second)."""
    directory = tmp_path_factory.mktemp("seeded-template")
    url = f"sqlite:///{directory / 'mesa.db'}"
    reset_schema(url)
    app = make_test_app(directory, url)
    seed(app)
    app.extensions["mesa_engine"].dispose()
    return directory


@pytest.fixture
def app(tmp_path):
    """A Mesa app on an empty database with the schema, using the fake embedder."""
    url = POSTGRES_URL or f"sqlite:///{tmp_path / 'mesa.db'}"
    reset_schema(url)
    app = make_test_app(tmp_path, url)
    yield app
    app.extensions["mesa_engine"].dispose()


@pytest.fixture
def seeded_app(request, tmp_path):
    """The app with the starter KB imported and indexed, and one account per role."""
    if POSTGRES_URL:
        reset_schema(POSTGRES_URL)
        app = make_test_app(tmp_path, POSTGRES_URL)
        seed(app)
    else:
        template = request.getfixturevalue("seeded_sqlite_template")
        for name in ("mesa.db", "index.npz"):
            shutil.copyfile(template / name, tmp_path / name)
        app = make_test_app(tmp_path, f"sqlite:///{tmp_path / 'mesa.db'}")
    yield app
    app.extensions["mesa_engine"].dispose()


@pytest.fixture
def client(seeded_app):
    """A test client of the seeded app."""
    return seeded_app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner of the (unseeded) app."""
    return app.test_cli_runner()


def csrf_token_from(html: str) -> str:
    """The CSRF token of the first form in a page."""
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


class AuthActions:
    """Sign in and out as a given role, through the real forms."""

    def __init__(self, client):
        self._client = client

    def login(self, role: Role | None = Role.CUSTOMER, password: str = PASSWORD):
        if role is None:
            return None
        page = self._client.get("/login")
        return self._client.post("/login", data={
            "email": ROLE_EMAILS[role], "password": password, "csrf_token": csrf_token_from(page.text)})

    def logout(self):
        page = self._client.get("/")
        return self._client.post("/logout", data={"csrf_token": csrf_token_from(page.text)})


@pytest.fixture
def auth(client):
    """Sign-in helper for the client."""
    return AuthActions(client)


@pytest.fixture
def db(seeded_app):
    """A session on the seeded database, inside an app context."""
    with seeded_app.app_context():
        yield get_session()


def user_by_role(session, role: Role):
    """The seeded account of a role."""
    from sqlalchemy import select

    from portal.domain.models import User

    return session.scalar(select(User).where(User.email == ROLE_EMAILS[role]))


def verification_link(app, email: str) -> str:
    """The path of the newest confirmation link e-mailed to ``email`` (read from the outbox)."""
    from sqlalchemy import select

    from portal.domain.models import OutboxMessage

    with app.app_context():
        bodies = get_session().scalars(select(OutboxMessage.body).where(OutboxMessage.recipient == email)
                                       .order_by(OutboxMessage.id.desc()))
        for body in bodies:
            match = re.search(r"https?://[^/\s]+(/verify/\S+)", body)
            if match:
                return match.group(1)
    raise AssertionError(f"no confirmation link was sent to {email}")


def register_and_confirm(app, client, name: str, email: str, password: str = PASSWORD):
    """Register through the form, open the e-mailed link and confirm, then sign in; returns the sign-in."""
    page = client.get("/register")
    registered = client.post("/register", data={"name": name, "email": email, "password": password,
                                                "confirm": password, "csrf_token": csrf_token_from(page.text)})
    assert registered.status_code == 200, registered.status_code
    link = verification_link(app, email)
    confirmed = client.post(link, data={"csrf_token": csrf_token_from(client.get(link).text)})
    assert confirmed.status_code == 302, confirmed.status_code
    page = client.get("/login")
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": csrf_token_from(page.text)})


@pytest.fixture
def seeded_app_with(request, tmp_path):
    """A factory: the seeded app with some settings changed (``MESA_LOGIN_LIMIT_ACCOUNT="3/900"``...).
    A second call gives another app over the same database, as a second worker process or host would be."""
    apps = []

    def build(**settings):
        if POSTGRES_URL:
            if not apps:
                reset_schema(POSTGRES_URL)
            app = make_test_app(tmp_path, POSTGRES_URL, **settings)
            if not apps:
                seed(app)
        else:
            if not apps:
                template = request.getfixturevalue("seeded_sqlite_template")
                for name in ("mesa.db", "index.npz"):
                    shutil.copyfile(template / name, tmp_path / name)
            app = make_test_app(tmp_path, f"sqlite:///{tmp_path / 'mesa.db'}", **settings)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["mesa_engine"].dispose()


def mute_agent_mail(app) -> None:
    """Turn off every notification e-mail of the seeded agents, for tests that count the requester's mails
    (the agents' own are tested in tests/test_agent_notifications.py)."""
    from portal.domain import agent_mail_preferences

    with app.app_context():
        session = get_session()
        for role in (Role.AGENT_L1, Role.AGENT_L2, Role.ADMIN):
            agent_mail_preferences.save(session, user_by_role(session, role), set(), "", ["es", "en"])
        session.commit()
