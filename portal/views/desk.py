"""The agents' queue."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user

from ..auth import agent_required
from ..db import get_session
from ..domain import tickets as ticket_service
from ..domain.models import TicketStatus, utcnow
from ..domain.numbers import parse_int

bp = Blueprint("desk", __name__, url_prefix="/desk")


def _int_arg(name: str, allowed) -> int | None:
    """A whole-number filter of the query string when it is one of ``allowed``, else None."""
    value = parse_int(request.args.get(name))
    return value if value in allowed else None


def read_filters() -> ticket_service.QueueFilters:
    """Queue filters from the query string; unknown values are ignored rather than failing."""
    status = request.args.get("status") or ticket_service.ALL_OPEN
    if status not in (ticket_service.ALL_OPEN, ticket_service.ANY_STATUS, *(s.value for s in TicketStatus)):
        status = ticket_service.ALL_OPEN
    return ticket_service.QueueFilters(
        mine=request.args.get("mine") == "1",
        unassigned=request.args.get("unassigned") == "1",
        level=_int_arg("level", (1, 2)),
        status=status,
        priority=_int_arg("priority", range(1, 6)),
        category=request.args.get("category") or None,
        breached=request.args.get("breached") == "1",
        sort=request.args.get("sort") if request.args.get("sort") in ticket_service.SORTS else "due",
    )


@bp.get("/")
@agent_required
def queue():
    """Tickets with their SLA clocks. Reading only: the sweep (portal/desk_sweep.py) escalates and closes."""
    session = get_session()
    now = utcnow()
    filters = read_filters()
    tickets = ticket_service.queue(session, current_user, filters, now)
    rows = [(t, ticket_service.sla_state(t, now)) for t in tickets]
    return render_template("desk/queue.html", rows=rows, filters=filters, statuses=[s.value for s in TicketStatus],
                           all_open=ticket_service.ALL_OPEN, any_status=ticket_service.ANY_STATUS)
