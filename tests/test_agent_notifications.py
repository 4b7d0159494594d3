"""Agents are told by e-mail: a ticket assigned or escalated to them, the customer replied (portal or mail),
a ticket reopened, an SLA target about to be missed (once); never of what they did themselves, and never of
a kind they turned off on their account page."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.db import get_session
from portal.desk_sweep import sweep
from portal.domain import agent_mail_preferences, sla_warnings
from portal.domain import tickets as ticket_service
from portal.domain import users as user_service
from portal.domain.models import OutboxMessage, Role, SlaWarning, Team, Ticket, TicketStatus, User, utcnow
from portal.mail_fetch import FetchReport, intake_for, take_one
from portal.notifications import notify_requester
from tests.conftest import PASSWORD, ROLE_EMAILS, AuthActions, csrf_token_from, user_by_role

EN = {"Accept-Language": "en"}
CHECKED = re.compile(r'<input [^>]*type="checkbox"[^>]*checked|<input [^>]*checked[^>]*type="checkbox"')
L1, L2, ADMIN = ROLE_EMAILS[Role.AGENT_L1], ROLE_EMAILS[Role.AGENT_L2], ROLE_EMAILS[Role.ADMIN]
CUSTOMER = ROLE_EMAILS[Role.CUSTOMER]
HELP = {"subject": "Printer queue stuck", "description": "My print job is stuck in the queue.",
        "category": "printers", "type": "incident", "impact": "3", "urgency": "2", "action": "submit"}


def mails_to(app, email, ticket_id=None):
    """The e-mails written to one address (about one ticket), oldest first."""
    with app.app_context():
        query = select(OutboxMessage).where(OutboxMessage.recipient == email)
        if ticket_id is not None:
            query = query.where(OutboxMessage.ticket_id == ticket_id)
        return list(get_session().scalars(query.order_by(OutboxMessage.id)))


def change(app, ticket_id, apply):
    """Apply a change to a ticket as a view does: the change, the notifications, one commit."""
    with app.app_context():
        session = get_session()
        ticket = session.get(Ticket, ticket_id)
        logged_before = len(ticket.events)
        apply(session, ticket)
        notify_requester(session, ticket, ticket.events[logged_before:])
        session.commit()


def new_ticket(app, now=None, **kwargs):
    """A ticket of the seeded customer, created and notified as the portal does; its id."""
    with app.app_context():
        session = get_session()
        ticket = ticket_service.create_ticket(session, user_by_role(session, Role.CUSTOMER), "VPN drops",
                                              "The VPN drops every ten minutes.", kwargs.pop("category", "vpn"),
                                              3, 3, app.extensions["mesa_sla"], now=now, **kwargs)
        notify_requester(session, ticket, list(ticket.events))
        session.commit()
        return ticket.id


def set_preferences(app, email, enabled, language=""):
    """Save an agent's notification choices."""
    with app.app_context():
        session = get_session()
        agent = session.scalar(select(User).where(User.email == email))
        agent_mail_preferences.save(session, agent, set(enabled), language, ["es", "en"])
        session.commit()


def user_id(app, email):
    """The id of the account with this address."""
    with app.app_context():
        return get_session().scalar(select(User.id).where(User.email == email))


def post_form(client, url, data, page_url):
    """Open ``page_url`` and post a form to ``url`` with its CSRF token."""
    token = csrf_token_from(client.get(page_url, headers=EN).text)
    return client.post(url, data={**data, "csrf_token": token}, headers=EN)


