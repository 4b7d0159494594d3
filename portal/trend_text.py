"""What the trends page calls each chart and line, and how it says each is computed (shown under the chart)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

CHART_TITLES = {
    "self_service": _l("Self-service: questions, solved by an article, tickets"),
    "deflection": _l("Deflection rate"),
    "unanswered": _l("Questions no article answered"),
    "volume": _l("Tickets created and resolved"),
    "sla": _l("SLA compliance"),
    "times": _l("First response and resolution times (median)"),
    "backlog": _l("Backlog: open tickets"),
    "escalation": _l("Escalated to L2"),
    "csat": _l("Satisfaction"),
    "reopens": _l("Reopened after a resolution"),
    "time_spent": _l("Time spent by agents"),
}
DEFINITIONS = {
    "self_service": _l("Portal questions a person settled on (a burst of suggestions while typing is one), "
                       "“This solved my problem” clicks, and tickets created from the portal, per period."),
    "deflection": _l("Portal: solved by an article ÷ (solved by an article + tickets created from the portal): "
                     "of those who asked for help, the share helped without a ticket. E-mail: tickets closed by "
                     "“This solved my problem” in their acknowledgement ÷ tickets whose acknowledgement offered "
                     "articles. Per period."),
    "unanswered": _l("Share of the questions whose best result was below the answer threshold."),
    "volume": _l("Tickets created in the period, and tickets resolved in it (whenever created)."),
    "sla": _l("Per period in which targets fell due, over all tickets: met when the first response (or the "
              "resolution) came by its due time, missed when it came later or had not come when due. Targets "
              "not yet due are not counted yet."),
    "times": _l("Median hours from creation to the first response, by the period of the response; and to "
                "the resolution, by the period of the resolution."),
    "backlog": _l("Tickets open at the end of each period (created before it, not yet resolved)."),
    "escalation": _l("Share of the tickets created in the period that are at level 2 now."),
    "csat": _l("Average rating (1–5) of the survey answers given in the period; the table also has how many."),
    "reopens": _l("Share of the tickets resolved in the period that were reopened after a resolution."),
    "time_spent": _l("Hours agents logged on the tickets in the period."),
}
SERIES_LABELS = {
    "search": _l("Questions"),
    "solved": _l("Solved by an article"),
    "ticket_created": _l("Tickets from the portal"),
    "deflection_rate": _l("Portal (%)"),
    "email_deflection_rate": _l("E-mail acknowledgement (%)"),
    "unanswered_share": _l("Unanswered (%)"),
    "created": _l("Created"),
    "resolved": _l("Resolved"),
    "response_met": _l("First response in time (%)"),
    "resolution_met": _l("Resolved in time (%)"),
    "first_response_hours": _l("First response (hours)"),
    "resolution_hours": _l("Resolution (hours)"),
    "open_at_end": _l("Open"),
    "escalated_share": _l("Escalated (%)"),
    "csat_average": _l("Average rating"),
    "csat_responses": _l("Answers"),
    "reopened_share": _l("Reopened (%)"),
    "hours_spent": _l("Hours"),
}
