"""Service-level rules of the service desk: priority, SLA, assignment, escalation, replies, survey."""

from datetime import datetime, timedelta, timezone

import pytest

from portal.domain import tickets as svc
from portal.domain.errors import Conflict, Invalid, NotAllowed, NotFound
from portal.domain.models import Role, Team, TicketStatus
from portal.domain.sla import SlaPolicy, priority_for
from portal.domain.users import create_user
from tests.conftest import user_by_role

POLICY = SlaPolicy.parse("1=0.5/4,2=1/8,3=4/24,4=8/72,5=24/120", 0.75)
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def open_ticket(db, requester=None, impact=3, urgency=3, category="vpn", now=T0, **kwargs):
    requester = requester or user_by_role(db, Role.CUSTOMER)
    ticket = svc.create_ticket(db, requester, "VPN drops", "It disconnects every 5 minutes.", category,
                               impact, urgency, POLICY, now=now, **kwargs)
    db.commit()
    return ticket


@pytest.mark.parametrize("impact, urgency, priority", [
    (1, 1, 1), (1, 2, 2), (2, 1, 2), (1, 3, 3), (2, 2, 3), (3, 1, 3), (2, 3, 4), (3, 2, 4), (3, 3, 5)])
def test_priority_follows_the_itil_matrix(impact, urgency, priority):
    assert priority_for(impact, urgency) == priority


def test_sla_policy_parsing_rejects_bad_settings():
    assert POLICY.targets[1] == (timedelta(minutes=30), timedelta(hours=4))
    for bad in ("1=1/2", "1=x/2,2=1/8,3=4/24,4=8/72,5=24/120", "1=0/4,2=1/8,3=4/24,4=8/72,5=24/120"):
        with pytest.raises(ValueError):
            SlaPolicy.parse(bad)


def test_new_ticket_gets_priority_due_times_and_an_l1_agent(db):
    ticket = open_ticket(db, impact=1, urgency=2)
    assert ticket.priority == 2 and ticket.status == TicketStatus.NEW and ticket.level == 1
    assert ticket.response_due_at == T0 + timedelta(hours=1)
    assert ticket.resolution_due_at == T0 + timedelta(hours=8)
    assert ticket.assignee.role == Role.AGENT_L1
    assert [e.kind for e in ticket.events] == ["created", "assigned"]
    assert ticket.events[0].public and not ticket.events[1].public


def test_bad_ticket_input_is_refused_with_a_message(db):
    customer = user_by_role(db, Role.CUSTOMER)
    with pytest.raises(Invalid, match="subject is required"):
        svc.create_ticket(db, customer, "  ", "text", "vpn", 3, 3, POLICY)
    with pytest.raises(Invalid, match="impact must be 1"):
        svc.create_ticket(db, customer, "s", "text", "vpn", 7, 3, POLICY)
    with pytest.raises(Invalid, match="Unknown ticket type"):
        svc.create_ticket(db, customer, "s", "text", "vpn", 3, 3, POLICY, ticket_type="wish")


def test_assignment_goes_to_the_category_team_then_the_least_loaded_agent(db):
    network = Team(name="Network", categories=["vpn", "wifi"])
    db.add(network)
    busy = create_user(db, "busy@example.com", "Busy", "long enough pw", Role.AGENT_L1)
    idle = create_user(db, "idle@example.com", "Idle", "long enough pw", Role.AGENT_L1)
    busy.team = idle.team = network
    db.commit()
    first = open_ticket(db)
    second = open_ticket(db)
    assert {first.assignee.email, second.assignee.email} == {"busy@example.com", "idle@example.com"}
    third = open_ticket(db)
    assert third.assignee.team is network
    # A category no team handles goes to the least-loaded L1 agent of any team.
    other = open_ticket(db, category="printers")
    assert other.assignee.email == "l1@example.com"


def test_manual_reassignment_is_logged(db):
    ticket = open_ticket(db)
    l2 = user_by_role(db, Role.AGENT_L2)
    svc.assign(db, ticket, l2, l2.id, ticket.version)
    db.commit()
    assert ticket.assignee is l2
    assert ticket.events[-1].kind == "assigned" and ticket.events[-1].actor is l2
    with pytest.raises(Invalid, match="active agent"):
        svc.assign(db, ticket, l2, user_by_role(db, Role.CUSTOMER).id, ticket.version)


def test_escalation_by_hand_needs_a_reason_and_moves_to_l2(db):
    ticket = open_ticket(db)
    l1 = user_by_role(db, Role.AGENT_L1)
    with pytest.raises(Invalid, match="reason is required"):
        svc.escalate(db, ticket, l1, " ", ticket.version)
    svc.escalate(db, ticket, l1, "Needs firewall access", ticket.version)
    db.commit()
    assert ticket.level == 2 and ticket.status == TicketStatus.ESCALATED
    assert ticket.assignee.role == Role.AGENT_L2  # L2 agents before admins
    assert ticket.events[-1].body == "Needs firewall access"
    with pytest.raises(Invalid, match="already at L2"):
        svc.escalate(db, ticket, l1, "again", ticket.version)


