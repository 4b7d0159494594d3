"""Password reset: "Forgot your password?" asks for the address, an e-mailed link leads to a form for the new
password (portal/password_reset.py makes and checks the links)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_user, logout_user

from .. import password_reset, throttle
from ..background import request_delivery
from ..db import get_session
from ..domain import users as user_service
from ..domain.errors import Invalid
from ..errors import translated
from ..forms import ForgotPasswordForm, NewPasswordForm

bp = Blueprint("password", __name__)


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot():
    """Ask for a reset link. The answer is the same page whether or not the address has an account (and the
    same counting is done), so it does not tell which addresses have one; at most MESA_RESET_LIMIT_ADDRESS
    requests per client address (429 beyond) and MESA_ACCOUNT_MAIL_LIMIT mails per address."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        email = user_service.normalise_email(form.email.data)
        if not user_service.EMAIL_RE.match(email):
            form.email.errors.append(_("'%(email)s' is not an e-mail address.", email=email))
            return render_template("account/forgot.html", form=form), 400
        throttle.limit("reset-address", throttle.client_address())
        session = get_session()
        user = user_service.find_by_email(session, email)
        if throttle.allows("account-mail", email) and user is not None and user.active:
            password_reset.queue_reset_mail(session, user)
            session.commit()
            request_delivery()
        return render_template("account/reset_sent.html", email=email,
                               hours=current_app.config["MESA_PASSWORD_RESET_HOURS"])
    status = 400 if form.is_submitted() else 200
    return render_template("account/forgot.html", form=form), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    """The link of the reset e-mail: a form for the new password (a GET changes nothing); saving it ends the
    account's other sessions, makes the link worthless, and signs the person in."""
    session = get_session()
    user = password_reset.read_token(session, token)  # Invalid (a 400 page saying why) for a bad link
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            password_reset.set_new_password(user, form.password.data)
        except Invalid as exc:
            form.password.errors.append(translated(exc))
        else:
            throttle.reset("login-account", user.email)  # failed sign-ins before do not lock the new password
            session.commit()
            logout_user()  # whoever was signed in in this browser
            login_user(user)
            flash(_("Your new password is saved. You are signed in as %(name)s.", name=user.name), "success")
            return redirect(url_for("public.home"))
    status = 400 if form.is_submitted() else 200
    return render_template("account/reset.html", form=form, user=user, token=token), status
