"""Accounts against abuse: sign-in throttled per account and per address, answers that do not tell which
addresses have accounts, and e-mail verification before a customer opens tickets."""

import re
import time

import itsdangerous.timed
import pytest
from sqlalchemy import func, select

from portal.db import get_session
from portal.domain import users as user_service
from portal.domain.models import OutboxMessage, Role, Ticket, User
from tests.conftest import (PASSWORD, ROLE_EMAILS, AuthActions, csrf_token_from, register_and_confirm,
                            verification_link)

EN = {"Accept-Language": "en"}
HELP = {"subject": "Printer queue stuck", "description": "My print job is stuck in the queue.",
        "category": "printers", "type": "incident", "impact": "3", "urgency": "2", "action": "submit"}


def post_form(client, url, data, page_url=None, **kwargs):
    """Open the page (``page_url`` or ``url``) and post its form with the CSRF token."""
    token = csrf_token_from(client.get(page_url or url, headers=EN).text)
    return client.post(url, data={**data, "csrf_token": token}, headers=EN, **kwargs)


def sign_in(client, email, password, address="127.0.0.1", headers=EN):
    """Post the sign-in form from a client address."""
    token = csrf_token_from(client.get("/login", environ_base={"REMOTE_ADDR": address}).text)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       headers=headers, environ_base={"REMOTE_ADDR": address})


def register(client, email, name="Nora", password="a long password"):
    """Post the registration form."""
    return post_form(client, "/register", {"name": name, "email": email, "password": password,
                                           "confirm": password})


def mails_to(app, email):
    """The outbox messages to an address, oldest first."""
    with app.app_context():
        return list(get_session().scalars(select(OutboxMessage).where(OutboxMessage.recipient == email)
                                          .order_by(OutboxMessage.id)))


def user(app, email):
    """The account with this address (detached, for reading)."""
    with app.app_context():
        return get_session().scalar(select(User).where(User.email == email))


# ----- sign-in: generic answers, the same work for unknown addresses, throttled ---------------------------


def test_an_unknown_address_still_checks_a_password_hash(db, monkeypatch):
    checked = []
    real_check = user_service.check_password_hash
    monkeypatch.setattr(user_service, "check_password_hash",
                        lambda stored, password: checked.append(stored) or real_check(stored, password))
    assert user_service.authenticate(db, "nobody@example.com", "some password") is None
    assert len(checked) == 1 and checked[0].startswith(("scrypt:", "pbkdf2:")), "the unknown path hashes"
    assert user_service.authenticate(db, ROLE_EMAILS[Role.CUSTOMER], "wrong password") is None
    assert user_service.authenticate(db, ROLE_EMAILS[Role.CUSTOMER], PASSWORD) is not None
    assert len(checked) == 3
    assert checked[0].split("$")[0] == checked[1].split("$")[0], "the dummy hash has the real method and cost"


def test_an_inactive_account_also_checks_the_password(db, monkeypatch):
    from tests.conftest import user_by_role

    user_by_role(db, Role.CUSTOMER).active = False
    db.flush()
    checked = []
    monkeypatch.setattr(user_service, "check_password_hash", lambda stored, password: checked.append(1) or True)
    assert user_service.authenticate(db, ROLE_EMAILS[Role.CUSTOMER], PASSWORD) is None
    assert checked == [1]


def test_sign_in_answers_alike_for_an_unknown_address_and_a_wrong_password(client):
    unknown = sign_in(client, "nobody@example.com", "some password")
    wrong = sign_in(client, ROLE_EMAILS[Role.CUSTOMER], "some password")
    assert unknown.status_code == wrong.status_code == 401
    assert "Wrong e-mail or password." in unknown.text and "Wrong e-mail or password." in wrong.text


def test_failed_sign_ins_are_limited_per_account_with_a_429_and_retry_after(seeded_app_with):
    app = seeded_app_with(MESA_LOGIN_LIMIT_ACCOUNT="3/900")
    client = app.test_client()
    email = ROLE_EMAILS[Role.CUSTOMER]
    for attempt in range(3):
        assert sign_in(client, email, "wrong password", address=f"10.0.0.{attempt}").status_code == 401
    blocked = sign_in(client, email, PASSWORD, address="10.0.9.9")  # the right password, another address
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 900
    assert "Too many attempts. Try again in" in blocked.text and "<html" in blocked.text.lower()
    as_json = sign_in(client, email, PASSWORD, headers={**EN, "Accept": "application/json"})
    assert as_json.status_code == 429 and "Too many attempts" in as_json.json["error"]
    assert "Retry-After" in as_json.headers
    other = sign_in(client, ROLE_EMAILS[Role.AGENT_L1], PASSWORD)
    assert other.status_code == 302, "other accounts are not affected"