def test_an_automatic_assignment_mails_the_agent_in_the_first_ui_language_with_number_and_link(
        client, seeded_app):
    AuthActions(client).login(Role.CUSTOMER)
    page = client.get("/help", headers=EN)
    created = client.post("/help", headers=EN, data={**HELP, "csrf_token": csrf_token_from(page.text)})
    ticket_id = int(created.headers["Location"].rsplit("/", 1)[1])
    [mail] = mails_to(seeded_app, L1, ticket_id)
    assert mail.subject == f"[#{ticket_id}] Asignado a ti: Printer queue stuck"
    assert f"El ticket #{ticket_id} se te ha asignado automáticamente." in mail.body
    assert "My print job is stuck in the queue." in mail.body
    assert f"http://127.0.0.1:5000/tickets/{ticket_id}" in mail.body
    assert "http://127.0.0.1:5000/account" in mail.body
    assert mail.message_id.startswith(f"<mesa.{ticket_id}.")  # a reply by mail finds the ticket
    assert mails_to(seeded_app, L2, ticket_id) == [] and mails_to(seeded_app, ADMIN, ticket_id) == []


def test_an_agent_gets_the_mails_in_the_language_they_chose(seeded_app):
    set_preferences(seeded_app, L1, agent_mail_preferences.KINDS, language="en")
    ticket_id = new_ticket(seeded_app)
    [mail] = mails_to(seeded_app, L1, ticket_id)
    assert mail.subject == f"[#{ticket_id}] Assigned to you: VPN drops"
    assert f"Ticket #{ticket_id} was assigned to you automatically." in mail.body
    assert "Requester: Customer <customer@example.com>" in mail.body
    # Sent as text + HTML: the same words in the agent's language, the addresses clickable, the text escaped.
    assert '<html lang="en">' in mail.html_body and "Requester: Customer &lt;customer@example.com&gt;" in mail.html_body
    assert f'<a href="http://127.0.0.1:5000/tickets/{ticket_id}">' in mail.html_body


def test_a_manual_assignment_mails_the_new_assignee_but_not_an_agent_who_takes_it_themselves(
        client, seeded_app):
    set_preferences(seeded_app, L2, agent_mail_preferences.KINDS, language="en")
    set_preferences(seeded_app, L1, agent_mail_preferences.KINDS, language="en")
    ticket_id = new_ticket(seeded_app)
    before = len(mails_to(seeded_app, L1, ticket_id))
    AuthActions(client).login(Role.AGENT_L1)
    with seeded_app.app_context():
        version = get_session().get(Ticket, ticket_id).version
    assigned = post_form(client, f"/tickets/{ticket_id}/assign",
                         {"assignee": str(user_id(seeded_app, L2)), "version": str(version)}, f"/tickets/{ticket_id}")
    assert assigned.status_code == 302
    [mail] = mails_to(seeded_app, L2, ticket_id)
    assert mail.subject == f"[#{ticket_id}] Assigned to you: VPN drops"
    assert f"Agent L1 assigned ticket #{ticket_id} to you." in mail.body
    # L2 gives it back, then takes it again themselves: only L1 is told (of the first), L2 of nothing new.
    AuthActions(client).logout()
    AuthActions(client).login(Role.AGENT_L2)
    for assignee in (L1, L2):
        with seeded_app.app_context():
            version = get_session().get(Ticket, ticket_id).version
        assert post_form(client, f"/tickets/{ticket_id}/assign",
                         {"assignee": str(user_id(seeded_app, assignee)), "version": str(version)},
                         f"/tickets/{ticket_id}").status_code == 302
    assert len(mails_to(seeded_app, L2, ticket_id)) == 1
    told = mails_to(seeded_app, L1, ticket_id)[before:]
    assert [m.subject for m in told] == [f"[#{ticket_id}] Assigned to you: VPN drops"]
    assert "Agent L2 assigned" in told[0].body


def test_an_escalation_mails_the_l2_assignee_with_the_internal_reason(seeded_app):
    set_preferences(seeded_app, L2, agent_mail_preferences.KINDS, language="en")
    ticket_id = new_ticket(seeded_app)
    with seeded_app.app_context():
        l1 = user_by_role(get_session(), Role.AGENT_L1)
        l1_id = l1.id
    change(seeded_app, ticket_id, lambda session, ticket: ticket_service.escalate(
        session, ticket, session.get(User, l1_id), "Needs the firewall team (internal)", ticket.version))
    [mail] = mails_to(seeded_app, L2, ticket_id)
    assert mail.subject == f"[#{ticket_id}] Escalated: VPN drops"
    assert f"Agent L1 escalated ticket #{ticket_id} to level L2." in mail.body
    assert "Reason: Needs the firewall team (internal)" in mail.body and "It is assigned to you." in mail.body
    assert [m.subject for m in mails_to(seeded_app, L1, ticket_id)] == [f"[#{ticket_id}] Asignado a ti: VPN drops"]


