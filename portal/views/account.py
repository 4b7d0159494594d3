"""Signing in and out, registering, and the account page with its API tokens."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..auth import safe_next_url
from ..db import get_session
from ..domain import api_tokens
from ..domain import users as user_service
from ..domain.errors import N_, Invalid
from ..domain.models import Role
from ..errors import translated
from ..forms import ApiTokenForm, LoginForm, LogoutForm, RegisterForm

bp = Blueprint("account", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form; after signing in, go to `next` if it is on this site."""
    if current_user.is_authenticated:
        return redirect(url_for("public.home"))
    form = LoginForm()
    if form.validate_on_submit():
        user = user_service.authenticate(get_session(), form.email.data, form.password.data)
        if user is not None:
            login_user(user)
            flash(_("Signed in as %(name)s.", name=user.name), "success")
            return redirect(safe_next_url(request.args.get("next")) or url_for("public.home"))
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
    """A customer creates an account and is signed in."""
    if current_user.is_authenticated:
        return redirect(url_for("public.home"))
    form = RegisterForm()
    if form.validate_on_submit():
        session = get_session()
        try:
            user = user_service.create_user(session, form.email.data, form.name.data, form.password.data,
                                            Role.CUSTOMER)
        except Invalid as exc:
            form.email.errors.append(translated(exc))
        else:
            session.commit()
            login_user(user)
            flash(_("Welcome, %(name)s. Your account is ready.", name=user.name), "success")
            return redirect(safe_next_url(request.args.get("next")) or url_for("public.home"))
    status = 400 if form.is_submitted() else 200
    return render_template("account/register.html", form=form), status


def render_account(form: ApiTokenForm, new_secret: str | None = None, status: int = 200):
    """The account page: who you are, your API tokens, and a form to create one."""
    return render_template("account/account.html", form=form, 
                           tokens=api_tokens.tokens_of(get_session(), current_user), new_secret=new_secret), status


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
