"""Mail out against a real SMTP server (aiosmtpd on 127.0.0.1, started here): every mail to a requester is
multipart plain text + sanitised HTML in the ticket's language; the acknowledgement offers the articles that
answer the ticket with a one-click "This solved my problem" that closes it and counts an e-mail deflection;
the resolved mail's rating links record the survey once; and the whole loop from the IMAP box of
tests/test_mail_in.py to a ticket closed by its acknowledgement's link."""

from __future__ import annotations

import re
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from itsdangerous import TimestampSigner
from sqlalchemy import select

from portal.db import get_session
from portal.domain import tickets as ticket_service
from portal.domain.models import OutboxMessage, PortalEvent, Role, SurveyResponse, Ticket, TicketStatus
from portal.domain.reports import build_report
from portal.mail_links import rating_link, solved_link

from .conftest import AuthActions, ROLE_EMAILS, csrf_token_from, mute_agent_mail, user_by_role
from .test_mail_in import dovecot, fetch, free_port, mail, mailbox  # noqa: F401 (the IMAP fixtures)

ES, EN = {"Accept-Language": "es"}, {"Accept-Language": "en"}
CUSTOMER = ROLE_EMAILS[Role.CUSTOMER]
PORTAL = "http://127.0.0.1:5000"
VPN_ES = {"subject": "No puedo conectarme a la VPN desde casa",
          "description": "La VPN dice error de autenticación cuando me conecto desde casa.", "category": "general",
          "type": "incident", "impact": "3", "urgency": "3", "asset_tag": ""}
ARRIVAL_SECONDS = 15  # the longest a test waits for a mail to arrive


