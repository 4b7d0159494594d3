"""Admins manage accounts: list and find them, create agents and admins, change role and team, deactivate
and reactivate. An admin cannot demote or deactivate themselves, and the last active admin stays one."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from .errors import N_, Invalid
from .models import OPEN_STATUSES, Role, Team, Ticket, User, utcnow
from .users import EMAIL_RE, NO_PASSWORD, check_address_free, normalise_email, parse_role

USERS_PER_PAGE = 25


@dataclass(frozen=True)
class UserPage:
    """One page of the user list, with what is needed to link to the others."""

    users: list[User]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """How many pages the whole list fills (at least one)."""
        return max(1, -(-self.total // self.per_page))


def list_users(session: Session, query: str = "", role: str = "", page: int = 1,
               per_page: int = USERS_PER_PAGE) -> UserPage:
    """Accounts by name, those whose name or e-mail contains ``query`` (any case) and of ``role`` if given
    (an unknown role: Invalid); ``page`` counts from 1 and is clamped to the pages there are."""
    conditions = []
    words = " ".join((query or "").split())[:200]
    if words:
        pattern = "%" + words.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(or_(func.lower(User.name).like(pattern, escape="\\"),
                              User.email.like(pattern, escape="\\")))
    if role:
        conditions.append(User.role == parse_role(role))
    total = session.scalar(select(func.count(User.id)).where(*conditions)) or 0
    page = min(max(1, page), max(1, -(-total // per_page)))
    users = list(session.scalars(select(User).where(*conditions).order_by(func.lower(User.name), User.id)
                                 .offset((page - 1) * per_page).limit(per_page)))
    return UserPage(users, total, page, per_page)


def _check_team(team: Team | None, role: Role) -> None:
    """Only agents and admins belong to teams."""
    if team is not None and role == Role.CUSTOMER:
        raise Invalid(N_("Customers do not belong to a team: choose no team, or an agent's role."))


def create_account(session: Session, email: str, name: str, role: Role | str, team: Team | None = None) -> User:
    """A new verified account without a password (the person chooses it by the link mailed to them);
    Invalid when the address is malformed or taken, the name empty or the role unknown."""
    email = normalise_email(email)
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise Invalid(N_("'%(email)s' is not an e-mail address."), email=email)
    name = " ".join((name or "").split())[:120]
    if not name:
        raise Invalid(N_("Give the person's name."))
    role = parse_role(role)
    _check_team(team, role)
    check_address_free(session, email)
    user = User(email=email, name=name, role=role, password_hash=NO_PASSWORD, team=team,
                email_verified_at=utcnow())
    session.add(user)
    session.flush()
    return user


def _other_active_admins(session: Session, user: User) -> int:
    """How many active admins there are besides ``user``."""
    return session.scalar(select(func.count(User.id)).where(User.role == Role.ADMIN, User.active.is_(True),
                                                            User.id != user.id)) or 0


def _check_admin_kept(session: Session, actor: User, user: User) -> None:
    """Invalid when taking ``user``'s admin rights away would be the actor's own or leave no active admin."""
    if user.role != Role.ADMIN:
        return
    if user.id == actor.id:
        raise Invalid(N_("You cannot take away your own admin rights or deactivate yourself: ask another admin."))
    if user.active and _other_active_admins(session, user) == 0:
        raise Invalid(N_("%(name)s is the last active admin: make someone else an admin first."), name=user.name)


def change_role_and_team(session: Session, actor: User, user: User, role: Role | str, team: Team | None) -> bool:
    """Give ``user`` this role and team; True if anything changed. Invalid for an unknown role, a customer in
    a team, the actor's own demotion, or demoting the last active admin."""
    role = parse_role(role)
    _check_team(team, role)
    if role != user.role:
        _check_admin_kept(session, actor, user)
    changed = (role, team.id if team else None) != (user.role, user.team_id)
    user.role, user.team = role, team
    return changed


def deactivate(session: Session, actor: User, user: User) -> None:
    """The account can no longer sign in and every session of it ends; Invalid for oneself, the last active
    admin, or an account already inactive."""
    if user.id == actor.id:
        raise Invalid(N_("You cannot take away your own admin rights or deactivate yourself: ask another admin."))
    if not user.active:
        raise Invalid(N_("%(name)s is already deactivated."), name=user.name)
    _check_admin_kept(session, actor, user)
    user.active = False
    user.end_sessions()


def reactivate(user: User) -> None:
    """The account can sign in again (with its password as it was); Invalid if it is active already."""
    if user.active:
        raise Invalid(N_("%(name)s is already active."), name=user.name)
    user.active = True


def open_tickets_assigned(session: Session, user: User) -> int:
    """How many open tickets are assigned to the account (a deactivated agent's stay assigned until an agent
    reassigns them)."""
    return session.scalar(select(func.count(Ticket.id)).where(Ticket.assignee_id == user.id,
                                                              Ticket.status.in_(OPEN_STATUSES))) or 0
