"""Signing in and out."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from ..auth import safe_next_url
from ..db import get_session
from ..domain import users as user_service
from ..domain.errors import Invalid
from ..domain.models import Role
from ..errors import translated
from ..forms import LoginForm, LogoutForm, RegisterForm

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