def test_the_sweeps_automatic_escalation_mails_the_new_assignee(seeded_app):
    set_preferences(seeded_app, L2, agent_mail_preferences.KINDS, language="en")
    ticket_id = new_ticket(seeded_app)  # impact 3 x urgency 3: priority 5, resolution in 120 hours
    with seeded_app.app_context():
        session = get_session()
        ticket = session.get(Ticket, ticket_id)
        ticket.created_at = utcnow() - timedelta(hours=100)  # past 75 % of its resolution time
        ticket.resolution_due_at = ticket.created_at + timedelta(hours=120)
        session.commit()
        report = sweep(session, seeded_app)
    assert report.escalated == [ticket_id]
    escalated = [m for m in mails_to(seeded_app, L2, ticket_id) if "Escalated" in m.subject]
    assert len(escalated) == 1
    assert f"Ticket #{ticket_id} was escalated to level L2 automatically: it used 83% of its resolution time." \
        in escalated[0].body


def test_without_an_assignee_the_agents_of_the_tickets_team_at_its_level_are_told(seeded_app):
    with seeded_app.app_context():
        session = get_session()
        team = Team(name="Network", categories=["vpn"])
        session.add(team)
        session.flush()
        l1 = user_by_role(session, Role.AGENT_L1)
        user_service.create_user(session, "other.l1@example.com", "Other L1", PASSWORD, Role.AGENT_L1)
        networker = user_service.create_user(session, "net.l1@example.com", "Net L1", PASSWORD, Role.AGENT_L1)
        networker.team = team
        session.commit()
        l1_id = l1.id
    ticket_id = new_ticket(seeded_app)
    change(seeded_app, ticket_id, lambda session, ticket: ticket_service.assign(
        session, ticket, session.get(User, l1_id), "", ticket.version))  # L1 leaves it unassigned
    with seeded_app.app_context():
        customer_id = user_by_role(get_session(), Role.CUSTOMER).id
    change(seeded_app, ticket_id, lambda session, ticket: ticket_service.add_reply(
        session, ticket, session.get(User, customer_id), "Still dropping.", True, ticket.version))
    told = [m for m in mails_to(seeded_app, "net.l1@example.com", ticket_id) if "Still dropping." in m.body]
    assert len(told) == 1 and "El cliente ha respondido" in told[0].subject
    assert not [m for m in mails_to(seeded_app, "other.l1@example.com", ticket_id) if "Still dropping." in m.body]
    assert not [m for m in mails_to(seeded_app, L1, ticket_id) if "Still dropping." in m.body]


def test_a_customer_reply_in_the_portal_mails_the_assignee_with_the_text(client, seeded_app):
    set_preferences(seeded_app, L1, agent_mail_preferences.KINDS, language="en")
    ticket_id = new_ticket(seeded_app)
    AuthActions(client).login(Role.CUSTOMER)
    with seeded_app.app_context():
        version = get_session().get(Ticket, ticket_id).version
    replied = post_form(client, f"/tickets/{ticket_id}/reply", {"body": "It happens on Wi-Fi only.",
                                                                 "version": str(version)}, f"/tickets/{ticket_id}")
    assert replied.status_code == 302
    told = mails_to(seeded_app, L1, ticket_id)[-1]
    assert told.subject == f"[#{ticket_id}] The customer replied: VPN drops"
    assert "Customer replied on ticket" in told.body and "It happens on Wi-Fi only." in told.body


