"""Admins manage users in the admin pages: the list (search, role filter, pages), new agents and admins with a
mailed password link, role and team changes, deactivation (sessions end) and reactivation, and the refusals
that keep an admin: never one's own demotion or deactivation, never the last active admin."""

import re

import pytest
from sqlalchemy import func, select

from portal.db import get_session
from portal.domain import user_admin
from portal.domain.errors import Invalid
from portal.domain.models import OutboxMessage, Role, Team, User
from tests.conftest import PASSWORD, ROLE_EMAILS, AuthActions, csrf_token_from, user_by_role

EN = {"Accept-Language": "en"}
ADMIN = ROLE_EMAILS[Role.ADMIN]


def post_form(client, url, data, page_url=None):
    """Open the page (``page_url`` or ``url``) and post its form with the CSRF token."""
    token = csrf_token_from(client.get(page_url or url, headers=EN).text)
    return client.post(url, data={**data, "csrf_token": token}, headers=EN)


def admin_client(app):
    client = app.test_client()
    AuthActions(client).login(Role.ADMIN)
    return client


def user_id(app, email):
    with app.app_context():
        return get_session().scalar(select(User.id).where(User.email == email))


def add_team(app, name="Network"):
    with app.app_context():
        team = Team(name=name, categories=["vpn"])
        get_session().add(team)
        get_session().commit()
        return team.id


# ----- domain -----------------------------------------------------------------------------------------------


def test_the_list_finds_by_name_or_email_filters_by_role_and_pages(db):
    for number in range(30):
        db.add(User(email=f"agent{number:02d}@example.com", name=f"Agent {number:02d}", role=Role.AGENT_L1,
                    password_hash="!"))
    db.flush()
    assert user_admin.list_users(db, "AGENT 0", "").total == 10  # Agent 00-09, any case
    assert [u.email for u in user_admin.list_users(db, "agent07@", "").users] == ["agent07@example.com"]
    l1 = user_admin.list_users(db, "", "agent_l1", page=2, per_page=25)
    assert (l1.total, l1.pages, l1.page, len(l1.users)) == (31, 2, 2, 6)  # the seeded L1 agent too
    assert user_admin.list_users(db, "", "", page=99).page == user_admin.list_users(db).pages  # clamped
    assert user_admin.list_users(db, "100%_", "").total == 0  # wildcards are searched as text
    with pytest.raises(Invalid, match="Unknown role"):
        user_admin.list_users(db, "", "superuser")


def test_a_new_account_has_no_password_until_the_person_chooses_it(db):
    user = user_admin.create_account(db, "  Nuria@Example.com ", "Nuria  Nueva", "agent_l2")
    assert (user.email, user.name, user.role, user.has_password, user.email_verified) == \
        ("nuria@example.com", "Nuria Nueva", Role.AGENT_L2, False, True)


@pytest.mark.parametrize("email, name, role, message", [
    ("not-an-address", "N", "agent_l1", "is not an e-mail address"),
    ("n@example.com", "   ", "agent_l1", "Give the person's name"),
    ("n@example.com", "N", "superuser", "Unknown role 'superuser'"),
    (ADMIN.upper(), "N", "agent_l1", "exists already"),
])
def test_a_new_account_with_bad_input_is_refused_clearly(db, email, name, role, message):
    with pytest.raises(Invalid, match=message):
        user_admin.create_account(db, email, name, role)


def test_a_customer_cannot_be_put_in_a_team(db):
    team = Team(name="Desk", categories=[])
    db.add(team)
    with pytest.raises(Invalid, match="Customers do not belong to a team"):
        user_admin.create_account(db, "c@example.com", "C", "customer", team)
    with pytest.raises(Invalid, match="Customers do not belong to a team"):
        user_admin.change_role_and_team(db, user_by_role(db, Role.ADMIN), user_by_role(db, Role.AGENT_L1),
                                        "customer", team)


def test_an_admin_cannot_demote_or_deactivate_themselves(db):
    admin = user_by_role(db, Role.ADMIN)
    db.add(User(email="second@example.com", name="Second Admin", role=Role.ADMIN, password_hash="!"))
    db.flush()
    with pytest.raises(Invalid, match="your own admin rights"):
        user_admin.change_role_and_team(db, admin, admin, "agent_l2", None)
    with pytest.raises(Invalid, match="your own admin rights"):
        user_admin.deactivate(db, admin, admin)
    assert admin.role == Role.ADMIN and admin.active
    assert user_admin.change_role_and_team(db, admin, admin, "admin", None) is False  # no change is allowed


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(db):
    admin = user_by_role(db, Role.ADMIN)
    other = User(email="second@example.com", name="Second Admin", role=Role.ADMIN, password_hash="!")
    db.add(other)
    db.flush()
    user_admin.deactivate(db, other, admin)  # another admin remains: allowed
    with pytest.raises(Invalid, match="last active admin"):  # the inactive admin does not count
        user_admin.change_role_and_team(db, admin, other, "agent_l1", None)


