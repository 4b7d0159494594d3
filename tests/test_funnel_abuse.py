"""The self-service funnel cannot be forged: each person counts once, and recorded searches are rate-limited."""

from sqlalchemy import func, select

from portal.db import get_session
from portal.domain.models import ArticleFeedback, PortalEvent, Role
from portal.domain.reports import build_report
from tests.conftest import AuthActions, csrf_token_from

EN = {"Accept-Language": "en"}
ARTICLE = "print-queue-stuck"


def events_of(app, kind):
    """How many funnel events of a kind are stored."""
    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(PortalEvent).where(PortalEvent.kind == kind))


def post_solved(client, slug=ARTICLE, address="127.0.0.1"):
    """Press "This solved my problem" for an article."""
    token = csrf_token_from(client.get("/help").text)
    return client.post("/help/solved", data={"article": slug, "query": "my print job is stuck",
                                             "csrf_token": token}, environ_base={"REMOTE_ADDR": address})


def vote(client, slug="laptop-disk-full", helpful="no", address="127.0.0.1"):
    """Answer "Was this helpful?" on an article."""
    token = csrf_token_from(client.get(f"/articles/{slug}").text)
    return client.post(f"/articles/{slug}/feedback", data={"helpful": helpful, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def test_twenty_solved_posts_by_one_customer_count_as_one_deflection(client, seeded_app):
    AuthActions(client).login(Role.CUSTOMER)
    answers = {post_solved(client).status_code for _ in range(20)}
    assert answers == {200}, "the customer still sees the thank-you page"
    assert events_of(seeded_app, "solved") == 1
    with seeded_app.app_context():
        assert build_report(get_session()).funnel["solved"] == 1
    other_browser = seeded_app.test_client()
    AuthActions(other_browser).login(Role.CUSTOMER)
    post_solved(other_browser)
    assert events_of(seeded_app, "solved") == 1, "per person, not per browser session"
    post_solved(client, "laptop-disk-full")
    assert events_of(seeded_app, "solved") == 2, "another article is another deflection"
    colleague = seeded_app.test_client()
    AuthActions(colleague).login(Role.AGENT_L1)
    post_solved(colleague)
    assert events_of(seeded_app, "solved") == 3


def test_solved_posts_are_limited_per_client_address(seeded_app_with):
    app = seeded_app_with(MESA_FEEDBACK_LIMIT_ADDRESS="3/3600")
    client = app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    assert [post_solved(client).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_suggestions_are_limited_per_visitor(seeded_app_with):
    app = seeded_app_with(MESA_SEARCH_LIMIT_VISITOR="5/60")
    client = app.test_client()
    questions = [f"printer problem number {n} is different" for n in range(8)]
    answers = [client.get("/api/suggest", query_string={"q": q}, headers=EN) for q in questions]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 3
    assert "Too many attempts" in answers[5].json["error"] and int(answers[5].headers["Retry-After"]) >= 1
    assert events_of(app, "search") <= 5
    assert app.test_client().get("/api/suggest", query_string={"q": "vpn client"}).status_code == 200, \
        "another visitor is not affected"


def test_suggestions_without_a_cookie_are_limited_per_address(seeded_app_with):
    app = seeded_app_with(MESA_SEARCH_LIMIT_ADDRESS="5/60")
    answers = [app.test_client().get("/api/suggest", query_string={"q": f"the vpn fails on try {n}"},
                                     environ_base={"REMOTE_ADDR": "10.4.0.1"}).status_code for n in range(7)]
    assert answers == [200] * 5 + [429] * 2
    assert events_of(app, "search") + events_of(app, "suggestion_shown") <= 5 * 6, "rows bounded by the limit"
    elsewhere = app.test_client().get("/api/suggest", query_string={"q": "vpn client"},
                                      environ_base={"REMOTE_ADDR": "10.4.0.2"})
    assert elsewhere.status_code == 200


def test_the_search_page_is_limited_like_suggestions(seeded_app_with):
    app = seeded_app_with(MESA_SEARCH_LIMIT_VISITOR="2/60")
    client = app.test_client()
    assert [client.get(f"/search?q=vpn+{n}", headers=EN).status_code for n in range(3)] == [200, 200, 429]
    assert events_of(app, "search") == 2


def test_a_signed_in_person_has_one_helpful_vote_per_article_whatever_the_session(seeded_app):
    for _ in range(3):
        browser = seeded_app.test_client()
        AuthActions(browser).login(Role.CUSTOMER)
        assert vote(browser, helpful="no").status_code == 303
    last = seeded_app.test_client()
    AuthActions(last).login(Role.CUSTOMER)
    vote(last, helpful="yes")
    with seeded_app.app_context():
        votes = list(get_session().scalars(select(ArticleFeedback.helpful)))
    assert votes == [True], "one vote, the latest answer"


def test_anonymous_votes_are_per_session_and_limited_per_address(seeded_app_with):
    app = seeded_app_with(MESA_FEEDBACK_LIMIT_ADDRESS="3/3600")
    visitor = app.test_client()
    assert [vote(visitor, address="10.5.0.1").status_code for _ in range(2)] == [303, 303]
    with app.app_context():
        assert get_session().scalar(select(func.count()).select_from(ArticleFeedback)) == 1
    answers = [vote(app.test_client(), address="10.5.0.1").status_code for _ in range(2)]
    assert answers == [303, 429], "new sessions from one address stop at the limit"


def test_reloading_an_article_counts_one_opening(client, seeded_app):
    for _ in range(5):
        assert client.get("/articles/laptop-disk-full").status_code == 200
    client.get("/articles/print-queue-stuck")
    assert events_of(seeded_app, "article_opened") == 2
    seeded_app.test_client().get("/articles/laptop-disk-full")
    assert events_of(seeded_app, "article_opened") == 3, "another visitor opens it too"
