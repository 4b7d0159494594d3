"""The API's request and response schemas (marshmallow): flask-smorest checks requests against them and
writes them into the OpenAPI document, so the reference and the code cannot drift apart."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from indexer.articles import LANGUAGES

from ..domain.api_tokens import SCOPES
from ..domain.knowledge import TRANSITIONS
from ..domain.models import Role, TicketStatus, TicketType
from ..domain.tickets import AGENT_STATUS_CHOICES, SORTS
from ..i18n import CATEGORY_LABELS

LEVEL = validate.OneOf((1, 2, 3))
LEVEL_HELP = "1 (high), 2 (medium) or 3 (low)"


class Strict(ma.Schema):
    """Unknown fields are refused (a typo in a field name must not be silently ignored)."""

    class Meta:
        unknown = ma.RAISE


class ErrorSchema(Strict):
    """Every error of the API: a status code 4xx/5xx and this body."""

    error = fields.String(required=True, metadata={"description": "What went wrong, in the UI language."})


# ----- search ------------------------------------------------------------------------------------------


class SearchArgs(Strict):
    q = fields.String(required=True, metadata={"description": "The question or words to search for."})
    k = fields.Integer(metadata={"description": "How many results (1 to MESA_SEARCH_MAX_K; default 5)."})
    lang = fields.String(validate=validate.OneOf(LANGUAGES),
                         metadata={"description": "Only articles in this language."})


class SuggestArgs(Strict):
    q = fields.String(required=True, metadata={"description": "What the person typed so far (3 characters "
                                                             "or more give suggestions)."})


class Why(Strict):
    section = fields.String(required=True)
    semantic = fields.Float(required=True, allow_none=True)
    keywords = fields.List(fields.String(), required=True)
    retrievers = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)


class Translation(Strict):
    slug = fields.String(required=True)
    lang = fields.String(required=True)
    title = fields.String(required=True)
    url = fields.String(required=True)


class SuggestHit(Strict):
    slug = fields.String(required=True)
    title = fields.String(required=True)
    url = fields.String(required=True)
    lang = fields.String(required=True)
    category = fields.String(required=True)
    section = fields.String(required=True)
    snippet = fields.String(required=True)
    score = fields.Float(required=True)
    confidence = fields.Float(required=True, allow_none=True,
                              metadata={"description": "Estimated probability that it answers the question "
                                                       "(null: the index has no calibration)."})
    why = fields.Nested(Why, required=True)


class SearchHit(SuggestHit):
    answers = fields.Boolean(required=True)
    translations = fields.List(fields.Nested(Translation), required=True)


class SearchResult(Strict):
    query = fields.String(required=True)
    answered = fields.Boolean(required=True)
    threshold = fields.Float(required=True, allow_none=True)
    results = fields.List(fields.Nested(SearchHit), required=True)


class SuggestResult(Strict):
    query = fields.String(required=True)
    answered = fields.Boolean(required=True)
    results = fields.List(fields.Nested(SuggestHit), required=True)


# ----- who am I ----------------------------------------------------------------------------------------


class Me(Strict):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    role = fields.Enum(Role, by_value=True, required=True)
    auth = fields.String(required=True, validate=validate.OneOf(("token", "session")))
    scope = fields.String(required=True, validate=validate.OneOf(SCOPES))


# ----- articles ----------------------------------------------------------------------------------------


class ArticleListArgs(Strict):
    category = fields.String(metadata={"description": "Only this category."})
    lang = fields.String(validate=validate.OneOf(LANGUAGES))
    status = fields.String(validate=validate.OneOf(("draft", "review", "published", "archived")),
                           metadata={"description": "Only articles in this state (agents; others see "
                                                    "published articles only)."})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 2**31 - 1))


class ArticleSummary(Strict):
    slug = fields.String(required=True)
    title = fields.String(required=True)
    lang = fields.String(required=True)
    category = fields.String(required=True)
    topic = fields.String(required=True)
    tags = fields.List(fields.String(), required=True)
    visibility = fields.String(required=True, validate=validate.OneOf(("public", "internal")))
    status = fields.String(required=True)
    version = fields.Integer(required=True, metadata={"description": "Send it back with a change: a change "
                                                                     "to a newer version is refused (409)."})
    updated_at = fields.DateTime(required=True)
    url = fields.String(required=True)


class ArticleDetail(ArticleSummary):
    body = fields.String(required=True, metadata={"description": "The article's Markdown."})


class ArticleList(Strict):
    articles = fields.List(fields.Nested(ArticleSummary), required=True)
    total = fields.Integer(required=True)


class ArticleInput(Strict):
    title = fields.String(required=True)
    body = fields.String(required=True, metadata={"description": "Markdown."})
    lang = fields.String(load_default="en", validate=validate.OneOf(LANGUAGES))
    category = fields.String(load_default="general")
    tags = fields.List(fields.String(validate=validate.Length(max=40)), load_default=list,
                       validate=validate.Length(max=10))
    visibility = fields.String(load_default="public", validate=validate.OneOf(("public", "internal")))
    topic = fields.String(load_default="")


class ArticleCreate(ArticleInput):
    ticket_id = fields.Integer(validate=validate.Range(1, 2**31 - 1),
                               metadata={"description": "The ticket this article is promoted from "
                                                        "(L2 agents and admins)."})


class ArticleEdit(ArticleInput):
    version = fields.Integer(required=True)
    note = fields.String(load_default="", validate=validate.Length(max=300),
                         metadata={"description": "What changed (kept with the revision)."})


class ArticleStateChange(Strict):
    action = fields.String(required=True, validate=validate.OneOf(tuple(TRANSITIONS)),
                           metadata={"description": "submit (draft to review), publish, send_back (with a "
                                                    "comment), archive, reopen."})
    version = fields.Integer(required=True)
    comment = fields.String(load_default="", validate=validate.Length(max=5000))


# ----- tickets -----------------------------------------------------------------------------------------


class Person(Strict):
    id = fields.Integer(required=True)
    name = fields.String(required=True)


class Sla(Strict):
    target = fields.String(required=True, validate=validate.OneOf(("response", "resolution")))
    due = fields.DateTime(required=True)
    breached = fields.Boolean(required=True)


class TicketSummary(Strict):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    subject = fields.String(required=True)
    status = fields.Enum(TicketStatus, by_value=True, required=True)
    type = fields.Enum(TicketType, by_value=True, required=True)
    category = fields.String(required=True)
    priority = fields.Integer(required=True, metadata={"description": "1 (critical) to 5 (planning)."})
    impact = fields.Integer(required=True)
    urgency = fields.Integer(required=True)
    level = fields.Integer(required=True)
    lang = fields.String(required=True)
    requester = fields.Nested(Person, required=True)
    assignee = fields.Nested(Person, required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    version = fields.Integer(required=True, metadata={"description": "Send it back with every change: a "
                                                                     "change to a newer version is refused (409)."})
    sla = fields.Nested(Sla, required=True)


class TicketEventOut(Strict):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"description": "created, reply, note, status, assigned, "
                                                                 "priority, escalated, time, resolved, survey."})
    public = fields.Boolean(required=True)
    body = fields.String(required=True)
    actor = fields.Nested(Person, required=True, allow_none=True)
    data = fields.Dict(required=True)
    created_at = fields.DateTime(required=True)


class TicketDetail(TicketSummary):
    description = fields.String(required=True)
    solution = fields.String(required=True)
    asset_tag = fields.String(required=True)
    events = fields.List(fields.Nested(TicketEventOut), required=True,
                         metadata={"description": "What the caller may see: customers never see internal "
                                                  "notes or internal changes."})
    minutes_spent = fields.Integer(required=True, allow_none=True,
                                   metadata={"description": "Time logged by agents (null for customers)."})


class TicketList(Strict):
    tickets = fields.List(fields.Nested(TicketSummary), required=True)


class TicketListArgs(Strict):
    status = fields.String(validate=validate.OneOf(("open", "all", *(s.value for s in TicketStatus))),
                           metadata={"description": "Agents: open (default: every open status), all, or one "
                                                    "status. Customers always get all their own tickets."})
    mine = fields.Boolean(metadata={"description": "Agents: only tickets assigned to me."})
    unassigned = fields.Boolean()
    level = fields.Integer(validate=validate.OneOf((1, 2)))
    priority = fields.Integer(validate=validate.Range(1, 5))
    category = fields.String()
    breached = fields.Boolean(metadata={"description": "Agents: only tickets past their SLA target."})
    sort = fields.String(validate=validate.OneOf(SORTS))


class TicketCreate(Strict):
    subject = fields.String(required=True, metadata={"description": "One line, at most 200 characters."})
    description = fields.String(required=True, metadata={"description": "Markdown, at most 20,000 characters."})
    category = fields.String(load_default="general", validate=validate.OneOf(tuple(CATEGORY_LABELS)))
    type = fields.String(load_default="incident", validate=validate.OneOf(tuple(t.value for t in TicketType)))
    impact = fields.Integer(load_default=3, validate=LEVEL, metadata={"description": "Who is affected: "
                                                                                     + LEVEL_HELP})
    urgency = fields.Integer(load_default=2, validate=LEVEL, metadata={"description": "How urgent: " + LEVEL_HELP})
    asset_tag = fields.String(load_default="")
    lang = fields.String(validate=validate.OneOf(("es", "en")),
                         metadata={"description": "Language of the ticket's e-mails (default: the UI language)."})


class Versioned(Strict):
    version = fields.Integer(required=True, metadata={"description": "The ticket's version you saw."})


class ReplyInput(Versioned):
    body = fields.String(required=True, metadata={"description": "Markdown, at most 20,000 characters."})


class AssignInput(Versioned):
    assignee_id = fields.Integer(required=True, allow_none=True, validate=validate.Range(0, 2**31 - 1),
                                 metadata={"description": "An active agent's id; null (or 0) for nobody."})


class StatusInput(Versioned):
    status = fields.String(required=True, validate=validate.OneOf(tuple(s.value for s in AGENT_STATUS_CHOICES)))


class PriorityInput(Versioned):
    impact = fields.Integer(required=True, validate=LEVEL)
    urgency = fields.Integer(required=True, validate=LEVEL)


class EscalateInput(Versioned):
    reason = fields.String(required=True)


class TimeInput(Versioned):
    minutes = fields.Integer(required=True, metadata={"description": "1 to 1440."})
    note = fields.String(load_default="")


class ResolveInput(Versioned):
    solution = fields.String(required=True)


# ----- reports -----------------------------------------------------------------------------------------


class ReportArgs(Strict):
    days = fields.Integer(load_default=30, validate=validate.OneOf((7, 30, 90, 365)))


class QuestionCount(Strict):
    query = fields.String(required=True)
    count = fields.Integer(required=True)


class ArticleViews(Strict):
    slug = fields.String(required=True)
    title = fields.String(required=True)
    views = fields.Integer(required=True)


class ArticleVotes(Strict):
    slug = fields.String(required=True)
    title = fields.String(required=True)
    votes = fields.Integer(required=True)
    not_helpful = fields.Integer(required=True)


class ReportOut(Strict):
    since = fields.DateTime(required=True)
    until = fields.DateTime(required=True)
    funnel = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                         metadata={"description": "search, suggestion_shown, article_opened, solved, "
                                                  "ticket_created: how many in the period."})
    deflection_rate = fields.Float(required=True, allow_none=True)
    email_funnel = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                               metadata={"description": "By e-mail, apart from the portal's funnel: "
                                                        "suggestion_shown (articles acknowledgements offered), "
                                                        "tickets_offered, solved (tickets closed by the mail's "
                                                        "\"This solved my problem\")."})
    email_deflection_rate = fields.Float(required=True, allow_none=True)
    unanswered_questions = fields.List(fields.Nested(QuestionCount), required=True)
    ticket_questions = fields.List(fields.Nested(QuestionCount), required=True)
    top_articles = fields.List(fields.Nested(ArticleViews), required=True)
    unhelpful_articles = fields.List(fields.Nested(ArticleVotes), required=True)
    tickets_created = fields.Integer(required=True)
    tickets_resolved = fields.Integer(required=True)
    response_met = fields.Float(required=True, allow_none=True)
    resolution_met = fields.Float(required=True, allow_none=True)
    open_breached = fields.Integer(required=True)
    csat_average = fields.Float(required=True, allow_none=True)
    csat_satisfied = fields.Float(required=True, allow_none=True)
    csat_responses = fields.Integer(required=True)


class TrendArgs(Strict):
    days = fields.Integer(load_default=90, validate=validate.OneOf((30, 90, 180, 365)))
    by = fields.String(load_default="week", validate=validate.OneOf(("day", "week")),
                       metadata={"description": "Periods of one UTC day or one week from Monday (more than 120 "
                                                "periods are drawn by week)."})
    category = fields.String(validate=validate.OneOf(tuple(CATEGORY_LABELS)))
    type = fields.String(validate=validate.OneOf([t.value for t in TicketType]))
    priority = fields.Integer(validate=validate.Range(1, 5))
    lang = fields.String(validate=validate.OneOf(("es", "en")))
    team = fields.Integer(validate=validate.Range(1, 2**31 - 1), metadata={"description": "A team id."})
    agent = fields.Integer(validate=validate.Range(1, 2**31 - 1),
                           metadata={"description": "An agent's user id: the tickets assigned to them."})


class TrendSeries(Strict):
    key = fields.String(required=True)
    label = fields.String(required=True)
    values = fields.List(fields.Float(allow_none=True), required=True,
                         metadata={"description": "One value per period; null where there is nothing to compute "
                                                  "it from."})
    drawn = fields.Boolean(required=True, metadata={"description": "False: another unit than the chart's."})


class TrendChart(Strict):
    key = fields.String(required=True)
    title = fields.String(required=True)
    definition = fields.String(required=True, metadata={"description": "How the figure is computed."})
    unit = fields.String(required=True, validate=validate.OneOf(("count", "percent", "hours", "rating")))
    filtered = fields.Boolean(required=True, metadata={"description": "Whether the ticket filters apply."})
    periods = fields.List(fields.Date(), required=True, metadata={"description": "The start of each period."})
    series = fields.List(fields.Nested(TrendSeries), required=True)


class TrendsOut(Strict):
    days = fields.Integer(required=True)
    by = fields.String(required=True)
    charts = fields.List(fields.Nested(TrendChart), required=True)


class GroupFigures(Strict):
    key = fields.String(required=True, metadata={"description": "The category, type or priority."})
    created = fields.Integer(required=True)
    response_met = fields.Float(required=True, allow_none=True)
    resolution_met = fields.Float(required=True, allow_none=True)
    first_response_hours_median = fields.Float(required=True, allow_none=True)
    first_response_hours_p90 = fields.Float(required=True, allow_none=True)
    resolution_hours_median = fields.Float(required=True, allow_none=True)
    resolution_hours_p90 = fields.Float(required=True, allow_none=True)


class CountOf(Strict):
    key = fields.String(required=True)
    count = fields.Integer(required=True)


class ArticleCount(Strict):
    slug = fields.String(required=True)
    title = fields.String(required=True)
    count = fields.Integer(required=True)


class ArticleComment(Strict):
    slug = fields.String(required=True)
    title = fields.String(required=True)
    comment = fields.String(required=True)


class SurveyComment(Strict):
    ticket_id = fields.Integer(required=True)
    rating = fields.Integer(required=True)
    comment = fields.String(required=True)


class BreakdownsOut(Strict):
    since = fields.DateTime(required=True)
    until = fields.DateTime(required=True)
    total = fields.Nested(GroupFigures, required=True)
    by_priority = fields.List(fields.Nested(GroupFigures), required=True)
    by_type = fields.List(fields.Nested(GroupFigures), required=True)
    by_category = fields.List(fields.Nested(GroupFigures), required=True)
    escalation_rate = fields.Float(required=True, allow_none=True)
    reopen_rate = fields.Float(required=True, allow_none=True)
    backlog_by_age_days = fields.List(fields.Nested(CountOf), required=True)
    comments = fields.List(fields.Nested(SurveyComment), required=True)
    minutes_by_category = fields.List(fields.Nested(CountOf), required=True)
    minutes_by_agent = fields.List(fields.Nested(CountOf), required=True)
    deflecting_articles = fields.List(fields.Nested(ArticleCount), required=True)
    stale_articles = fields.List(fields.Nested(ArticleCount), required=True)
    unhelpful_comments = fields.List(fields.Nested(ArticleComment), required=True)


class GapArgs(Strict):
    days = fields.Integer(load_default=30, validate=validate.OneOf((7, 30, 90)))


class GapOut(Strict):
    title = fields.String(required=True)
    size = fields.Integer(required=True)
    trend = fields.String(required=True, validate=validate.OneOf(("rising", "falling", "steady")))
    first_half = fields.Integer(required=True)
    second_half = fields.Integer(required=True)
    languages = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    examples = fields.List(fields.String(), required=True)
    ticket_ids = fields.List(fields.Integer(), required=True)


class GapsOut(Strict):
    questions = fields.Integer(required=True, metadata={"description": "Unanswered questions in the period."})
    topics = fields.List(fields.Nested(GapOut), required=True,
                         metadata={"description": "Groups of 2 or more by meaning, biggest first."})
    asked_once = fields.Integer(required=True)