def test_deactivating_ends_the_sessions_and_reactivating_lets_the_account_in_again(db):
    admin, agent = user_by_role(db, Role.ADMIN), user_by_role(db, Role.AGENT_L1)
    token = agent.session_token
    user_admin.deactivate(db, admin, agent)
    assert not agent.active and agent.session_token != token
    with pytest.raises(Invalid, match="already deactivated"):
        user_admin.deactivate(db, admin, agent)
    user_admin.reactivate(agent)
    assert agent.active
    with pytest.raises(Invalid, match="already active"):
        user_admin.reactivate(agent)


# ----- pages ------------------------------------------------------------------------------------------------


def test_the_users_page_lists_searches_and_links_the_teams(seeded_app):
    client = admin_client(seeded_app)
    page = client.get("/admin/users?q=agent+l2", headers=EN).text
    assert "Agent L2" in page and ROLE_EMAILS[Role.AGENT_L2] in page and ROLE_EMAILS[Role.CUSTOMER] not in page
    page = client.get("/admin/users?role=customer", headers=EN).text
    assert ROLE_EMAILS[Role.CUSTOMER] in page and ADMIN not in page
    assert 'href="/admin/teams"' in page
    assert 'href="/admin/users?role=agent_l1"' in client.get("/admin/teams", headers=EN).text
    assert client.get("/admin/users?role=nonsense&page=abc", headers=EN).status_code == 200  # ignored, not a 500


def test_creating_an_agent_mails_a_link_to_choose_the_password_which_signs_them_in(seeded_app):
    team = add_team(seeded_app)
    client = admin_client(seeded_app)
    response = post_form(client, "/admin/users", {"name": "Nuria Nueva", "email": "nuria@example.com",
                                                  "role": "agent_l1", "team": str(team)})
    assert response.status_code == 302
    with seeded_app.app_context():
        session = get_session()
        user = session.scalar(select(User).where(User.email == "nuria@example.com"))
        assert (user.role, user.team_id, user.has_password) == (Role.AGENT_L1, team, False)
        [mail] = session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "nuria@example.com"))
        assert "Admin made you an account" in mail.body and PASSWORD not in mail.body
    link = re.search(r"https?://[^/\s]+(/password/reset/\S+)", mail.body).group(1)
    newcomer = seeded_app.test_client()
    chosen = post_form(newcomer, link, {"password": "my own new password", "confirm": "my own new password"})
    assert chosen.status_code == 302
    assert newcomer.get("/desk/", headers=EN).status_code == 200  # signed in, as an agent


@pytest.mark.parametrize("data, message", [
    ({"name": "X", "email": ADMIN, "role": "agent_l1"}, "An account for admin@example.com exists already."),
    ({"name": "X", "email": "x@example.com", "role": "superuser"}, "Not a valid choice"),
    ({"name": "X", "email": "x@example.com", "role": "customer"}, "Not a valid choice"),  # agents and admins only
    ({"name": "X", "email": "x@", "role": "agent_l1"}, "is not an e-mail address"),
    ({"name": "X", "email": "x@example.com", "role": "agent_l1", "team": "999"}, "Not a valid choice"),
])
def test_a_bad_new_account_shows_the_form_again_with_the_reason(seeded_app, data, message):
    response = post_form(admin_client(seeded_app), "/admin/users", {"team": "", **data})
    assert response.status_code == 400 and message in response.text
    with seeded_app.app_context():
        assert get_session().scalar(select(func.count()).select_from(User).where(User.name == "X")) == 0


def test_an_admin_changes_an_agents_role_and_team(seeded_app):
    team = add_team(seeded_app)
    agent = user_id(seeded_app, ROLE_EMAILS[Role.AGENT_L1])
    client = admin_client(seeded_app)
    response = post_form(client, f"/admin/users/{agent}", {"role": "agent_l2", "team": str(team)})
    assert response.status_code == 302
    assert "Role and team of Agent L1 saved." in client.get(f"/admin/users/{agent}", headers=EN).text
    with seeded_app.app_context():
        user = get_session().get(User, agent)
        assert (user.role, user.team_id) == (Role.AGENT_L2, team)


