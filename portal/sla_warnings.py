"""The desk sweep's SLA warnings: agents are told by e-mail when an open ticket has used MESA_SLA_WARNING_AT
of its time to first response or to resolution, once per ticket and target (portal/domain/sla_warnings.py
records it; the record and the e-mails are one transaction)."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .agent_notifications import Notice, responsible_agents, send
from .domain import sla_warnings
from .domain.agent_mail_preferences import wants
from .domain.models import AGENT_ROLES

log = logging.getLogger(__name__)


def check_warning_share(value) -> float:
    """MESA_SLA_WARNING_AT as a share in (0, 1); RuntimeError naming the setting otherwise."""
    if not isinstance(value, (int, float)) or not 0 < value < 1:
        raise RuntimeError(f"MESA_SLA_WARNING_AT={value!r} must be a share of the SLA time between 0 and 1, "
                           "e.g. 0.8")
    return float(value)


def warn_due(session: Session, app: Flask, now: datetime) -> list[tuple[int, str]]:
    """Warn the responsible agents of every ticket about to miss a target, each ticket in its own transaction;
    returns the (ticket id, target) pairs warned now."""
    warned = []
    warn_at = check_warning_share(app.config["MESA_SLA_WARNING_AT"])
    due = [(item.ticket.id, item) for item in sla_warnings.due_warnings(session, warn_at, now)]
    for ticket_id, item in due:
        try:
            if sla_warnings.record(session, ticket_id, item.target, now):
                for agent in responsible_agents(session, item.ticket):
                    if agent.active and agent.role in AGENT_ROLES and wants(session, agent, "sla_warning"):
                        send(session, item.ticket, Notice("sla_warning", agent, None, target=item.target,
                                                          share=int(item.share * 100)))
                warned.append((ticket_id, item.target))
            session.commit()
        except SQLAlchemyError:  # the ticket was deleted meanwhile, say: the next sweep tries again
            session.rollback()
            log.warning("desk sweep: could not warn about ticket %s", ticket_id, exc_info=True)
    return warned