def test_a_customer_reply_by_mail_mails_the_assignee(seeded_app):
    set_preferences(seeded_app, L1, agent_mail_preferences.KINDS, language="en")
    ticket_id = new_ticket(seeded_app)
    raw = (f"From: Customer <{CUSTOMER}>\r\nTo: mesa@localhost\r\nSubject: Re: [#{ticket_id}] VPN drops\r\n"
           "Message-ID: <reply-1@client.example>\r\n\r\nIt drops at 10:00 sharp.\r\n").encode()
    with seeded_app.app_context():
        assert take_one(get_session(), seeded_app, intake_for(seeded_app), "INBOX", 1, 1, raw, FetchReport())
    told = mails_to(seeded_app, L1, ticket_id)[-1]
    assert told.subject == f"[#{ticket_id}] The customer replied: VPN drops"
    assert "It drops at 10:00 sharp." in told.body


def test_a_reopened_ticket_is_one_mail_with_the_reply_or_the_reply_alone_when_reopenings_are_off(seeded_app):
    set_preferences(seeded_app, L1, agent_mail_preferences.KINDS, language="en")
    with seeded_app.app_context():
        ids = {role: user_by_role(get_session(), role).id for role in (Role.AGENT_L2, Role.CUSTOMER)}
    for reopened_on in (True, False):
        if not reopened_on:
            set_preferences(seeded_app, L1, set(agent_mail_preferences.KINDS) - {"reopened"}, language="en")
        ticket_id = new_ticket(seeded_app)
        change(seeded_app, ticket_id, lambda session, ticket: ticket_service.resolve(
            session, ticket, session.get(User, ids[Role.AGENT_L2]), "Reinstalled the client.", ticket.version))
        before = len(mails_to(seeded_app, L1, ticket_id))
        change(seeded_app, ticket_id, lambda session, ticket: ticket_service.add_reply(
            session, ticket, session.get(User, ids[Role.CUSTOMER]), "It is back.", True, ticket.version))
        told = mails_to(seeded_app, L1, ticket_id)[before:]
        assert len(told) == 1
        if reopened_on:
            assert told[0].subject == f"[#{ticket_id}] Reopened: VPN drops"
            assert f"Customer reopened ticket #{ticket_id}." in told[0].body and "It is back." in told[0].body
        else:
            assert told[0].subject == f"[#{ticket_id}] The customer replied: VPN drops"


def test_an_agent_reopening_a_ticket_tells_the_assignee_not_themselves(seeded_app):
    set_preferences(seeded_app, L1, agent_mail_preferences.KINDS, language="en")
    ticket_id = new_ticket(seeded_app)
    with seeded_app.app_context():
        l1_id, l2_id = (user_by_role(get_session(), role).id for role in (Role.AGENT_L1, Role.AGENT_L2))
    change(seeded_app, ticket_id, lambda session, ticket: ticket_service.resolve(
        session, ticket, session.get(User, l1_id), "Done.", ticket.version))
    change(seeded_app, ticket_id, lambda session, ticket: ticket_service.change_status(
        session, ticket, session.get(User, l1_id), "open", ticket.version))
    assert not [m for m in mails_to(seeded_app, L1, ticket_id) if "Reopened" in m.subject]  # they did it
    change(seeded_app, ticket_id, lambda session, ticket: ticket_service.resolve(
        session, ticket, session.get(User, l1_id), "Done again.", ticket.version))
    change(seeded_app, ticket_id, lambda session, ticket: ticket_service.change_status(
        session, ticket, session.get(User, l2_id), "open", ticket.version))
    [reopened] = [m for m in mails_to(seeded_app, L1, ticket_id) if "Reopened" in m.subject]
    assert f"Agent L2 reopened ticket #{ticket_id}." in reopened.body


def test_a_kind_turned_off_is_not_sent_and_the_others_still_are(seeded_app):
    set_preferences(seeded_app, L1, set(agent_mail_preferences.KINDS) - {"assigned"}, language="en")
    ticket_id = new_ticket(seeded_app)
    assert mails_to(seeded_app, L1, ticket_id) == []
    with seeded_app.app_context():
        customer_id = user_by_role(get_session(), Role.CUSTOMER).id
    change(seeded_app, ticket_id, lambda session, ticket: ticket_service.add_reply(
        session, ticket, session.get(User, customer_id), "Any news?", True, ticket.version))
    assert [m.subject for m in mails_to(seeded_app, L1, ticket_id)] == [
        f"[#{ticket_id}] The customer replied: VPN drops"]


