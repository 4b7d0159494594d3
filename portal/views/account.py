"""Signing in and out, registering, confirming the e-mail address, and the account page with its API
tokens."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.exc import IntegrityError

from .. import throttle, verification
from ..auth import agent_required, safe_next_url
from ..background import request_delivery
from ..db import get_session
from ..domain import agent_mail_preferences, api_tokens
from ..domain import users as user_service
from ..domain.errors import N_, Invalid
from ..errors import translated
from ..forms import AgentNotificationsForm, ApiTokenForm, LoginForm, LogoutForm, RegisterForm, VerifyForm
from ..i18n import LANGUAGE_NAMES, ui_languages

bp = Blueprint("account", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form; after signing in, go to `next` if it is on this site."""
    if current_user.is_authenticated:
        return redirect(url_for("public.home"))
    form = LoginForm()
    if form.validate_on_submit():
        # Failed sign-ins are limited per account and per client address (429 with Retry-After once used up;
        # checked before the password, so guessing stops); the answer never says whether the account exists.
        account, address = user_service.normalise_email(form.email.data), throttle.client_address()
        throttle.refuse_if_full("login-account", account)
        throttle.refuse_if_full("login-address", address)
        user = user_service.authenticate(get_session(), form.email.data, form.password.data)
        if user is not None:
            throttle.reset("login-account", account)
            get_session().commit()
            login_user(user)
            flash(_("Signed in as %(name)s.", name=user.name), "success")
            return redirect(safe_next_url(request.args.get("next")) or url_for("public.home"))
        throttle.hit("login-account", account)
        throttle.hit("login-address", address)
        flash(_("Wrong e-mail or password."), "error")
        return render_template("account/login.html", form=form), 401
    status = 400 if form.is_submitted() else 200
    return render_template("account/login.html", form=form), status


@bp.post("/logout")
def logout():
    """Sign out (POST with a CSRF token, so no other site can sign a user out)."""
    form = LogoutForm()
    if form.validate_on_submit():
        if current_user.is_authenticated:
            current_user.end_sessions()  # a copy of the cookie kept elsewhere stops working too
            get_session().commit()
        logout_user()
        flash(_("You are signed out."), "info")
    return redirect(url_for("public.home"))


@bp.route("/register", methods=["GET", "POST"])
def register():
    """A customer creates an account; it is confirmed by the link of an e-mail before they can open tickets.

    Whether or not the address has an account, the answer is the same "check your e-mail" page (and the
    same work is done): the owner of an existing account gets an e-mail saying someone tried.
    """
    if current_user.is_authenticated:
        return redirect(url_for("public.home"))
    form = RegisterForm()
    if form.validate_on_submit():
        throttle.limit("register-address", throttle.client_address())
        session = get_session()
        try:
            user_service.check_allowed_domain(form.email.data, current_app.config["MESA_ALLOWED_EMAIL_DOMAINS"])
            user, _created = user_service.register_customer(session, form.email.data, form.name.data,
                                                           form.password.data)
        except Invalid as exc:
            form.email.errors.append(translated(exc))
        except IntegrityError:  # the same address registered at this moment by another request
            session.rollback()
            return render_template("account/check_email.html", email=user_service.normalise_email(form.email.data))
        else:
            _send_account_mail(user)
            return render_template("account/check_email.html", email=user.email)
    status = 400 if form.is_submitted() else 200
    return render_template("account/register.html", form=form), status


def render_account(form: ApiTokenForm, new_secret: str | None = None, status: int = 200,
                   notifications: AgentNotificationsForm | None = None):
    """The account page: who you are, your API tokens and a form to create one; for agents, which
    notification e-mails they get."""
    if notifications is None and current_user.is_agent:
        notifications = notifications_form(formdata=None)
    return render_template("account/account.html", form=form, notifications=notifications,
                           tokens=api_tokens.tokens_of(get_session(), current_user), new_secret=new_secret), status


