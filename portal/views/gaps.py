"""The FAQ to write: the period's unanswered questions grouped by meaning, and a draft article from a group."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _

from ..auth import agent_required
from ..db import get_session
from ..domain import gaps
from ..domain.models import utcnow
from ..domain.numbers import parse_id, parse_int
from ..gap_service import question_vectors

bp = Blueprint("gaps", __name__, url_prefix="/reports/gaps")
PERIODS = (7, 30, 90)
MAX_DRAFT_QUESTIONS = 60  # ids a draft link carries at most (the most central of the group)


@bp.get("/")
@agent_required
def page():
    """The groups of the last 7, 30 (default) or 90 days, biggest first; questions asked once listed apart."""
    days = parse_int(request.args.get("days"))
    days = days if days in PERIODS else 30
    since, until = gaps.period(days, utcnow())
    questions = gaps.unanswered_questions(get_session(), since, until)
    vectors = question_vectors(current_app)
    groups = gaps.group_questions(questions, vectors.vectors([q.text for q in questions]), vectors.max_distance,
                                  since, until) if questions else []
    solved = gaps.solved_without_article(get_session(), since, until)
    same_solution = [g for g in gaps.group_questions(solved, vectors.vectors([q.solution for q in solved]),
                                                     vectors.max_distance, since, until) if g.size >= 2] if solved else []
    return render_template("reports/gaps.html", days=days, periods=PERIODS, questions=questions,
                           topics=[g for g in groups if g.size >= 2], once=[g.title for g in groups if g.size == 1],
                           same_solution=same_solution, draft_limit=MAX_DRAFT_QUESTIONS)


@bp.get("/draft")
@agent_required
def draft():
    """The editor with a draft from a group's questions (not saved until the agent saves it)."""
    from .kb import render_editor

    event_ids = [i for i in (parse_id(v) for v in request.args.getlist("event")) if i][:MAX_DRAFT_QUESTIONS]
    ticket_ids = [i for i in (parse_id(v) for v in request.args.getlist("ticket")) if i][:MAX_DRAFT_QUESTIONS]
    questions = gaps.questions_by_id(get_session(), event_ids, ticket_ids)
    if not questions:
        return render_template("error.html", status=400, message=_(
            "None of these questions exists any more: open the FAQ to write again and pick a group.")), 400
    return render_editor(gaps.draft_from_gap(get_session(), questions))[0]

