"""`/api/v1/tickets`: customers open, follow and answer their tickets; agents work them.

Each change goes through the same domain function as the ticket page, is saved with the requester's
notifications in one transaction, and answers the ticket as it is now.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import get_locale
from flask_login import current_user, login_required

from ..auth import agent_required
from ..background import request_delivery
from ..db import get_session
from ..domain import knowledge
from ..domain import tickets as ticket_service
from ..domain.models import Ticket, utcnow
from ..notifications import notify_requester
from .parsing import Blueprint, checked_id
from .schemas import (AssignInput, EscalateInput, PriorityInput, ReplyInput, ResolveInput, StatusInput,
                      TicketCreate, TicketDetail, TicketList, TicketListArgs, TimeInput)

bp = Blueprint("api_v1_tickets", __name__, url_prefix="/api/v1/tickets",
               description="Tickets: create, list and follow your own; agents assign, prioritise, escalate, "
                           "note, log time and resolve.")


def person(user) -> dict | None:
    """A user as the API names them."""
    return {"id": user.id, "name": user.name} if user is not None else None


def ticket_summary(ticket: Ticket, now) -> dict:
    """The ticket's fields and SLA clock."""
    sla = ticket_service.sla_state(ticket, now)
    return {"id": ticket.id, "number": ticket.number, "subject": ticket.subject, "status": ticket.status,
            "type": ticket.type, "category": ticket.category, "priority": ticket.priority,
            "impact": ticket.impact, "urgency": ticket.urgency, "level": ticket.level, "lang": ticket.lang,
            "requester": person(ticket.requester), "assignee": person(ticket.assignee),
            "created_at": ticket.created_at, "updated_at": ticket.updated_at, "version": ticket.version,
            "sla": {"target": sla["target"], "due": sla["due"], "breached": sla["breached"]}}


def ticket_detail(ticket: Ticket) -> dict:
    """The ticket with the activity the current user may see."""
    return {**ticket_summary(ticket, utcnow()), "description": ticket.description, "solution": ticket.solution,
            "asset_tag": ticket.asset_tag,
            "events": [{"id": e.id, "kind": e.kind, "public": e.public, "body": e.body, "actor": person(e.actor),
                        "data": e.data or {}, "created_at": e.created_at}
                       for e in ticket_service.visible_events(ticket, current_user)],
            "minutes_spent": ticket_service.total_minutes(ticket) if current_user.is_agent else None}


def apply_change(ticket_id: int, change) -> dict:
    """Run one change on a ticket the user may see, notify the requester, commit, and show the ticket.
    A refusal (DomainError) or a concurrent save (StaleDataError) rolls back and answers 4xx (portal/errors.py)."""
    session = get_session()
    ticket = ticket_service.get_ticket(session, checked_id(ticket_id), current_user)
    logged_before = len(ticket.events)
    try:
        change(session, ticket)
        notify_requester(session, ticket, ticket.events[logged_before:])
        session.commit()
    except Exception:
        session.rollback()
        raise
    request_delivery()
    return ticket_detail(ticket)


def api_queue_status(value: str | None) -> str:
    """The queue's status filter from the API's ``status``: there "open" (the default) means every open
    status, as documented, so it is the queue's ALL_OPEN."""
    return ticket_service.ALL_OPEN if value in (None, "", "open") else value


@bp.get("")
@login_required
@bp.arguments(TicketListArgs, location="query")
@bp.response(200, TicketList)
def list_tickets(args):
    """Customers: their own tickets, newest first. Agents: the queue (open tickets by due time unless the
    filters say otherwise; at most 200)."""
    session = get_session()
    if not current_user.is_agent:
        tickets = ticket_service.tickets_of(session, current_user)
    else:
        tickets = ticket_service.queue(session, current_user, ticket_service.QueueFilters(
            mine=args.get("mine", False), unassigned=args.get("unassigned", False), level=args.get("level"),
            status=api_queue_status(args.get("status")), priority=args.get("priority"), category=args.get("category"),
            breached=args.get("breached", False), sort=args.get("sort") or "due"))
    now = utcnow()
    return {"tickets": [ticket_summary(t, now) for t in tickets]}