def test_self_demotion_is_refused_with_a_clear_message(seeded_app):
    admin = user_id(seeded_app, ADMIN)
    client = admin_client(seeded_app)
    response = post_form(client, f"/admin/users/{admin}", {"role": "agent_l1", "team": ""})
    assert response.status_code == 400 and "You cannot take away your own admin rights" in response.text
    response = post_form(client, f"/admin/users/{admin}/deactivate", {}, page_url=f"/admin/users/{admin}")
    assert response.status_code == 400 and "You cannot take away your own admin rights" in response.text
    with seeded_app.app_context():
        user = get_session().get(User, admin)
        assert (user.role, user.active) == (Role.ADMIN, True)


def test_an_unknown_role_is_refused_on_the_edit_form(seeded_app):
    agent = user_id(seeded_app, ROLE_EMAILS[Role.AGENT_L1])
    response = post_form(admin_client(seeded_app), f"/admin/users/{agent}", {"role": "root", "team": ""})
    assert response.status_code == 400 and "Not a valid choice" in response.text
    assert admin_client(seeded_app).get("/admin/users/99999").status_code == 404


def test_a_deactivated_agent_is_signed_out_at_once_and_cannot_sign_in_until_reactivated(seeded_app):
    agent = user_id(seeded_app, ROLE_EMAILS[Role.AGENT_L1])
    agent_client = seeded_app.test_client()
    AuthActions(agent_client).login(Role.AGENT_L1)
    assert agent_client.get("/desk/").status_code == 200
    admin = admin_client(seeded_app)
    response = post_form(admin, f"/admin/users/{agent}/deactivate", {}, page_url=f"/admin/users/{agent}")
    assert response.status_code == 302
    assert agent_client.get("/desk/").status_code == 302  # the session ended: sent to sign in
    assert AuthActions(seeded_app.test_client()).login(Role.AGENT_L1).status_code == 401
    response = post_form(admin, f"/admin/users/{agent}/password-link", {}, page_url=f"/admin/users/{agent}")
    assert response.status_code == 400 and "reactivate the account first" in response.text
    response = post_form(admin, f"/admin/users/{agent}/reactivate", {}, page_url=f"/admin/users/{agent}")
    assert response.status_code == 302
    assert AuthActions(seeded_app.test_client()).login(Role.AGENT_L1).status_code == 302


def test_an_admin_can_mail_a_fresh_password_link(seeded_app):
    agent = user_id(seeded_app, ROLE_EMAILS[Role.AGENT_L2])
    client = admin_client(seeded_app)
    response = post_form(client, f"/admin/users/{agent}/password-link", {}, page_url=f"/admin/users/{agent}")
    assert response.status_code == 302
    with seeded_app.app_context():
        [mail] = get_session().scalars(select(OutboxMessage).where(
            OutboxMessage.recipient == ROLE_EMAILS[Role.AGENT_L2]))
        assert "/password/reset/" in mail.body


def test_the_user_forms_refuse_a_post_without_the_csrf_token(seeded_app):
    agent = user_id(seeded_app, ROLE_EMAILS[Role.AGENT_L1])
    client = admin_client(seeded_app)
    assert client.post(f"/admin/users/{agent}/deactivate").status_code == 400
    assert client.post("/admin/users", data={"name": "X", "email": "x@example.com", "role": "agent_l1"}
                       ).status_code == 400
    with seeded_app.app_context():
        assert get_session().get(User, agent).active


def test_a_deactivated_agents_page_asks_to_reassign_their_open_tickets(seeded_app):
    with seeded_app.app_context():
        from portal.domain import tickets as svc

        session = get_session()
        agent = user_by_role(session, Role.AGENT_L1)
        ticket = svc.create_ticket(session, user_by_role(session, Role.CUSTOMER), "VPN", "It drops.", "vpn", 3, 3,
                                   seeded_app.extensions["mesa_sla"])
        ticket.assignee = agent
        session.commit()
        agent_id = agent.id
        assert user_admin.open_tickets_assigned(session, agent) == 1
    client = admin_client(seeded_app)
    post_form(client, f"/admin/users/{agent_id}/deactivate", {}, page_url=f"/admin/users/{agent_id}")
    page = client.get(f"/admin/users/{agent_id}", headers=EN).text
    assert re.search(r"Open tickets assigned</dt><dd>1 <strong[^>]*>Reassign them", page)