def test_an_inactive_agent_is_not_mailed(seeded_app):
    with seeded_app.app_context():
        session = get_session()
        ticket_id = new_ticket(seeded_app)
        session.scalar(select(User).where(User.email == L1)).active = False
        session.commit()
        customer_id = user_by_role(session, Role.CUSTOMER).id
    before = len(mails_to(seeded_app, L1, ticket_id))
    change(seeded_app, ticket_id, lambda session, ticket: ticket_service.add_reply(
        session, ticket, session.get(User, customer_id), "Hello?", True, ticket.version))
    assert len(mails_to(seeded_app, L1, ticket_id)) == before


def age(app, ticket_id, share, target):
    """Move a ticket's creation back so that ``share`` of its time to ``target`` has passed."""
    with app.app_context():
        session = get_session()
        ticket = session.get(Ticket, ticket_id)
        response, resolution = ticket.response_due_at - ticket.created_at, ticket.resolution_due_at - ticket.created_at
        span = response if target == "response" else resolution
        ticket.created_at = utcnow() - span * share
        ticket.response_due_at, ticket.resolution_due_at = ticket.created_at + response, ticket.created_at + resolution
        session.commit()


def run_sweep(app):
    """One desk sweep, as the background job or cron runs it (without the lease)."""
    with app.app_context():
        return sweep(get_session(), app)


def test_an_sla_warning_is_sent_once_at_80_percent_of_the_first_response_time(seeded_app):
    set_preferences(seeded_app, L1, agent_mail_preferences.KINDS, language="en")
    ticket_id = new_ticket(seeded_app, ticket_type="incident")
    age(seeded_app, ticket_id, 0.7, "response")
    assert run_sweep(seeded_app).warned == []
    age(seeded_app, ticket_id, 0.85, "response")
    assert run_sweep(seeded_app).warned == [(ticket_id, "response")]
    [warning] = [m for m in mails_to(seeded_app, L1, ticket_id) if "due soon" in m.subject]
    assert warning.subject == f"[#{ticket_id}] First response due soon: VPN drops"
    assert "has used 85% of its time to a first response" in warning.body
    assert run_sweep(seeded_app).warned == []  # never twice
    assert len([m for m in mails_to(seeded_app, L1, ticket_id) if "due soon" in m.subject]) == 1
    with seeded_app.app_context():
        assert get_session().scalar(select(SlaWarning.target).where(SlaWarning.ticket_id == ticket_id)) == "response"


def test_the_resolution_warning_is_its_own_and_none_is_sent_once_the_target_is_missed(seeded_app):
    set_preferences(seeded_app, L1, agent_mail_preferences.KINDS, language="en")
    late, due = new_ticket(seeded_app), new_ticket(seeded_app)
    age(seeded_app, late, 1.1, "resolution")  # breached already: the queue shows it, no late warning
    age(seeded_app, due, 0.9, "resolution")  # past its first-response time too: that one is missed
    with seeded_app.app_context():
        session = get_session()
        session.get(Ticket, due).first_response_at = utcnow()
        for ticket_id in (late, due):  # at L2 already, so the sweep does not escalate them meanwhile
            session.get(Ticket, ticket_id).level = 2
        session.commit()
    assert run_sweep(seeded_app).warned == [(due, "resolution")]
    [warning] = [m for m in mails_to(seeded_app, L1, due) if "due soon" in m.subject]
    assert warning.subject == f"[#{due}] Resolution due soon: VPN drops"
    assert not [m for m in mails_to(seeded_app, L1, late) if "due soon" in m.subject]


