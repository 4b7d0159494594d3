"""The trends page in a real browser: every chart is drawn as SVG with one point per day and series, in both
UI languages, under the pages' strict Content-Security-Policy (no inline style or script is needed)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portal.domain.models import Role
from tests.browser.test_deflection_in_browser import sign_in

pytestmark = pytest.mark.browser


def test_the_charts_render_in_both_languages(browser, live_server: str):
    context = browser.new_context(locale="es-ES", viewport={"width": 1366, "height": 900})
    page = context.new_page()
    refused = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    sign_in(page, live_server, Role.AGENT_L1)
    for language, title in (("es", "Tasa de autoservicio"), ("en", "Deflection rate")):
        page.goto(f"{live_server}/language/{language}?next=/reports/trends/%3Fdays%3D30%26by%3Dday")
        expect(page.locator("#trend-deflection h2")).to_have_text(title)
        assert page.locator("svg.chart").count() == 11
        days = page.locator("#trend-volume tbody tr").count()
        assert days == 31  # from the UTC day 30 days ago to today
        # Questions, solved, tickets: one point per day each, drawn with a size (the SVG is laid out).
        points = page.locator("#chart-self_service circle.point")
        assert points.count() == 3 * days
        box = page.locator("#chart-self_service").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
    assert refused == []
    context.close()
