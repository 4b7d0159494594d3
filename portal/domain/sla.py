"""ITIL priority (impact x urgency) and SLA targets per priority."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# 1 = high, 2 = medium, 3 = low, for both impact and urgency.
LEVELS = (1, 2, 3)
PRIORITY_NAMES = {1: "critical", 2: "high", 3: "medium", 4: "low", 5: "planning"}


def priority_for(impact: int, urgency: int) -> int:
    """The ITIL matrix: high/high is 1 (critical) ... low/low is 5 (planning)."""
    if impact not in LEVELS or urgency not in LEVELS:
        raise ValueError(f"impact and urgency must be 1, 2 or 3, not {impact!r} and {urgency!r}")
    return impact + urgency - 1


@dataclass(frozen=True)
class SlaPolicy:
    """First-response and resolution targets per priority, and when to escalate automatically."""

    targets: dict[int, tuple[timedelta, timedelta]]
    escalate_at: float = 0.75

    @classmethod
    def parse(cls, text: str, escalate_at: float = 0.75) -> "SlaPolicy":
        """Read ``"1=0.5/4,2=1/8,..."``: per priority, hours to first response / to resolution."""
        targets = {}
        try:
            for part in text.split(","):
                priority, hours = part.strip().split("=")
                response, resolution = (float(h) for h in hours.split("/"))
                if response <= 0 or resolution <= 0:
                    raise ValueError
                targets[int(priority)] = (timedelta(hours=response), timedelta(hours=resolution))
        except ValueError:
            raise ValueError(f"SLA targets {text!r} must look like '1=0.5/4,2=1/8,3=4/24,4=8/72,5=24/120' "
                             "(hours to first response / to resolution per priority)") from None
        missing = set(PRIORITY_NAMES) - set(targets)
        if missing:
            raise ValueError(f"SLA targets {text!r} miss priorities {sorted(missing)}")
        if not 0 < escalate_at <= 1:
            raise ValueError("the escalation point must be a fraction of the resolution time in (0, 1]")
        return cls(targets, escalate_at)

    def due_times(self, priority: int, start: datetime) -> tuple[datetime, datetime]:
        """(first response due, resolution due) for a ticket of this priority opened at ``start``."""
        response, resolution = self.targets[priority]
        return start + response, start + resolution

    def escalation_time(self, created_at: datetime, resolution_due_at: datetime) -> datetime:
        """When an unresolved L1 ticket is escalated to L2 automatically."""
        return created_at + (resolution_due_at - created_at) * self.escalate_at


def target_outcome(due: datetime, done: datetime | None, closed_at: datetime | None, now: datetime) -> str | None:
    """How one SLA target of a ticket turned out, for the reports: "met" (done by its due time), "missed" (done
    later, or not done when it fell due), or None: not decided yet (not due, not done), or not the desk's to meet
    (the ticket was closed without it before it fell due: the requester solved it with an article or said it
    was fixed)."""
    if done is not None:
        return "met" if done <= due else "missed"
    if closed_at is not None and closed_at <= due:
        return None
    return "missed" if due <= now else None