def test_a_warning_recorded_by_another_process_is_not_recorded_again(seeded_app_with):
    first, second = seeded_app_with(), seeded_app_with()  # two processes over one database
    ticket_id = new_ticket(first)
    now = utcnow()
    with first.app_context():
        assert sla_warnings.record(get_session(), ticket_id, "resolution", now)
        get_session().commit()
    with second.app_context():
        assert not sla_warnings.record(get_session(), ticket_id, "resolution", now)
        assert sla_warnings.record(get_session(), ticket_id, "response", now)
        get_session().commit()


def test_sla_warnings_turned_off_are_recorded_but_not_sent(seeded_app):
    set_preferences(seeded_app, L1, set(agent_mail_preferences.KINDS) - {"sla_warning", "assigned"})
    ticket_id = new_ticket(seeded_app)
    age(seeded_app, ticket_id, 0.85, "response")
    assert run_sweep(seeded_app).warned == [(ticket_id, "response")]
    assert mails_to(seeded_app, L1, ticket_id) == []


def test_the_account_page_shows_the_choices_to_agents_only_and_saves_them(client, seeded_app):
    auth = AuthActions(client)
    auth.login(Role.CUSTOMER)
    assert "E-mail notifications" not in client.get("/account", headers=EN).text
    refused = post_form(client, "/account/notifications", {"assigned": "y"}, "/account")
    assert refused.status_code == 403
    auth.logout()
    auth.login(Role.AGENT_L1)
    page = client.get("/account", headers=EN).text
    assert "E-mail notifications" in page
    assert page.count('type="checkbox"') == 5 and len(CHECKED.findall(page)) == 5  # all on by default
    saved = post_form(client, "/account/notifications", {"escalated": "y", "reopened": "y", "language": "en"},
                      "/account")
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/account#notifications")
    with seeded_app.app_context():
        session = get_session()
        agent = session.scalar(select(User).where(User.email == L1))
        assert [kind for kind in agent_mail_preferences.KINDS if agent_mail_preferences.wants(session, agent, kind)] \
            == ["escalated", "reopened"]
        assert agent_mail_preferences.preferences_of(session, agent).language == "en"
    page = client.get("/account", headers=EN).text
    assert len(CHECKED.findall(page)) == 2 and "Your notification choices are saved." in page


def test_the_choices_form_refuses_a_missing_csrf_token_and_an_unknown_language(client, seeded_app):
    AuthActions(client).login(Role.AGENT_L2)
    assert client.post("/account/notifications", data={"assigned": "y"}, headers=EN).status_code == 400
    bad = post_form(client, "/account/notifications", {"assigned": "y", "language": "xx"}, "/account")
    assert bad.status_code == 400 and "Not a valid choice" in bad.text
    with seeded_app.app_context():
        session = get_session()
        agent = session.scalar(select(User).where(User.email == L2))
        assert session.get(agent_mail_preferences.AgentMailPreferences, agent.id) is None  # nothing saved


def test_saving_choices_is_refused_for_customers_and_unknown_kinds(db):
    customer = user_by_role(db, Role.CUSTOMER)
    with pytest.raises(agent_mail_preferences.Invalid):
        agent_mail_preferences.save(db, customer, {"assigned"}, "", ["es", "en"])
    with pytest.raises(agent_mail_preferences.Invalid):
        agent_mail_preferences.save(db, user_by_role(db, Role.AGENT_L1), {"everything"}, "", ["es", "en"])


def test_two_sweeps_at_the_same_moment_warn_once(seeded_app_with):
    import threading

    from portal.sla_warnings import warn_due

    first, second = seeded_app_with(), seeded_app_with()  # two processes (or hosts) over one database
    set_preferences(first, L1, agent_mail_preferences.KINDS, language="en")
    ticket_id = new_ticket(first)
    age(first, ticket_id, 0.9, "response")
    start, results = threading.Barrier(2), []

    def sweep_in(app):
        with app.app_context():
            start.wait(timeout=10)
            results.append(warn_due(get_session(), app, utcnow()))

    threads = [threading.Thread(target=sweep_in, args=(app,)) for app in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results, key=len) == [[], [(ticket_id, "response")]]
    assert len([m for m in mails_to(first, L1, ticket_id) if "due soon" in m.subject]) == 1
