"""Admin pages: users, canned replies, teams, the e-mail outbox, incoming mail and its quarantine."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from ..auth import admin_required
from ..db import get_session
from ..background import request_delivery
from ..domain import outbox as outbox_service
from ..domain import inbound
from ..domain import user_admin
from ..domain.errors import N_, Invalid
from ..errors import translated
from .. import password_reset
from ..domain.models import (AGENT_ROLES, CannedReply, InboundMail, MailDisposition, OutboxMessage, OutboxStatus,
                             Role, Team, User, utcnow)
from ..domain.numbers import parse_id, parse_int
from ..domain.tickets import agents
from wtforms.fields.choices import SelectChoice

from ..forms import CannedReplyForm, NewUserForm, TeamForm, UserRoleForm
from ..i18n import CATEGORY_LABELS, mail_disposition_label, outbox_status_label

AGENT_ROLE_VALUES = tuple(role.value for role in AGENT_ROLES)

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/canned", methods=["GET", "POST"])
@admin_required
def canned_list():
    """The canned replies, and a form to add one."""
    session = get_session()
    form = CannedReplyForm()
    if form.validate_on_submit():
        session.add(CannedReply(title=form.title.data.strip(), body=form.body.data))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            form.title.errors.append(_("A canned reply with this title exists already."))
        else:
            flash(_("Canned reply saved."), "success")
            return redirect(url_for("admin.canned_list"))
    replies = list(session.scalars(select(CannedReply).order_by(CannedReply.title)))
    return render_template("admin/canned.html", replies=replies, form=form), 400 if form.errors else 200


@bp.route("/canned/<int:reply_id>", methods=["GET", "POST"])
@admin_required
def canned_edit(reply_id: int):
    """Edit one canned reply."""
    session = get_session()
    reply = session.get(CannedReply, reply_id) or abort(404)
    form = CannedReplyForm(obj=reply)
    if form.validate_on_submit():
        reply.title, reply.body = form.title.data.strip(), form.body.data
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            form.title.errors.append(_("A canned reply with this title exists already."))
        else:
            flash(_("Canned reply saved."), "success")
            return redirect(url_for("admin.canned_list"))
    return render_template("admin/canned_edit.html", reply=reply, form=form), 400 if form.errors else 200


@bp.post("/canned/<int:reply_id>/delete")
@admin_required
def canned_delete(reply_id: int):
    """Delete a canned reply."""
    session = get_session()
    reply = session.get(CannedReply, reply_id) or abort(404)
    session.delete(reply)
    session.commit()
    flash(_("Canned reply deleted."), "info")
    return redirect(url_for("admin.canned_list"))


@bp.route("/teams", methods=["GET", "POST"])
@admin_required
def teams():
    """Teams, the categories they handle, and which agent belongs to which team."""
    session = get_session()
    form = TeamForm()
    form.categories.choices = [SelectChoice(key, str(label)) for key, label in CATEGORY_LABELS.items()]
    if form.validate_on_submit():
        session.add(Team(name=form.name.data.strip(), categories=form.categories.data))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            form.name.errors.append(_("A team with this name exists already."))
        else:
            flash(_("Team saved."), "success")
            return redirect(url_for("admin.teams"))
    all_teams = list(session.scalars(select(Team).order_by(Team.name)))
    return render_template("admin/teams.html", teams=all_teams, agents=agents(session), form=form), \
        400 if form.errors else 200


@bp.post("/teams/members")
@admin_required
def set_team():
    """Put an agent in a team (or in none)."""
    session = get_session()
    agent = session.get(User, parse_id(request.form.get("agent")) or 0)
    team_id = parse_id(request.form.get("team"))
    team = session.get(Team, team_id) if team_id else None
    if agent is None or not agent.is_agent or (team_id and team is None):
        abort(400)
    agent.team = team
    session.commit()
    flash(_("Team membership saved."), "success")
    return redirect(url_for("admin.teams"))


@bp.get("/outbox")
@admin_required
def outbox():
    """The e-mail notifications Mesa wrote, newest first, with how their delivery goes; ``?status=`` filters."""
    session = get_session()
    status = request.args.get("status", "")
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200)
    if status in {s.value for s in OutboxStatus}:
        query = query.where(OutboxMessage.status == OutboxStatus(status))
    else:
        status = ""
    return render_template("admin/outbox.html", messages=list(session.scalars(query)), status=status,
                           counts=outbox_service.status_counts(session), statuses=[s.value for s in OutboxStatus])


@bp.post("/outbox/<int:message_id>/retry")
@admin_required
def outbox_retry(message_id: int):
    """Send a failed message again (with a fresh set of attempts)."""
    session = get_session()
    message = session.get(OutboxMessage, message_id) or abort(404)
    if outbox_service.retry(session, message.id, utcnow()):
        session.commit()
        request_delivery()
        flash(_("The message is queued to be sent again."), "success")
    else:
        session.rollback()
        flash(_("Only a failed message can be sent again; this one is %(status)s.",
                status=outbox_status_label(message.status)), "error")
    return redirect(url_for("admin.outbox", status=request.form.get("status", "")))


@bp.get("/mail")
@admin_required
def mail_in():
    """Incoming e-mail, newest first: by default the quarantine (what waits for an admin, with why);
    ``?disposition=`` shows another kind, ``all`` every kind."""
    session = get_session()
    shown = request.args.get("disposition", MailDisposition.QUARANTINED.value)
    values = {d.value for d in MailDisposition}
    if shown not in values and shown != "all":
        shown = MailDisposition.QUARANTINED.value
    mails = inbound.recent_mail(session, MailDisposition(shown) if shown in values else None)
    return render_template("admin/mail_in.html", mails=mails, shown=shown,
                           counts=inbound.disposition_counts(session),
                           dispositions=[d.value for d in MailDisposition])


@bp.get("/mail/<int:mail_id>.eml")
@admin_required
def mail_in_download(mail_id: int):
    """The original e-mail as .eml."""
    from .tickets import eml_download

    return eml_download(get_session().get(InboundMail, mail_id) or abort(404))


@bp.post("/mail/<int:mail_id>/release")
@admin_required
def mail_in_release(mail_id: int):
    """Let a quarantined e-mail through: processed again without the size, rate and thread-owner checks."""
    from flask import current_app

    from ..mail_fetch import intake_for
    from ..notifications import notify_requester

    session = get_session()
    record = session.get(InboundMail, mail_id) or abort(404)
    outcome = inbound.release(session, intake_for(current_app), record, utcnow())
    if outcome is None:
        session.rollback()
        flash(_("Only a quarantined e-mail can be released."), "error")
        return redirect(url_for("admin.mail_in"))
    if outcome.ticket is not None and outcome.events:
        notify_requester(session, outcome.ticket, outcome.events)
    disposition, reason = record.disposition, record.reason
    try:
        session.commit()
    except StaleDataError:  # an agent saved the ticket it replies to at this moment
        session.rollback()
        flash(_("The ticket was changed at this moment; nothing was done. Release the e-mail again."), "error")
        return redirect(url_for("admin.mail_in"))
    request_delivery()
    if disposition == MailDisposition.QUARANTINED:
        flash(_("The e-mail still cannot be taken in: %(reason)s", reason=reason), "error")
    else:
        flash(_("E-mail released: %(what)s.", what=mail_disposition_label(disposition)), "success")
    return redirect(url_for("admin.mail_in"))


@bp.post("/mail/<int:mail_id>/discard")
@admin_required
def mail_in_discard(mail_id: int):
    """Throw a quarantined e-mail away (its record stays, so it is never fetched again)."""
    session = get_session()
    record = session.get(InboundMail, mail_id) or abort(404)
    if inbound.discard(session, record, utcnow()):
        session.commit()
        flash(_("E-mail discarded."), "info")
    else:
        session.rollback()
        flash(_("Only a quarantined e-mail can be discarded."), "error")
    return redirect(url_for("admin.mail_in"))


# ----- users ---------------------------------------------------------------------------------------------

ROLE_LABELS = {Role.CUSTOMER.value: _l("Customer"), Role.AGENT_L1.value: _l("L1 agent"),
               Role.AGENT_L2.value: _l("L2 agent"), Role.ADMIN.value: _l("Admin")}


def _role_form(form: UserRoleForm, roles=tuple(ROLE_LABELS)) -> UserRoleForm:
    """Fill the role and team menus (a choice outside them fails validation: an unknown role is refused)."""
    form.role.choices = [SelectChoice(role, str(ROLE_LABELS[role])) for role in roles]
    form.team.choices = [SelectChoice("", _("No team"))] + [
        SelectChoice(str(team.id), team.name) for team in get_session().scalars(select(Team).order_by(Team.name))]
    return form


def _chosen_team(form: UserRoleForm) -> Team | None:
    """The team the (validated) form names, or None."""
    return get_session().get(Team, int(form.team.data)) if form.team.data else None


def _user_list_page(form: NewUserForm, status: int = 200):
    """The user list as the query string asks (search, role, page), with the form for a new account."""
    query, role = request.args.get("q", ""), request.args.get("role", "")
    if role not in ROLE_LABELS:
        role = ""
    listing = user_admin.list_users(get_session(), query, role, parse_int(request.args.get("page"), low=1) or 1)
    return render_template("admin/users.html", listing=listing, query=query, role=role, form=form,
                           role_labels=ROLE_LABELS), status


@bp.get("/users")
@admin_required
def users():
    """Every account, found by name or e-mail and filtered by role, a page at a time; a form for a new one."""
    form = _role_form(NewUserForm(formdata=None), AGENT_ROLE_VALUES)
    form.role.data = Role.AGENT_L1.value
    return _user_list_page(form)


@bp.post("/users")
@admin_required
def user_create():
    """Create an agent or admin account and mail the person a link to choose their password."""
    session = get_session()
    form = _role_form(NewUserForm(), AGENT_ROLE_VALUES)
    if form.validate_on_submit():
        try:
            user = user_admin.create_account(session, form.email.data, form.name.data, form.role.data,
                                             _chosen_team(form))
        except Invalid as exc:
            session.rollback()
            form.email.errors.append(translated(exc))
        else:
            password_reset.queue_welcome_mail(session, user, current_user)
            try:
                session.commit()
            except IntegrityError:  # the same address created at this moment by another admin
                session.rollback()
                form.email.errors.append(_("An account for %(email)s exists already.", email=user.email))
            else:
                request_delivery()
                flash(_("Account created for %(name)s; a link to choose the password was mailed to %(email)s.",
                        name=user.name, email=user.email), "success")
                return redirect(url_for("admin.user_edit", user_id=user.id))
    return _user_list_page(form, 400)


def _user_page(user: User, form: UserRoleForm, status: int = 200):
    """One account: its role and team form, and the buttons to deactivate or reactivate it."""
    return render_template("admin/user.html", user=user, form=form, role_labels=ROLE_LABELS,
                           open_assigned=user_admin.open_tickets_assigned(get_session(), user)), status


@bp.get("/users/<int:user_id>")
@admin_required
def user_edit(user_id: int):
    """One account, to change its role and team, deactivate or reactivate it, or mail a new password link."""
    user = get_session().get(User, user_id) or abort(404)
    form = _role_form(UserRoleForm(formdata=None))
    form.role.data, form.team.data = user.role.value, str(user.team_id or "")
    return _user_page(user, form)


@bp.post("/users/<int:user_id>")
@admin_required
def user_save(user_id: int):
    """Save the account's role and team (never the admin's own demotion, nor the last admin's)."""
    session = get_session()
    user = session.get(User, user_id) or abort(404)
    form = _role_form(UserRoleForm())
    if form.validate_on_submit():
        try:
            changed = user_admin.change_role_and_team(session, current_user, user, form.role.data,
                                                      _chosen_team(form))
        except Invalid as exc:
            session.rollback()
            form.role.errors.append(translated(exc))
        else:
            session.commit()
            flash(_("Role and team of %(name)s saved.", name=user.name) if changed
                  else _("Nothing changed."), "success" if changed else "info")
            return redirect(url_for("admin.user_edit", user_id=user.id))
    return _user_page(session.get(User, user_id), form, 400)