def notifications_form(**kwargs) -> AgentNotificationsForm:
    """The agent's notification choices as a form, filled with what they saved (all on until they save)."""
    saved = agent_mail_preferences.preferences_of(get_session(), current_user)
    form = AgentNotificationsForm(data={kind: getattr(saved, kind) for kind in agent_mail_preferences.KINDS}
                                  | {"language": saved.language}, **kwargs)
    languages = ui_languages()
    form.language.choices = [("", _("The first language of the portal (%(language)s)",
                                    language=LANGUAGE_NAMES.get(languages[0], languages[0]) if languages else ""))]
    form.language.choices += [(code, LANGUAGE_NAMES.get(code, code)) for code in languages]
    return form


@bp.get("/account")
@login_required
def account():
    """Your account and API tokens."""
    return render_account(ApiTokenForm())


@bp.post("/account/tokens")
@login_required
def create_token():
    """Create a token; its secret is shown on this answer only (it is stored hashed)."""
    form = ApiTokenForm()
    if not form.validate_on_submit():
        return render_account(form, status=400)
    session = get_session()
    try:
        _token, secret = api_tokens.create_token(session, current_user, form.name.data, form.scope.data)
    except Invalid as exc:
        form.name.errors.append(translated(exc))
        return render_account(form, status=400)
    session.commit()
    flash(_("Token created. Copy it now: it is not shown again."), "success")
    return render_account(ApiTokenForm(formdata=None), new_secret=secret)


@bp.post("/account/notifications")
@agent_required
def save_notifications():
    """An agent saves which notification e-mails they get and in which language."""
    form = notifications_form()
    if not form.validate_on_submit():
        return render_account(ApiTokenForm(formdata=None), status=400, notifications=form)
    session = get_session()
    enabled = {kind for kind in agent_mail_preferences.KINDS if getattr(form, kind).data}
    agent_mail_preferences.save(session, current_user, enabled, form.language.data, ui_languages())
    session.commit()
    flash(_("Your notification choices are saved."), "success")
    return redirect(url_for("account.account", _anchor="notifications"))


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    """Revoke one of your tokens: it stops working at once."""
    if not LogoutForm().validate_on_submit():
        raise Invalid(N_("The form has expired or did not come from this site. Go back, reload the page and "
                         "try again."))
    session = get_session()
    token = api_tokens.revoke_token(session, current_user, token_id)
    session.commit()
    flash(_("Token “%(name)s” revoked.", name=token.name), "success")
    return redirect(url_for("account.account"))


def _send_account_mail(user) -> None:
    """Commit the registration with its e-mail (at most MESA_ACCOUNT_MAIL_LIMIT per address: beyond it,
    nothing is sent and the page says the same): a link to a new or unconfirmed account, else the notice."""
    session = get_session()
    if throttle.allows("account-mail", user.email):  # commits the count, and a new account with it
        if user.email_verified:
            verification.queue_existing_account_notice(session, user)
        else:
            verification.queue_verification_mail(session, user)
    session.commit()
    request_delivery()


@bp.get("/verify/<token>")
def verify(token: str):
    """The link of the verification e-mail: a page with a button (a GET changes nothing, and mail scanners
    that open links do not confirm anything)."""
    user = verification.read_token(get_session(), token)
    return render_template("account/verify.html", form=VerifyForm(), user=user, token=token)


@bp.post("/verify/<token>")
def confirm_verification(token: str):
    """Confirm the address of the token's account; then go on to ask for help (or sign in first)."""
    session = get_session()
    user = verification.read_token(session, token)  # the form's CSRF token is checked by CSRFProtect
    user_service.mark_verified(user)
    session.commit()
    flash(_("Your e-mail address is confirmed. You can open tickets now."), "success")
    if current_user.is_authenticated and current_user.id == user.id:
        return redirect(url_for("help.ask"))
    return redirect(url_for("account.login", next=url_for("help.ask")))


@bp.post("/account/verification")
@login_required
def resend_verification():
    """Send a new confirmation link to the signed-in user's address (at most MESA_ACCOUNT_MAIL_LIMIT)."""
    if current_user.email_verified:
        flash(_("Your e-mail address is confirmed already."), "info")
        return redirect(url_for("help.ask"))
    throttle.limit("account-mail", current_user.email)
    verification.queue_verification_mail(get_session(), current_user)
    get_session().commit()
    request_delivery()
    flash(_("We sent a new link to %(email)s.", email=current_user.email), "success")
    return redirect(url_for("help.ask"))
