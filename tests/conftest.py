"""Shared fixtures: an app per test on a fresh database, the starter KB indexed with the fake embedder,
one account per role, and helpers to sign in and to read CSRF tokens."""

from __future__ import annotations

import os
import re
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
BENCH_DIR = ROOT.parent / "shared" / "bench" / "dev"
PASSWORD = "correct horse battery"
ROLE_EMAILS = {
    Role.CUSTOMER: "customer@example.com",
    Role.AGENT_L1: "l1@example.com",
    Role.AGENT_L2: "l2@example.com",
    Role.ADMIN: "admin@example.com",
}
# Set to a PostgreSQL URL to run the database tests there (`make test-postgres` does).
POSTGRES_URL = os.environ.get("MESA_TEST_DATABASE_URL", "")


def _reset_schema(url: str) -> None:
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()


@pytest.fixture
def app(tmp_path):
    """A Mesa app on an empty database with the schema, using the fake embedder."""
    url = POSTGRES_URL or f"sqlite:///{tmp_path / 'mesa.db'}"
    _reset_schema(url)
    app = create_app({
        "TESTING": True,
        "MESA_INSTANCE_DIR": str(tmp_path / "instance"),
        "MESA_DATABASE_URL": url,
        "MESA_INDEX_PATH": str(tmp_path / "index.npz"),
        "MESA_EMBEDDER": "fake",
        "MESA_EMBEDDER_MODEL": "",
    })
    yield app
    app.extensions["mesa_engine"].dispose()


@pytest.fixture
def seeded_app(app):
    """The app with the starter KB imported and indexed, and one account per role."""
    with app.app_context():
        session = get_session()
        article_service.import_directory(session, ARTICLES_DIR)
        for role, email in ROLE_EMAILS.items():
            user_service.create_user(session, email, role.value.replace("_", " ").title(), PASSWORD, role)
        session.commit()
        get_search().rebuild(session)
    return app


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