def _account_change(user_id: int, change, done: str):
    """Run a (de)activation on an account: saved with the message ``done``, or the page with why not."""
    session = get_session()
    user = session.get(User, user_id) or abort(404)
    try:
        change(session, user)
    except Invalid as exc:
        session.rollback()
        flash(translated(exc), "error")
        user = session.get(User, user_id)
        form = _role_form(UserRoleForm(formdata=None))
        form.role.data, form.team.data = user.role.value, str(user.team_id or "")
        return _user_page(user, form, 400)
    session.commit()
    request_delivery()
    flash(done % {"name": user.name}, "success")
    return redirect(url_for("admin.user_edit", user_id=user.id))


@bp.post("/users/<int:user_id>/deactivate")
@admin_required
def user_deactivate(user_id: int):
    """The account can no longer sign in; its sessions end at once."""
    return _account_change(user_id, lambda session, user: user_admin.deactivate(session, current_user, user),
                           _("%(name)s is deactivated and signed out everywhere."))


@bp.post("/users/<int:user_id>/reactivate")
@admin_required
def user_reactivate(user_id: int):
    """The account can sign in again."""
    return _account_change(user_id, lambda session, user: user_admin.reactivate(user),
                           _("%(name)s can sign in again."))


@bp.post("/users/<int:user_id>/password-link")
@admin_required
def user_password_link(user_id: int):
    """Mail the person a fresh link to choose a password (for an expired welcome link, or a forgotten one)."""
    def send(session, user):
        if not user.active:
            raise Invalid(N_("%(name)s is deactivated: reactivate the account first."), name=user.name)
        password_reset.queue_welcome_mail(session, user, current_user)

    return _account_change(user_id, send, _("A link to choose the password was mailed to %(name)s."))