class Inbox:
    """What the test SMTP server received: one parsed e-mail per message, with its envelope recipients."""

    def __init__(self):
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        """aiosmtpd's hook: keep the message as the recipient's mail server would."""
        with self.arrived:
            self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content,
                                                                              policy=policy.default)))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int) -> list[EmailMessage]:
        """The first ``count`` messages, waiting (bounded) for them to arrive."""
        deadline = time.monotonic() + ARRIVAL_SECONDS
        with self.arrived:
            while len(self.messages) < count and time.monotonic() < deadline:
                self.arrived.wait(deadline - time.monotonic())
            assert len(self.messages) >= count, f"{len(self.messages)} of {count} mails arrived"
            return [message for _recipients, message in self.messages[:count]]


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server on 127.0.0.1 (a free port) for the whole session."""
    controller = Controller(Inbox(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def inbox(smtp_server, seeded_app):
    """An empty inbox, and Mesa's mailer configured to send to the test server; the requester's mails only
    (the agents' notifications are tested in tests/test_agent_notifications.py)."""
    mute_agent_mail(seeded_app)
    smtp_server.handler.messages.clear()
    seeded_app.config.update(MESA_SMTP_HOST="127.0.0.1", MESA_SMTP_PORT=smtp_server.port, MESA_SMTP_STARTTLS=False,
                             MESA_SMTP_USER="", MESA_PORTAL_URL=PORTAL)
    return smtp_server.handler


def send_outbox(app) -> None:
    """Run `flask mail send-outbox` (it must succeed)."""
    result = app.test_cli_runner().invoke(args=["mail", "send-outbox"])
    assert result.exit_code == 0, result.output


def subject(message: EmailMessage) -> str:
    """The subject as a mail client shows it (a long or non-ASCII one is folded after the colon)."""
    return str(message["Subject"]).strip()


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML parts of a multipart/alternative mail."""
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def solved_links(text: str) -> list[str]:
    """The "This solved my problem" addresses of a mail's text part, as paths of the portal."""
    return [url.removeprefix(PORTAL) for url in re.findall(rf"{re.escape(PORTAL)}/mail/solved/\S+", text)]


def create_ticket_in_portal(client, data=VPN_ES, headers=ES) -> int:
    """A ticket through the ask-for-help form, submitted straight away (no suggestion looked at)."""
    page = client.get("/help", headers=headers)
    response = client.post("/help", data={**data, "action": "submit", "csrf_token": csrf_token_from(page.text)},
                           headers=headers)
    assert response.status_code == 302, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def follow(client, path: str, data: dict | None = None, headers=EN):
    """Open a link from a mail (GET), then press its page's button (POST with the page's CSRF token)."""
    page = client.get(path, headers=headers)
    assert page.status_code == 200, page.text
    return page, client.post(path, data={**(data or {}), "csrf_token": csrf_token_from(page.text)}, headers=headers)


def load_ticket(app, ticket_id: int) -> Ticket:
    with app.app_context():
        ticket = get_session().get(Ticket, ticket_id)
        ticket.events, ticket.survey  # loaded while the session is open
        return ticket


def email_deflections(app) -> list[PortalEvent]:
    with app.app_context():
        return list(get_session().scalars(select(PortalEvent).where(PortalEvent.kind == "solved",
                                                                    PortalEvent.channel == "email")))


# ----- the acknowledgement -----------------------------------------------------------------------------------


def test_the_acknowledgement_arrives_multipart_in_spanish_with_the_articles_that_answer_it(client, seeded_app,
                                                                                          inbox):
    AuthActions(client).login(Role.CUSTOMER)
    ticket_id = create_ticket_in_portal(client)
    send_outbox(seeded_app)
    [message] = inbox.wait_for(1)
    assert message["To"] == CUSTOMER and subject(message).startswith(f"[#{ticket_id}] Hemos recibido tu solicitud")
    assert message["In-Reply-To"] and message["Message-ID"].startswith("<mesa.")
    text, html = parts(message)
    assert "Hemos registrado tu ticket" in text and "Esto ha resuelto mi problema" in text
    assert "Hemos registrado tu ticket" in html and "Esto ha resuelto mi problema" in html
    assert '<html lang="es">' in html and "<script" not in html
    links = solved_links(text)
    assert links and all(f'href="{PORTAL}{link}"' in html for link in links)
    assert f"{PORTAL}/articles/" in text and f"{PORTAL}/tickets/{ticket_id}" in text
    with seeded_app.app_context():
        offered = get_session().scalars(select(PortalEvent).where(
            PortalEvent.kind == "suggestion_shown", PortalEvent.channel == "email")).all()
        assert len(offered) == len(links) and {event.ticket_id for event in offered} == {ticket_id}


def test_an_acknowledgement_offers_no_article_when_none_answers_the_ticket_confidently(client, seeded_app, inbox):
    seeded_app.extensions["mesa_search"].answer_threshold = 1.0  # nothing is ever that confident
    AuthActions(client).login(Role.CUSTOMER)
    ticket_id = create_ticket_in_portal(client, headers=EN, data={
        **VPN_ES, "subject": "The VPN fails from home", "description": "Authentication error on the VPN."})
    send_outbox(seeded_app)
    [message] = inbox.wait_for(1)
    text, html = parts(message)
    assert "We have registered your ticket" in text and solved_links(text) == []
    assert "This solved my problem" not in text and "This solved my problem" not in html
    assert f"/tickets/{ticket_id}" in text


def test_this_solved_my_problem_followed_closes_the_ticket_and_counts_an_email_deflection(client, seeded_app,
                                                                                         inbox):
    auth = AuthActions(client)
    auth.login(Role.CUSTOMER)
    ticket_id = create_ticket_in_portal(client)
    auth.logout()  # the link needs no sign-in
    send_outbox(seeded_app)
    link = solved_links(parts(inbox.wait_for(1)[0])[0])[0]
    prefetched = client.get(link, headers=EN)  # a mail scanner opening the link changes nothing
    assert prefetched.status_code == 200 and "Yes, it solved my problem" in prefetched.text
    assert load_ticket(seeded_app, ticket_id).status == TicketStatus.NEW and email_deflections(seeded_app) == []
    page, closed = follow(client, link)
    assert closed.status_code == 200 and f"Ticket #{ticket_id} is closed" in closed.text
    ticket = load_ticket(seeded_app, ticket_id)
    assert ticket.status == TicketStatus.CLOSED and ticket.closed_at is not None and ticket.resolved_at is None
    [event] = [e for e in ticket.events if e.kind == "self_solved"]
    assert event.public and event.actor_id == ticket.requester_id and event.data["channel"] == "email"
    [deflection] = email_deflections(seeded_app)
    assert deflection.ticket_id == ticket_id and deflection.article_slug == event.data["article"]

    again = client.post(link, data={"csrf_token": csrf_token_from(page.text)}, headers=EN)  # used twice
    assert again.status_code == 409 and f"Ticket #{ticket_id} is closed" in again.text
    assert len(email_deflections(seeded_app)) == 1
    with seeded_app.app_context():
        report = build_report(get_session())
    assert report.email_funnel["solved"] == 1 and report.funnel["solved"] == 0  # apart from the portal's
    assert report.email_deflection_rate == 1.0

    auth.login(Role.CUSTOMER)
    activity = client.get(f"/tickets/{ticket_id}", headers=EN).text
    assert "closed it as solved by self-service" in activity
    auth.logout()
    auth.login(Role.AGENT_L1)
    reports = client.get("/reports/", headers=EN).text
    assert 'id="email-funnel"' in reports and "deflection by e-mail" in reports
    api = client.get("/api/v1/reports", headers=EN).get_json()
    assert api["email_funnel"]["solved"] == 1 and api["funnel"]["solved"] == 0


def test_two_confirmations_at_once_close_the_ticket_once_and_count_one_deflection(client, seeded_app, inbox,
                                                                                  monkeypatch):
    AuthActions(client).login(Role.CUSTOMER)
    ticket_id = create_ticket_in_portal(client)
    send_outbox(seeded_app)
    link = solved_links(parts(inbox.wait_for(1)[0])[0])[0]
    page = client.get(link, headers=EN)
    close = ticket_service.close_as_self_solved

    def the_other_click_first(session, ticket, *args, **kwargs):
        """The other request closes and commits between this one's read of the ticket and its write."""
        with seeded_app.app_context():
            other = get_session()
            close(other, other.get(Ticket, ticket.id), *args, **kwargs)
            other.commit()
        return close(session, ticket, *args, **kwargs)

    monkeypatch.setattr(ticket_service, "close_as_self_solved", the_other_click_first)
    late = client.post(link, data={"csrf_token": csrf_token_from(page.text)}, headers=EN)
    assert late.status_code == 409 and f"Ticket #{ticket_id} is closed" in late.text
    assert email_deflections(seeded_app) == []  # nothing counted by the refused one (the other only closed it here)
    ticket = load_ticket(seeded_app, ticket_id)
    assert ticket.status == TicketStatus.CLOSED and [e.kind for e in ticket.events].count("self_solved") == 1


def test_the_acknowledgement_leaves_out_the_articles_the_portal_showed_before(client, seeded_app, inbox):
    AuthActions(client).login(Role.CUSTOMER)
    checked = client.post("/help", data={**VPN_ES, "action": "check",
                                         "csrf_token": csrf_token_from(client.get("/help", headers=ES).text)},
                          headers=ES)
    shown = re.findall(r'name="shown" value="([^"]+)"', checked.text)
    assert shown
    response = client.post("/help", data={**VPN_ES, "action": "submit", "shown": shown,
                                          "csrf_token": csrf_token_from(checked.text)}, headers=ES)
    assert response.status_code == 302
    send_outbox(seeded_app)
    text, _html = parts(inbox.wait_for(1)[0])
    offered = re.findall(rf"{re.escape(PORTAL)}/articles/(\S+)", text)
    assert not set(offered) & set(shown)


def test_the_link_after_an_agent_resolved_the_ticket_says_so_and_counts_nothing(client, seeded_app, inbox):
    AuthActions(client).login(Role.CUSTOMER)
    ticket_id = create_ticket_in_portal(client)
    send_outbox(seeded_app)
    link = solved_links(parts(inbox.wait_for(1)[0])[0])[0]
    page = client.get(link, headers=EN)
    with seeded_app.app_context():
        session = get_session()
        ticket = session.get(Ticket, ticket_id)
        ticket_service.resolve(session, ticket, user_by_role(session, Role.AGENT_L1), "Reinstalled.", ticket.version)
        session.commit()
    late = client.post(link, data={"csrf_token": csrf_token_from(page.text)}, headers=EN)
    assert late.status_code == 409 and "is already resolved: nothing was changed" in late.text
    assert client.get(link, headers=EN).status_code == 200
    assert load_ticket(seeded_app, ticket_id).status == TicketStatus.RESOLVED and email_deflections(seeded_app) == []


def test_a_tampered_link_is_refused_with_400_and_an_expired_one_with_410(client, seeded_app, monkeypatch):
    AuthActions(client).login(Role.CUSTOMER)
    ticket_id = create_ticket_in_portal(client)
    with seeded_app.app_context():
        ticket = get_session().get(Ticket, ticket_id)
        link = solved_link(ticket, "vpn-authentication-failed").removeprefix(seeded_app.config["MESA_PORTAL_URL"])
        old = time.time() - (seeded_app.config["MESA_MAIL_LINK_DAYS"] + 1) * 86400
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(old))
        expired = solved_link(ticket, "vpn-authentication-failed").removeprefix(seeded_app.config["MESA_PORTAL_URL"])
        expired_rating = rating_link(ticket, 5).removeprefix(seeded_app.config["MESA_PORTAL_URL"])
        monkeypatch.undo()
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    for path in (tampered, "/mail/solved/not-a-token", link.replace("/mail/solved/", "/mail/rate/")):
        response = client.get(path, headers=EN)
        assert response.status_code == 400 and "This link is not valid" in response.text, path
    assert client.post(tampered, headers=EN).status_code == 400  # no CSRF token: refused before anything
    for path in (expired, expired_rating):
        response = client.get(path, headers=EN)
        assert response.status_code == 410 and "This link has expired" in response.text
    assert load_ticket(seeded_app, ticket_id).status == TicketStatus.NEW


