"""Web forms (Flask-WTF: every form carries a CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SubmitField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    """Sign in with e-mail and password."""

    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("Sign in"))


class LogoutForm(FlaskForm):
    """An empty form: signing out is a POST with a CSRF token."""

    submit = SubmitField(_l("Sign out"))
