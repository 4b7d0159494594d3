"""The trends page: every figure over time as a chart with its table, and each chart as CSV (agents)."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import format_date
from sqlalchemy import select

from ..auth import agent_required
from ..charts import line_chart
from ..db import get_session
from ..domain.models import Team, TicketType
from ..domain.numbers import parse_int
from ..domain.trends import GRAINS, TrendFilters, build_trends, filter_agents, grain_for
from ..i18n import CATEGORY_LABELS
from ..trend_text import CHART_TITLES, DEFINITIONS, SERIES_LABELS

bp = Blueprint("trends", __name__, url_prefix="/reports/trends")
PERIODS = (30, 90, 180, 365)
# What the CSV links carry over from the page's query.
QUERY_ARGS = ("days", "by", "category", "type", "priority", "lang", "team", "agent")


def read_query() -> tuple[int, str, TrendFilters]:
    """Period, grain and filters from the query string; values that are not offered are ignored (as in the
    queue's filters), so the page always answers and shows what it applied."""
    args = request.args
    days = parse_int(args.get("days"))
    grain = args.get("by") if args.get("by") in GRAINS else "week"
    priority = parse_int(args.get("priority"))
    team = parse_int(args.get("team"))
    agent = parse_int(args.get("agent"))
    filters = TrendFilters(
        category=args.get("category") if args.get("category") in CATEGORY_LABELS else None,
        ticket_type=args.get("type") if args.get("type") in {t.value for t in TicketType} else None,
        priority=priority if priority in range(1, 6) else None,
        lang=args.get("lang") if args.get("lang") in ("es", "en") else None,
        team_id=team if team is not None and get_session().get(Team, team) is not None else None,
        agent_id=agent if agent is not None and agent in {a.id for a in filter_agents(get_session())}
        else None)
    days = days if days in PERIODS else 90
    return days, grain_for(days, grain), filters


def _date(bucket) -> str:
    return format_date(bucket, "d MMM")


@bp.get("/")
@agent_required
def page():
    """The charts for the chosen period, grain and ticket filters."""
    days, grain, filters = read_query()
    charts = build_trends(get_session(), days, grain, filters)
    drawn = {chart.key: line_chart(f"chart-{chart.key}", str(CHART_TITLES[chart.key]), chart.buckets,
                                   [(str(SERIES_LABELS[s.key]), s.values) for s in chart.series if s.drawn],
                                   chart.unit, _date) for chart in charts}
    teams = list(get_session().scalars(select(Team).order_by(Team.name)))
    agents = filter_agents(get_session())
    return render_template("reports/trends.html", charts=charts, drawn=drawn, days=days, grain=grain,
                           filters=filters, periods=PERIODS, grains=GRAINS, teams=teams, agents=agents,
                           categories=CATEGORY_LABELS, types=[t.value for t in TicketType], titles=CHART_TITLES,
                           definitions=DEFINITIONS, labels=SERIES_LABELS, date_label=_date,
                           filter_args={name: request.args[name] for name in QUERY_ARGS if request.args.get(name)})


@bp.get("/<key>.csv")
@agent_required
def chart_csv(key: str):
    """One chart's table as CSV: the period start (ISO date) and one column per line."""
    days, grain, filters = read_query()
    chart = next((c for c in build_trends(get_session(), days, grain, filters) if c.key == key), None)
    if chart is None:
        abort(404)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["period_start", *(s.key for s in chart.series)])
    for bucket, values in chart.rows():
        writer.writerow([bucket.date().isoformat(), *("" if v is None else f"{v:g}" for v in values)])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="mesa-{key}-{days}d-by-{grain}.csv"'})