def test_failed_sign_ins_are_limited_per_client_address(seeded_app_with):
    app = seeded_app_with(MESA_LOGIN_LIMIT_ADDRESS="3/900")
    client = app.test_client()
    for number in range(3):
        assert sign_in(client, f"guess{number}@example.com", "x" * 12, address="10.1.1.1").status_code == 401
    assert sign_in(client, ROLE_EMAILS[Role.CUSTOMER], PASSWORD, address="10.1.1.1").status_code == 429
    assert sign_in(client, ROLE_EMAILS[Role.CUSTOMER], PASSWORD, address="10.1.1.2").status_code == 302


def test_a_successful_sign_in_clears_the_failures_of_the_account(seeded_app_with):
    app = seeded_app_with(MESA_LOGIN_LIMIT_ACCOUNT="3/900")
    email = ROLE_EMAILS[Role.CUSTOMER]
    client = app.test_client()
    for _ in range(2):
        assert sign_in(client, email, "wrong password").status_code == 401
    assert sign_in(client, email, PASSWORD).status_code == 302
    again = app.test_client()
    for _ in range(3):
        assert sign_in(again, email, "wrong password").status_code == 401
    assert sign_in(again, email, PASSWORD).status_code == 429


def test_the_sign_in_limit_holds_across_processes_sharing_the_database(seeded_app_with):
    first = seeded_app_with(MESA_LOGIN_LIMIT_ACCOUNT="4/900")
    second = seeded_app_with(MESA_LOGIN_LIMIT_ACCOUNT="4/900")  # another worker (or host) over the same database
    email = ROLE_EMAILS[Role.CUSTOMER]
    for app in (first, second, first, second):
        assert sign_in(app.test_client(), email, "wrong password").status_code == 401
    assert sign_in(first.test_client(), email, PASSWORD).status_code == 429
    assert sign_in(second.test_client(), email, PASSWORD).status_code == 429


def test_the_client_address_comes_from_x_forwarded_for_only_behind_trusted_proxies(seeded_app_with):
    app = seeded_app_with(MESA_LOGIN_LIMIT_ADDRESS="2/900", MESA_TRUSTED_PROXIES=1)
    client = app.test_client()

    def attempt(forwarded):
        token = csrf_token_from(client.get("/login").text)
        return client.post("/login", headers={"X-Forwarded-For": forwarded}, data={
            "email": "nobody@example.com", "password": "x" * 12, "csrf_token": token}).status_code

    assert [attempt("spoofed, 10.2.0.1"), attempt("other, 10.2.0.1"), attempt("10.2.0.1")] == [401, 401, 429]
    assert attempt("10.2.0.2") == 401, "the proxy's last address is the client"