@bp.post("")
@login_required
@bp.arguments(TicketCreate)
@bp.response(201, TicketDetail)
def create_ticket(data):
    """Open a ticket as the caller: priority from impact x urgency, SLA due times, assignment at L1."""
    session = get_session()
    ticket = ticket_service.create_ticket(
        session, current_user, data["subject"], data["description"], data["category"], data["impact"],
        data["urgency"], current_app.extensions["mesa_sla"], ticket_type=data["type"],
        asset_tag=data["asset_tag"], lang=data.get("lang") or str(get_locale()))
    notify_requester(session, ticket, list(ticket.events))
    session.commit()
    request_delivery()
    return ticket_detail(ticket)


@bp.get("/<int:ticket_id>")
@login_required
@bp.response(200, TicketDetail)
def get_ticket(ticket_id: int):
    """One ticket (404 when the caller may not see it)."""
    return ticket_detail(ticket_service.get_ticket(get_session(), checked_id(ticket_id), current_user))


@bp.post("/<int:ticket_id>/replies")
@login_required
@bp.arguments(ReplyInput)
@bp.response(200, TicketDetail)
def reply(data, ticket_id: int):
    """A public reply: the requester's (reopens a ticket pending on them or resolved) or an agent's (the
    requester is e-mailed; articles it links to count as cited)."""
    def change(session, ticket):
        ticket_service.add_reply(session, ticket, current_user, data["body"], True, data["version"])
        if current_user.is_agent:
            knowledge.cite_articles(session, ticket, data["body"])

    return apply_change(ticket_id, change)


@bp.post("/<int:ticket_id>/notes")
@agent_required
@bp.arguments(ReplyInput)
@bp.response(200, TicketDetail)
def note(data, ticket_id: int):
    """An internal note: agents only, never shown or e-mailed to the requester."""
    return apply_change(ticket_id, lambda session, ticket: ticket_service.add_reply(
        session, ticket, current_user, data["body"], False, data["version"]))


@bp.post("/<int:ticket_id>/assign")
@agent_required
@bp.arguments(AssignInput)
@bp.response(200, TicketDetail)
def assign(data, ticket_id: int):
    """Reassign to an active agent, or to nobody."""
    return apply_change(ticket_id, lambda session, ticket: ticket_service.assign(
        session, ticket, current_user, data["assignee_id"], data["version"]))


@bp.post("/<int:ticket_id>/status")
@agent_required
@bp.arguments(StatusInput)
@bp.response(200, TicketDetail)
def status(data, ticket_id: int):
    """Open / pending customer / closed (resolving and escalating have their own operations)."""
    return apply_change(ticket_id, lambda session, ticket: ticket_service.change_status(
        session, ticket, current_user, data["status"], data["version"]))


@bp.post("/<int:ticket_id>/priority")
@agent_required
@bp.arguments(PriorityInput)
@bp.response(200, TicketDetail)
def priority(data, ticket_id: int):
    """Re-assess impact and urgency; the priority and SLA due times follow."""
    return apply_change(ticket_id, lambda session, ticket: ticket_service.change_priority(
        session, ticket, current_user, data["impact"], data["urgency"], current_app.extensions["mesa_sla"],
        data["version"]))


@bp.post("/<int:ticket_id>/escalate")
@agent_required
@bp.arguments(EscalateInput)
@bp.response(200, TicketDetail)
def escalate(data, ticket_id: int):
    """Escalate L1 -> L2 with a reason."""
    return apply_change(ticket_id, lambda session, ticket: ticket_service.escalate(
        session, ticket, current_user, data["reason"], data["version"]))


@bp.post("/<int:ticket_id>/time")
@agent_required
@bp.arguments(TimeInput)
@bp.response(200, TicketDetail)
def time_spent(data, ticket_id: int):
    """Log minutes spent (1 to 1440 per entry)."""
    return apply_change(ticket_id, lambda session, ticket: ticket_service.log_time(
        session, ticket, current_user, data["minutes"], data["version"], data["note"]))


@bp.post("/<int:ticket_id>/resolve")
@agent_required
@bp.arguments(ResolveInput)
@bp.response(200, TicketDetail)
def resolve(data, ticket_id: int):
    """Resolve with a solution; the requester is asked for a rating."""
    return apply_change(ticket_id, lambda session, ticket: ticket_service.resolve(
        session, ticket, current_user, data["solution"], data["version"]))