# ----- the survey --------------------------------------------------------------------------------------------


def test_the_rating_link_of_the_resolved_mail_records_the_survey_once(client, seeded_app, inbox):
    AuthActions(client).login(Role.CUSTOMER)
    ticket_id = create_ticket_in_portal(client, headers=EN)
    with seeded_app.app_context():
        session = get_session()
        ticket = session.get(Ticket, ticket_id)
        ticket_service.resolve(session, ticket, user_by_role(session, Role.AGENT_L2),
                               "Delete the **VPN profile** and follow [the guide](https://vpn.example/guide).",
                               ticket.version)
        from portal.notifications import notify_requester
        notify_requester(session, ticket, ticket.events[-1:])
        session.commit()
    AuthActions(client).logout()
    send_outbox(seeded_app)
    resolved = inbox.wait_for(2)[1]
    assert subject(resolved) == f"[#{ticket_id}] Resolved: {VPN_ES['subject']}"
    text, html = parts(resolved)
    assert "the guide (https://vpn.example/guide)" in text and "[the guide]" not in text and "**" not in text
    assert '<a href="https://vpn.example/guide"' in html and "<strong>VPN profile</strong>" in html
    four = re.search(rf"{re.escape(PORTAL)}(/mail/rate/\S+rating=4)", text).group(1)
    page = client.get(four, headers=EN)
    assert page.status_code == 200 and re.search(r'value="4" required checked', page.text)
    assert client.get(four, headers=EN).status_code == 200 and load_ticket(seeded_app, ticket_id).survey is None
    rated = client.post(four.split("?")[0], data={"rating": "4", "comment": "Quick, thanks",
                                                  "csrf_token": csrf_token_from(page.text)}, headers=EN)
    assert rated.status_code == 200 and "You rated ticket" in rated.text
    survey = load_ticket(seeded_app, ticket_id).survey
    assert survey.rating == 4 and survey.comment == "Quick, thanks"
    again = client.post(four.split("?")[0], data={"rating": "1", "csrf_token": csrf_token_from(page.text)},
                        headers=EN)
    assert again.status_code == 409 and "Already rated" in again.text
    assert "Already rated" in client.get(four, headers=EN).text
    with seeded_app.app_context():
        assert [r.rating for r in get_session().scalars(select(SurveyResponse))] == [4]