def test_a_malformed_limit_setting_refuses_to_start(tmp_path):
    from tests.conftest import make_test_app

    with pytest.raises(RuntimeError, match="MESA_LOGIN_LIMIT_ACCOUNT"):
        make_test_app(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", MESA_LOGIN_LIMIT_ACCOUNT="ten a minute")


# ----- registration: the same answer whoever owns the address -------------------------------------------


def test_registering_sends_a_confirmation_link_and_does_not_open_tickets_yet(client, seeded_app):
    response = register(client, "nora@example.com")
    assert response.status_code == 200 and "Check your e-mail" in response.text
    nora = user(seeded_app, "nora@example.com")
    assert nora.role == Role.CUSTOMER and not nora.email_verified
    [mail] = mails_to(seeded_app, "nora@example.com")
    assert mail.subject == "Confirm your e-mail address" and "/verify/" in mail.body
    assert "Nora" not in client.get("/", headers=EN).text, "registering does not sign in"


def test_registering_an_existing_address_reveals_nothing_and_tells_the_owner(seeded_app):
    email = ROLE_EMAILS[Role.CUSTOMER]
    new, existing = (register(seeded_app.test_client(), address, password="another long one")
                     for address in ("fresh@example.com", email.upper()))
    strip = lambda page, address: re.sub(r'value="[^"]+"', "", page.text.replace(address, "ADDRESS"))  # noqa: E731
    assert existing.status_code == new.status_code == 200
    assert strip(existing, email) == strip(new, "fresh@example.com")
    assert "exists" not in existing.text
    [notice] = mails_to(seeded_app, email)
    assert notice.subject == "Someone tried to create an account with your address"
    assert "/verify/" not in notice.body
    assert sign_in(seeded_app.test_client(), email, PASSWORD).status_code == 302, "the password is unchanged"
    with seeded_app.app_context():
        assert get_session().scalar(select(func.count()).select_from(User).where(
            func.lower(User.email) == email)) == 1


def test_registering_again_with_an_unconfirmed_address_sends_the_link_again(client, seeded_app):
    register(client, "nora@example.com")
    again = register(seeded_app.test_client(), "nora@example.com", name="Someone else")
    assert again.status_code == 200
    mails = mails_to(seeded_app, "nora@example.com")
    assert len(mails) == 2 and all("/verify/" in mail.body for mail in mails)
    assert user(seeded_app, "nora@example.com").name == "Nora", "the account is not taken over"


def test_account_mails_to_one_address_are_limited(seeded_app_with):
    app = seeded_app_with(MESA_ACCOUNT_MAIL_LIMIT="2/3600")
    email = ROLE_EMAILS[Role.CUSTOMER]
    answers = [register(app.test_client(), email).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 200], "the page says the same"
    assert len(mails_to(app, email)) == 2, "but nobody can flood an inbox through Mesa"


def test_registrations_are_limited_per_client_address(seeded_app_with):
    app = seeded_app_with(MESA_REGISTER_LIMIT_ADDRESS="2/3600")
    client = app.test_client()
    assert [register(client, f"n{i}@example.com").status_code for i in range(3)] == [200, 200, 429]
    assert user(app, "n2@example.com") is None


def test_registering_outside_the_allowed_domains_is_refused_with_a_message(seeded_app_with):
    app = seeded_app_with(MESA_ALLOWED_EMAIL_DOMAINS="example.com, Example.org")
    refused = register(app.test_client(), "ceo@elsewhere.test")
    assert refused.status_code == 400
    assert "Accounts can only be created with an address at example.com, example.org." in refused.text
    assert user(app, "ceo@elsewhere.test") is None and mails_to(app, "ceo@elsewhere.test") == []
    assert register(app.test_client(), "nora@example.org").status_code == 200


# ----- verification: read and search before, tickets after ------------------------------------------------


def test_an_unconfirmed_customer_can_search_and_read_but_not_open_a_ticket(client, seeded_app):
    register(client, "nora@example.com")
    assert sign_in(client, "nora@example.com", "a long password").status_code == 302
    assert client.get("/search?q=vpn", headers=EN).status_code == 200
    assert client.get("/articles/laptop-disk-full", headers=EN).status_code == 200
    page = client.get("/help", headers=EN)
    assert page.status_code == 200 and "confirm your e-mail address" in page.text
    assert "Send the link again" in page.text
    refused = post_form(client, "/help", HELP)
    assert refused.status_code == 403
    assert "Confirm your e-mail address before opening a ticket" in refused.text
    assert HELP["subject"] in refused.text, "what they wrote is kept"
    with seeded_app.app_context():
        assert get_session().scalar(select(func.count()).select_from(Ticket)) == 0


def test_opening_the_link_shows_a_button_and_confirming_allows_tickets(client, seeded_app):
    register(client, "nora@example.com")
    sign_in(client, "nora@example.com", "a long password")
    link = verification_link(seeded_app, "nora@example.com")
    page = client.get(link, headers=EN)
    assert page.status_code == 200 and "Confirm my address" in page.text
    assert not user(seeded_app, "nora@example.com").email_verified, "a GET changes nothing"
    confirmed = client.post(link, data={"csrf_token": csrf_token_from(page.text)}, headers=EN)
    assert confirmed.status_code == 302 and confirmed.headers["Location"].endswith("/help")
    assert user(seeded_app, "nora@example.com").email_verified
    assert "confirm your e-mail address" not in client.get("/help", headers=EN).text
    created = post_form(client, "/help", HELP)
    assert created.status_code == 302 and "/tickets/" in created.headers["Location"]


def test_confirming_while_signed_out_asks_to_sign_in_then(seeded_app):
    browser = seeded_app.test_client()
    assert register_and_confirm(seeded_app, browser, "Bruno", "bruno@example.com").status_code == 302
    assert user(seeded_app, "bruno@example.com").email_verified


def test_a_tampered_or_foreign_link_is_refused_with_a_message(client, seeded_app, tmp_path):
    register(client, "nora@example.com")
    link = verification_link(seeded_app, "nora@example.com")
    tampered = client.get(link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb"), headers=EN)
    assert tampered.status_code == 400 and "This confirmation link is not valid" in tampered.text
    from tests.conftest import make_test_app

    other_key = make_test_app(tmp_path, seeded_app.config["MESA_DATABASE_URL"], MESA_SECRET_KEY="another key")
    foreign = other_key.test_client().get(link, headers=EN)
    other_key.extensions["mesa_engine"].dispose()
    assert foreign.status_code == 400
    assert not user(seeded_app, "nora@example.com").email_verified


def test_an_expired_link_is_refused_and_a_new_one_can_be_sent(seeded_app_with, monkeypatch):
    app = seeded_app_with(MESA_VERIFY_LINK_HOURS=48)
    client = app.test_client()
    real_timestamp = itsdangerous.timed.TimestampSigner.get_timestamp
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: int(time.time()) - 49 * 3600)
    register(client, "nora@example.com")  # the link is made "49 hours ago"
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", real_timestamp)
    link = verification_link(app, "nora@example.com")
    expired = client.get(link, headers=EN)
    assert expired.status_code == 400 and "This confirmation link has expired" in expired.text
    sign_in(client, "nora@example.com", "a long password")
    resent = post_form(client, "/account/verification", {}, page_url="/help")
    assert resent.status_code == 302
    fresh = verification_link(app, "nora@example.com")
    assert fresh != link and client.get(fresh, headers=EN).status_code == 200


def test_sending_the_link_again_is_limited(seeded_app_with):
    app = seeded_app_with(MESA_ACCOUNT_MAIL_LIMIT="3/3600")
    client = app.test_client()
    register(client, "nora@example.com")  # the first of three mails
    sign_in(client, "nora@example.com", "a long password")
    answers = [post_form(client, "/account/verification", {}, page_url="/help") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [302, 302, 429]
    assert "Too many attempts" in answers[2].text and "Retry-After" in answers[2].headers
    assert len(mails_to(app, "nora@example.com")) == 3


def test_accounts_made_by_commands_and_seeds_are_verified(runner, app):
    result = runner.invoke(args=["users", "create", "--email", "agent@example.com", "--name", "Agent",
                                 "--role", "agent_l1", "--password", "a long password"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["users", "demo"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        accounts = list(get_session().scalars(select(User)))
        assert len(accounts) == 5 and all(account.email_verified for account in accounts)


def test_upgrading_marks_existing_accounts_verified(tmp_path):
    from alembic import command
    from sqlalchemy import MetaData, Table, create_engine, insert

    from portal import create_app
    from portal.db import alembic_config, upgrade_database
    from portal.domain.models import Base, utcnow
    from tests.conftest import POSTGRES_URL

    url = POSTGRES_URL or f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    app = create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path), "MESA_DATABASE_URL": url})
    command.upgrade(alembic_config(app), "0008")
    users = Table("users", MetaData(), autoload_with=engine)
    created = utcnow()
    with engine.begin() as connection:
        connection.execute(insert(users).values(email="old@example.com", name="Old", password_hash="x",
                                                role="customer", active=True, created_at=created))
    upgrade_database(app)
    with app.app_context():
        old = get_session().scalar(select(User).where(User.email == "old@example.com"))
        assert old.email_verified and abs((old.email_verified_at - created).total_seconds()) < 1
        get_session().close()
    engine.dispose()
    app.extensions["mesa_engine"].dispose()


def test_a_ticket_mailed_from_an_address_is_taken_but_shown_only_once_the_address_is_confirmed(client, seeded_app):
    """Whoever registers an address without confirming it cannot read the tickets mailed from that address."""
    from portal.domain import tickets as ticket_service

    register(client, "ceo@example.com", name="Squatter")
    assert sign_in(client, "ceo@example.com", "a long password").status_code == 302
    with seeded_app.app_context():
        session = get_session()
        owner = user_service.find_by_email(session, "ceo@example.com")
        with pytest.raises(Exception, match="Confirm your e-mail address"):
            ticket_service.create_ticket(session, owner, "From the portal", "Text.", "general", 3, 3,
                                         seeded_app.extensions["mesa_sla"])
        mailed = ticket_service.create_ticket(session, owner, "Board laptop", "Private text.", "general", 3, 3,
                                              seeded_app.extensions["mesa_sla"], by_email=True)
        session.commit()
        number = mailed.id
    assert client.get(f"/tickets/{number}", headers=EN).status_code == 404
    assert "Board laptop" not in client.get("/tickets", headers=EN).text
    with seeded_app.app_context():
        session = get_session()
        user_service.mark_verified(user_service.find_by_email(session, "ceo@example.com"))
        session.commit()
    assert client.get(f"/tickets/{number}", headers=EN).status_code == 200
    assert "Board laptop" in client.get("/tickets", headers=EN).text
