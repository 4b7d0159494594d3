"""Password reset by e-mail: the same answer whether or not an account exists, a signed link that expires and
works once, the registration's password rules, other sessions signed out, and limits per address."""

import re
import time

import itsdangerous.timed
from sqlalchemy import select

from portal.db import get_session
from portal.domain import users as user_service
from portal.domain.models import OutboxMessage, Role, User
from tests.conftest import PASSWORD, ROLE_EMAILS, AuthActions, csrf_token_from

EN = {"Accept-Language": "en"}
CUSTOMER = ROLE_EMAILS[Role.CUSTOMER]
NEW_PASSWORD = "a brand new password"


def post_form(client, url, data, page_url=None, **kwargs):
    """Open the page (``page_url`` or ``url``) and post its form with the CSRF token."""
    token = csrf_token_from(client.get(page_url or url, headers=EN).text)
    return client.post(url, data={**data, "csrf_token": token}, headers=EN, **kwargs)


def ask_for_link(client, email, address="127.0.0.1"):
    """Post the "Forgot your password?" form from a client address."""
    token = csrf_token_from(client.get("/password/forgot", headers=EN).text)
    return client.post("/password/forgot", data={"email": email, "csrf_token": token}, headers=EN,
                       environ_base={"REMOTE_ADDR": address})


def mails_to(app, email):
    """The e-mails written to one address, oldest first."""
    with app.app_context():
        return list(get_session().scalars(select(OutboxMessage).where(OutboxMessage.recipient == email)
                                          .order_by(OutboxMessage.id)))


def reset_link(app, email) -> str:
    """The path of the newest reset link e-mailed to ``email``."""
    for message in reversed(mails_to(app, email)):
        match = re.search(r"https?://[^/\s]+(/password/reset/\S+)", message.body)
        if match:
            return match.group(1)
    raise AssertionError(f"no reset link was sent to {email}")


def sign_in(client, email, password):
    """Post the sign-in form."""
    token = csrf_token_from(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token}, headers=EN)


def choose(client, link, password=NEW_PASSWORD, confirm=None):
    """Post the new password on the link's form."""
    return post_form(client, link, {"password": password, "confirm": password if confirm is None else confirm})


def test_the_sign_in_page_offers_the_reset(client):
    page = client.get("/login", headers=EN)
    assert 'href="/password/forgot"' in page.text and "Forgot your password?" in page.text


def test_a_known_and_an_unknown_address_get_the_same_page_and_only_the_account_gets_a_mail(client, seeded_app):
    known, unknown = ask_for_link(client, CUSTOMER), ask_for_link(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    strip = lambda page, email: re.sub(r'name="csrf_token"[^>]*>', "", page.text).replace(email, "EMAIL")
    assert strip(known, CUSTOMER) == strip(unknown, "nobody@example.com")
    assert "If EMAIL has an account, we sent it a link" in strip(known, CUSTOMER)
    [mail] = mails_to(seeded_app, CUSTOMER)
    assert mail.subject == "Choose a new password" and "works for 1 hours and only once" in mail.body
    assert mails_to(seeded_app, "nobody@example.com") == []


def test_the_link_sets_the_password_signs_in_and_works_only_once(client, seeded_app):
    ask_for_link(client, CUSTOMER)
    link = reset_link(seeded_app, CUSTOMER)
    form = client.get(link, headers=EN)
    assert form.status_code == 200 and "Choose a new password" in form.text and CUSTOMER in form.text
    saved = choose(client, link)
    assert saved.status_code == 302 and saved.headers["Location"] == "/"
    assert "Your new password is saved. You are signed in as Customer." in client.get("/", headers=EN).text
    again = client.get(link, headers=EN)
    assert again.status_code == 400 and "was used already or is no longer valid" in again.text
    assert choose(client, link, "yet another password").status_code == 400
    other = seeded_app.test_client()
    assert sign_in(other, CUSTOMER, PASSWORD).status_code == 401
    assert sign_in(other, CUSTOMER, NEW_PASSWORD).status_code == 302


def test_sessions_signed_in_before_the_reset_are_signed_out(client, seeded_app):
    elsewhere = seeded_app.test_client()
    AuthActions(elsewhere).login(Role.CUSTOMER)
    assert elsewhere.get("/account").status_code == 200
    ask_for_link(client, CUSTOMER)
    assert choose(client, reset_link(seeded_app, CUSTOMER)).status_code == 302
    assert elsewhere.get("/account").status_code == 302  # back to the sign-in page
    assert client.get("/account").status_code == 200  # the browser that reset it is signed in


def test_an_expired_link_is_refused_with_a_clear_message(seeded_app_with, monkeypatch):
    app = seeded_app_with(MESA_PASSWORD_RESET_HOURS=1)
    client = app.test_client()
    real_timestamp = itsdangerous.timed.TimestampSigner.get_timestamp
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: int(time.time()) - 61 * 60)
    ask_for_link(client, CUSTOMER)  # the link is made "61 minutes ago"
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", real_timestamp)
    expired = client.get(reset_link(app, CUSTOMER), headers=EN)
    assert expired.status_code == 400 and "This password-reset link has expired. Ask for a new one." in expired.text