def test_a_rating_link_before_resolution_or_with_a_bad_rating_changes_nothing(client, seeded_app):
    AuthActions(client).login(Role.CUSTOMER)
    ticket_id = create_ticket_in_portal(client, headers=EN)
    with seeded_app.app_context():
        link = rating_link(get_session().get(Ticket, ticket_id), 5).removeprefix(PORTAL)
    page = client.get(link, headers=EN)
    assert page.status_code == 200 and "once it is resolved" in page.text
    refused = client.post(link.split("?")[0], data={"rating": "5", "csrf_token": csrf_token_from(page.text)},
                          headers=EN)
    assert refused.status_code == 400 and "once it is resolved" in refused.text
    with seeded_app.app_context():
        session = get_session()
        ticket = session.get(Ticket, ticket_id)
        ticket_service.resolve(session, ticket, user_by_role(session, Role.AGENT_L1), "Done.", ticket.version)
        session.commit()
    page = client.get(link, headers=EN)
    bad = client.post(link.split("?")[0], data={"rating": "9", "csrf_token": csrf_token_from(page.text)},
                      headers=EN)
    assert bad.status_code == 400 and "from 1 to 5" in bad.text and load_ticket(seeded_app, ticket_id).survey is None


# ----- every mail as text and HTML -----------------------------------------------------------------------------


