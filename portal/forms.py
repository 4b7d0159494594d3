"""Web forms (Flask-WTF: every form carries a CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (BooleanField, EmailField, PasswordField, RadioField, SelectField, SelectMultipleField,
                     StringField, SubmitField, TextAreaField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from .domain.tickets import has_line_break


def single_line(form, field) -> None:
    """A one-line field refuses line breaks (a subject ends up in an e-mail header)."""
    if field.data and has_line_break(field.data):
        raise ValidationError(_l("Write this on one line, without line breaks."))


class LoginForm(FlaskForm):
    """Sign in with e-mail and password."""

    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("Sign in"))


class LogoutForm(FlaskForm):
    """An empty form: signing out is a POST with a CSRF token."""

    submit = SubmitField(_l("Sign out"))


class NewPasswordForm(FlaskForm):
    """A new password, typed twice: the rules of registration and of a password reset."""

    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=10, max=200)])
    confirm = PasswordField(_l("Repeat the password"),
                            validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))])
    submit = SubmitField(_l("Save the new password"))


class RegisterForm(NewPasswordForm):
    """A customer creates an account (with the password rules of NewPasswordForm)."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120), single_line])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    submit = SubmitField(_l("Create account"))


class ForgotPasswordForm(FlaskForm):
    """Ask for a password-reset link by e-mail."""

    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    submit = SubmitField(_l("Send me a link"))


class VerifyForm(FlaskForm):
    """An empty form: confirming an address (or asking for a new link) is a POST with a CSRF token."""

    submit = SubmitField(_l("Confirm my address"))


class HelpRequestForm(FlaskForm):
    """The "Ask for help" form: checked against the knowledge base before it becomes a ticket."""

    subject = StringField(_l("Subject"), validators=[DataRequired(), Length(max=200), single_line])
    description = TextAreaField(_l("Describe the problem"), validators=[DataRequired(), Length(max=20000)])
    type = RadioField(_l("Type"), choices=[SelectChoice("incident"), SelectChoice("service_request")],
                      default="incident")
    category = SelectField(_l("Category"), choices=[])
    impact = SelectField(_l("Who is affected?"), choices=[SelectChoice(v) for v in "321"], default="3")
    urgency = SelectField(_l("How urgent is it?"), choices=[SelectChoice(v) for v in "321"], default="2")
    asset_tag = StringField(_l("Asset tag of the device (optional)"),
                            validators=[Optional(), Length(max=40), single_line])


class CannedReplyForm(FlaskForm):
    """Admins manage canned replies."""

    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=120), single_line])
    body = TextAreaField(_l("Text"), validators=[DataRequired(), Length(max=20000)])
    submit = SubmitField(_l("Save"))


class TeamForm(FlaskForm):
    """Admins create teams and say which categories they handle."""

    name = StringField(_l("Team name"), validators=[DataRequired(), Length(max=80), single_line])
    categories = SelectMultipleField(_l("Categories"), choices=[])
    submit = SubmitField(_l("Save team"))


class ApiTokenForm(FlaskForm):
    """A user creates a personal API token: a name to recognise it by, and read or write access."""

    name = StringField(_l("Token name"), validators=[DataRequired(), Length(max=80), single_line])
    scope = RadioField(_l("Access"), choices=[SelectChoice("read", _l("Read only")),
                                              SelectChoice("write", _l("Read and write"))], default="read")
    submit = SubmitField(_l("Create token"))


class AgentNotificationsForm(FlaskForm):
    """An agent chooses which notification e-mails they get (one box per kind) and their language."""

    assigned = BooleanField(_l("A ticket is assigned to me"))
    escalated = BooleanField(_l("A ticket is escalated to me (or to my level when nobody is assigned)"))
    customer_replied = BooleanField(_l("The customer replied on a ticket of mine"))
    reopened = BooleanField(_l("A ticket of mine is reopened"))
    sla_warning = BooleanField(_l("A ticket of mine is about to miss its SLA target"))
    language = SelectField(_l("Language of these e-mails"), choices=[])
    submit = SubmitField(_l("Save notifications"))


class UserRoleForm(FlaskForm):
    """Admins set an account's role and team (the choices are filled by the view)."""

    role = SelectField(_l("Role"), choices=[])
    team = SelectField(_l("Team"), choices=[])
    submit = SubmitField(_l("Save"))


class NewUserForm(UserRoleForm):
    """Admins create an agent or admin account (with the role and team rules of UserRoleForm)."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120), single_line])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    submit = SubmitField(_l("Create the account and mail a password link"))