def test_a_tampered_link_is_refused_with_a_clear_message(client, seeded_app):
    ask_for_link(client, CUSTOMER)
    link = reset_link(seeded_app, CUSTOMER)
    for bad in (link[:-3] + ("xyz" if not link.endswith("xyz") else "abc"), "/password/reset/garbage"):
        page = client.get(bad, headers=EN)
        assert page.status_code == 400 and "This password-reset link is not valid" in page.text
        assert client.post(bad, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 400
    with seeded_app.app_context():
        user = get_session().scalar(select(User).where(User.email == CUSTOMER))
        assert user.check_password(PASSWORD)


def test_the_new_password_follows_the_registration_rules_and_the_link_still_works_after(client, seeded_app):
    ask_for_link(client, CUSTOMER)
    link = reset_link(seeded_app, CUSTOMER)
    short = choose(client, link, "short")
    assert short.status_code == 400 and "between 10 and 200 characters" in short.text
    differ = choose(client, link, NEW_PASSWORD, confirm="something else")
    assert differ.status_code == 400 and "The passwords differ." in differ.text
    assert client.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 400  # no CSRF
    assert choose(client, link).status_code == 302


def test_a_customer_created_by_mail_sets_a_first_password_and_counts_as_verified(client, seeded_app):
    with seeded_app.app_context():
        session = get_session()
        user_service.find_or_create_customer(session, "nora@client.example", "Nora")
        session.commit()
    assert sign_in(client, "nora@client.example", "!none").status_code == 401
    ask_for_link(client, "nora@client.example")
    assert choose(client, reset_link(seeded_app, "nora@client.example")).status_code == 302
    with seeded_app.app_context():
        nora = get_session().scalar(select(User).where(User.email == "nora@client.example"))
        assert nora.has_password and nora.email_verified
    assert sign_in(seeded_app.test_client(), "nora@client.example", NEW_PASSWORD).status_code == 302


def test_an_inactive_account_gets_no_link_and_the_same_page(client, seeded_app):
    with seeded_app.app_context():
        session = get_session()
        session.scalar(select(User).where(User.email == CUSTOMER)).active = False
        session.commit()
    answer = ask_for_link(client, CUSTOMER)
    assert answer.status_code == 200 and "we sent it a link" in answer.text
    assert mails_to(seeded_app, CUSTOMER) == []


def test_requests_are_limited_per_client_address_and_mails_per_account(seeded_app_with):
    app = seeded_app_with(MESA_RESET_LIMIT_ADDRESS="3/3600", MESA_ACCOUNT_MAIL_LIMIT="2/3600")
    client = app.test_client()
    answers = [ask_for_link(client, CUSTOMER).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    assert len(mails_to(app, CUSTOMER)) == 2  # the third request gets the same page, no third mail
    refused = ask_for_link(client, "nobody@example.com")
    assert refused.status_code == 429 and "Too many attempts" in refused.text and "Retry-After" in refused.headers
    assert ask_for_link(client, "nobody@example.com", address="10.0.0.9").status_code == 200  # another address


def test_a_malformed_address_is_refused_on_the_form(client):
    answer = ask_for_link(client, "not an address")
    assert answer.status_code == 400 and "is not an e-mail address" in answer.text


def test_the_reset_mail_is_text_and_html_with_the_link_clickable(client, seeded_app):
    ask_for_link(client, CUSTOMER)
    [mail] = mails_to(seeded_app, CUSTOMER)
    link = re.search(r"https?://\S+/password/reset/\S+", mail.body).group(0)
    assert f'<a href="{link}">{link}</a>' in mail.html_body and '<html lang="en">' in mail.html_body
    assert "Choose a new password" in mail.html_body and "<script" not in mail.html_body