def test_tickets_near_their_resolution_target_are_due_for_escalation(db):
    ticket = open_ticket(db, impact=1, urgency=1)  # 4 h to resolve; escalates after 3 h
    waiting = open_ticket(db, impact=1, urgency=1)
    svc.change_status(db, waiting, user_by_role(db, Role.AGENT_L1), "pending_customer", waiting.version)
    db.commit()
    assert svc.tickets_due_for_escalation(db, POLICY, now=T0 + timedelta(hours=2, minutes=59)) == []
    assert svc.tickets_due_for_escalation(db, POLICY, now=T0 + timedelta(hours=3)) == [ticket]
    svc.escalate(db, ticket, None, "", now=T0 + timedelta(hours=3))
    db.commit()
    assert ticket.level == 2 and ticket.events[-1].data["automatic"] is True
    assert svc.tickets_due_for_escalation(db, POLICY, now=T0 + timedelta(hours=5)) == []


def test_sla_state_and_breach(db):
    ticket = open_ticket(db, impact=1, urgency=1)
    state = svc.sla_state(ticket, T0 + timedelta(minutes=10))
    assert state["target"] == "response" and state["left"] == timedelta(minutes=20) and not state["breached"]
    assert svc.sla_state(ticket, T0 + timedelta(minutes=31))["breached"]
    l1 = user_by_role(db, Role.AGENT_L1)
    svc.add_reply(db, ticket, l1, "Looking at it", True, ticket.version, now=T0 + timedelta(minutes=5))
    db.commit()
    assert ticket.first_response_at == T0 + timedelta(minutes=5) and ticket.status == TicketStatus.OPEN
    state = svc.sla_state(ticket, T0 + timedelta(hours=5))
    assert state["target"] == "resolution" and state["breached"]
    breached = svc.queue(db, l1, svc.QueueFilters(breached=True), now=T0 + timedelta(hours=5))
    assert breached == [ticket]
    assert svc.queue(db, l1, svc.QueueFilters(breached=True), now=T0 + timedelta(hours=1)) == []


def test_internal_notes_are_for_agents_only(db):
    ticket = open_ticket(db)
    l1, customer = user_by_role(db, Role.AGENT_L1), user_by_role(db, Role.CUSTOMER)
    svc.add_reply(db, ticket, l1, "Customer's router is old", False, ticket.version)
    svc.add_reply(db, ticket, l1, "Please restart the client", True, ticket.version)
    db.commit()
    assert [e.body for e in svc.visible_events(ticket, customer) if e.body] == ["Please restart the client"]
    assert "Customer's router is old" in [e.body for e in svc.visible_events(ticket, l1)]


def test_customer_reply_reopens_a_pending_ticket(db):
    ticket = open_ticket(db)
    l1, customer = user_by_role(db, Role.AGENT_L1), user_by_role(db, Role.CUSTOMER)
    svc.change_status(db, ticket, l1, "pending_customer", ticket.version)
    db.commit()
    svc.add_reply(db, ticket, customer, "Restarted, still failing", True, ticket.version)
    db.commit()
    assert ticket.status == TicketStatus.OPEN


def test_customers_cannot_see_or_touch_other_customers_tickets(db):
    ticket = open_ticket(db)
    other = create_user(db, "other@example.com", "Other", "long enough pw", Role.CUSTOMER)
    with pytest.raises(NotFound):
        svc.get_ticket(db, ticket.id, other)
    with pytest.raises(NotAllowed):
        svc.add_reply(db, ticket, other, "hi", True, ticket.version)
    with pytest.raises(NotAllowed):
        svc.change_status(db, ticket, user_by_role(db, Role.CUSTOMER), "closed", ticket.version)


def test_resolution_requires_a_solution_and_the_survey_is_once(db):
    ticket = open_ticket(db)
    l2, customer = user_by_role(db, Role.AGENT_L2), user_by_role(db, Role.CUSTOMER)
    with pytest.raises(Invalid, match="solution is required"):
        svc.resolve(db, ticket, l2, "", ticket.version)
    with pytest.raises(Invalid, match="once it is resolved"):
        svc.submit_survey(db, ticket, customer, 5)
    svc.resolve(db, ticket, l2, "Replaced the VPN profile.", ticket.version, now=T0 + timedelta(hours=1))
    db.commit()
    assert ticket.status == TicketStatus.RESOLVED and ticket.resolved_at == T0 + timedelta(hours=1)
    with pytest.raises(Invalid, match="from 1 to 5"):
        svc.submit_survey(db, ticket, customer, 9)
    svc.submit_survey(db, ticket, customer, 4, "Quick, thanks")
    db.commit()
    with pytest.raises(Invalid, match="already rated"):
        svc.submit_survey(db, ticket, customer, 5)
    assert ticket.survey.rating == 4


