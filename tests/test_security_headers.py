"""Security headers: a Content-Security-Policy without inline script or style on every answer, no framing,
nosniff, a same-origin Referer, and no-store on a signed-in user's pages (static files stay cacheable)."""

import re
from pathlib import Path

import pytest

from portal.domain.models import Role
from portal.security_headers import CONTENT_SECURITY_POLICY
from tests.conftest import AuthActions

TEMPLATES = Path(__file__).resolve().parent.parent / "portal" / "templates"
DIRECTIVES = ["default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
              "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'", "object-src 'none'"]
PAGES = ["/", "/login", "/register", "/search?q=vpn", "/articles/laptop-disk-full", "/categories/vpn",
         "/api/search?q=vpn", "/healthz", "/no-such-page", "/static/mesa.css"]


def csp_directives(header: str) -> set[str]:
    return {" ".join(part.split()) for part in header.split(";") if part.strip()}


def test_the_policy_has_every_directive_and_allows_nothing_inline():
    directives = csp_directives(CONTENT_SECURITY_POLICY)
    assert set(DIRECTIVES) <= directives
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "unsafe-eval" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("path", PAGES)
def test_every_answer_carries_the_security_headers(client, path):
    response = client.get(path)
    assert set(DIRECTIVES) <= csp_directives(response.headers["Content-Security-Policy"])
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("path", ["/", "/tickets", "/help", "/articles/laptop-disk-full", "/api/search?q=vpn",
                                  "/no-such-page"])
def test_signed_in_pages_are_not_stored(client, auth, path):
    auth.login(Role.CUSTOMER)
    assert client.get(path).headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("role", [Role.AGENT_L1, Role.ADMIN])
def test_agent_and_admin_pages_are_not_stored(seeded_app, role):
    client = seeded_app.test_client()
    AuthActions(client).login(role)
    for path in ("/desk/", "/reports/", "/kb/", *(["/admin/outbox"] if role == Role.ADMIN else [])):
        assert client.get(path).headers["Cache-Control"] == "no-store", path


def test_visitors_pages_and_static_files_may_be_cached(client, auth):
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")
    auth.login(Role.CUSTOMER)
    static = client.get("/static/mesa.css")
    assert static.status_code == 200 and "no-store" not in static.headers.get("Cache-Control", "")


INLINE_PATTERNS = {
    "inline <script>": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "<style> element": re.compile(r"<style\b", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "inline event handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def test_no_template_has_inline_script_style_or_event_handlers():
    """The policy forbids them: such code would silently stop working in every browser."""
    found = [(str(path.relative_to(TEMPLATES)), kind)
             for path in sorted(TEMPLATES.rglob("*.html")) for kind, pattern in INLINE_PATTERNS.items()
             if pattern.search(path.read_text(encoding="utf-8"))]
    assert found == []