def test_an_agent_reply_in_markdown_is_sanitised_html_and_readable_text(client, seeded_app, inbox):
    AuthActions(client).login(Role.CUSTOMER)
    ticket_id = create_ticket_in_portal(client, headers=EN)
    with seeded_app.app_context():
        session = get_session()
        ticket = session.get(Ticket, ticket_id)
        before = len(ticket.events)
        ticket_service.add_reply(session, ticket, user_by_role(session, Role.AGENT_L1),
                                 "Try this:\n\n1. Open [the VPN article](/articles/vpn-authentication-failed)\n"
                                 "2. Sign in again\n\n<script>alert(1)</script>", True, ticket.version)
        from portal.notifications import notify_requester
        notify_requester(session, ticket, ticket.events[before:])
        session.commit()
    send_outbox(seeded_app)
    reply = inbox.wait_for(2)[1]
    text, html = parts(reply)
    assert f"the VPN article ({PORTAL}/articles/vpn-authentication-failed)" in text and "](" not in text
    assert "1. Open" in text and "2. Sign in again" in text
    assert f'href="{PORTAL}/articles/vpn-authentication-failed"' in html and "<script" not in html
    assert subject(reply).startswith(f"[#{ticket_id}] New reply")


def test_a_plain_text_message_is_still_sent_as_plain_text(seeded_app, inbox):
    with seeded_app.app_context():
        get_session().add(OutboxMessage(recipient="someone@example.com", subject="Reset your password",
                                        body="Open the link."))
        get_session().commit()
    send_outbox(seeded_app)
    [message] = inbox.wait_for(1)
    assert message.get_content_type() == "text/plain" and message.get_content().strip() == "Open the link."


# ----- the whole loop ----------------------------------------------------------------------------------------------


def test_a_mail_to_the_help_desk_is_acknowledged_and_its_link_closes_the_ticket(mailbox, seeded_app, inbox):
    mailbox.deliver(mail("Nora Nueva <nora.nueva@client.example>", "No puedo conectarme a la VPN desde casa",
                         "Desde esta mañana la VPN dice que la autenticación falla.", Content_Language="es"))
    assert "1 ticket" in fetch(seeded_app)
    send_outbox(seeded_app)
    [acknowledgement] = inbox.wait_for(1)
    assert acknowledgement["To"] == "nora.nueva@client.example"
    text, _html = parts(acknowledgement)
    assert "Hemos registrado tu ticket" in text
    client = seeded_app.test_client()  # Nora has no password: she never signs in
    page, closed = follow(client, solved_links(text)[0], headers=ES)
    assert closed.status_code == 200 and "está cerrado" in closed.text
    with seeded_app.app_context():
        ticket = get_session().scalar(select(Ticket).where(Ticket.subject == "No puedo conectarme a la VPN desde casa"))
        assert ticket.status == TicketStatus.CLOSED and ticket.events[0].data["mail"]
        assert any(event.kind == "self_solved" for event in ticket.events)
    assert len(email_deflections(seeded_app)) == 1