def test_time_spent_adds_up(db):
    ticket = open_ticket(db)
    l1 = user_by_role(db, Role.AGENT_L1)
    svc.log_time(db, ticket, l1, 15, ticket.version, "remote session")
    db.commit()
    svc.log_time(db, ticket, l1, "30", ticket.version)
    db.commit()
    with pytest.raises(Invalid, match="minutes from 1 to 1440"):
        svc.log_time(db, ticket, l1, 0, ticket.version)
    assert svc.total_minutes(ticket) == 45


def test_time_logged_on_a_stale_version_is_a_conflict(db):
    ticket = open_ticket(db)
    l1, l2 = user_by_role(db, Role.AGENT_L1), user_by_role(db, Role.AGENT_L2)
    seen_version = ticket.version
    svc.add_reply(db, ticket, l2, "Checking the VPN logs", False, seen_version)
    db.commit()
    with pytest.raises(Conflict, match="changed by Agent L2"):
        svc.log_time(db, ticket, l1, 20, seen_version)
    assert svc.total_minutes(ticket) == 0
    svc.log_time(db, ticket, l1, 20, ticket.version)
    db.commit()
    assert ticket.version == seen_version + 2  # logging time is a change of the ticket, like a reply


def test_a_stale_version_is_a_conflict_not_an_overwrite(db):
    ticket = open_ticket(db)
    l1, l2 = user_by_role(db, Role.AGENT_L1), user_by_role(db, Role.AGENT_L2)
    seen_version = ticket.version
    svc.change_priority(db, ticket, l2, 1, 1, POLICY, seen_version)
    db.commit()
    with pytest.raises(Conflict, match="changed by"):
        svc.resolve(db, ticket, l1, "Done", seen_version)
    assert ticket.status == TicketStatus.NEW and ticket.priority == 1


def test_resolved_tickets_close_after_the_configured_days(db):
    ticket = open_ticket(db)
    svc.resolve(db, ticket, user_by_role(db, Role.AGENT_L1), "fixed", ticket.version, now=T0)
    db.commit()
    assert svc.tickets_due_for_closing(db, 7, now=T0 + timedelta(days=6)) == []
    with pytest.raises(Invalid, match="resolved more than 7 days ago"):
        svc.close_automatically(db, ticket, 7, now=T0 + timedelta(days=6))
    assert svc.tickets_due_for_closing(db, 7, now=T0 + timedelta(days=7)) == [ticket]
    event = svc.close_automatically(db, ticket, 7, now=T0 + timedelta(days=7))
    db.commit()
    assert ticket.status == TicketStatus.CLOSED and ticket.closed_at == T0 + timedelta(days=7)
    assert event.public and event.actor is None and event.data == {"from": "resolved", "to": "closed",
                                                                   "automatic": True, "after_days": 7}


def test_queue_filters_and_sorts(db):
    low = open_ticket(db, impact=3, urgency=3, category="printers", now=T0)
    high = open_ticket(db, impact=1, urgency=1, category="vpn", now=T0 + timedelta(minutes=1))
    l1 = user_by_role(db, Role.AGENT_L1)
    assert svc.queue(db, l1, svc.QueueFilters(sort="priority"), now=T0) == [high, low]
    assert svc.queue(db, l1, svc.QueueFilters(sort="created"), now=T0) == [high, low]
    assert svc.queue(db, l1, svc.QueueFilters(category="printers"), now=T0) == [low]
    assert svc.queue(db, l1, svc.QueueFilters(priority=1), now=T0) == [high]
    assert svc.queue(db, l1, svc.QueueFilters(mine=True), now=T0) == [high, low]  # soonest due first
    assert svc.queue(db, l1, svc.QueueFilters(unassigned=True), now=T0) == []
    assert svc.queue(db, l1, svc.QueueFilters(level=2), now=T0) == []
    with pytest.raises(NotAllowed):
        svc.queue(db, user_by_role(db, Role.CUSTOMER), svc.QueueFilters())


@pytest.mark.parametrize("field", ["subject", "asset_tag"])
def test_one_line_fields_refuse_line_breaks(db, field):
    values = {"subject": "VPN drops", "asset_tag": "LT-1"}
    values[field] = "LT-1\r\nBcc: x@evil.com"
    with pytest.raises(Invalid, match="one line"):
        svc.create_ticket(db, user_by_role(db, Role.CUSTOMER), values["subject"], "It disconnects.", "vpn", 3, 3,
                          POLICY, asset_tag=values["asset_tag"])
