"""Demo data: months of a service desk's life (questions, suggestions, articles opened, self-service solved,
tickets with replies, escalations, SLA, time spent, surveys, votes) so the desk and the reports of a fresh
install show something real to look at, and a way to take all of it out again.

Everything made here is marked: demo people have addresses at ``DEMO_DOMAIN`` (and cannot sign in: no
password, and demo agents are inactive so no real ticket is ever assigned to them), demo funnel events and votes
carry browser-session ids starting with ``DEMO_SESSION``, and demo tickets are those of demo requesters.
``remove`` deletes exactly that. Questions are put to the real search (``classify``), so whether a demo
question counts as answered is what the index says, not what this module assumes.
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from .demo_scenarios import AGENTS, CUSTOMERS, FIRST_REPLIES, PROBLEMS, SURVEY_COMMENTS, Problem
from .domain.models import (AgentMailPreferences, Article, ArticleFeedback, ArticleTicketLink, Attachment,
                            AttachmentBlob, InboundMail, OutboxMessage, PortalEvent, Role, SlaWarning,
                            SurveyResponse, Team, Ticket, TicketEvent, TicketStatus, TicketSuggestion, TicketType,
                            TimeEntry, User, utcnow)
from .domain.sla import SlaPolicy, priority_for

DEMO_DOMAIN = "demo.mesa.invalid"
DEMO_SESSION = "demo-"
NO_PASSWORD = "!demo"  # not a hash: nobody can sign in as a demo person


@dataclass(frozen=True)
class Answer:
    """What the search said about a question: how many results, whether the best one is an answer, its
    confidence, and the slugs it would suggest (the confident ones, best first)."""

    results: int
    answered: bool
    confidence: float | None
    slugs: tuple[str, ...]


Classifier = Callable[[str], Answer]


@dataclass
class DemoCounts:
    """How much demo data was made or removed."""

    people: int = 0
    tickets: int = 0
    portal_events: int = 0
    surveys: int = 0
    votes: int = 0


class DemoDataPresent(Exception):
    """The database already holds demo data (seed it once; `flask demo remove` first to seed again)."""


def demo_ticket_count(session: Session) -> int:
    """How many tickets are demo tickets (0: no demo data)."""
    return session.scalar(select(func.count()).select_from(Ticket).join(User, Ticket.requester_id == User.id)
                          .where(User.email.like(f"%@{DEMO_DOMAIN}"))) or 0


def _address(name: str) -> str:
    """A demo address made from a name: 'Lucía Fernández' -> lucia.fernandez@demo.mesa.invalid."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return f"{'.'.join(plain.split())}@{DEMO_DOMAIN}"


def _people(session: Session) -> tuple[list[User], dict[int, list[User]]]:
    """The demo customers and the (inactive) demo agents by level."""
    team = session.scalar(select(Team).order_by(Team.id).limit(1))
    customers = [User(email=_address(name), name=name, password_hash=NO_PASSWORD, role=Role.CUSTOMER,
                      email_verified_at=utcnow()) for name, _ in CUSTOMERS]
    agents: dict[int, list[User]] = {1: [], 2: []}
    for name, level in AGENTS:
        agents[level].append(User(email=_address(name), name=name, password_hash=NO_PASSWORD, active=False,
                                  role=Role.AGENT_L1 if level == 1 else Role.AGENT_L2, team=team,
                                  email_verified_at=utcnow()))
    session.add_all(customers + agents[1] + agents[2])
    return customers, agents


class _Desk:
    """Plays the days of the period one visit at a time, adding rows to the session."""

    def __init__(self, session: Session, policy: SlaPolicy, classify: Classifier, rng: random.Random,
                 now: datetime, auto_close_days: int, published: set[str]):
        self.session, self.policy, self.classify, self.rng, self.now = session, policy, classify, rng, now
        self.auto_close_days = auto_close_days
        self.published = published
        self.answers: dict[str, Answer] = {}
        self.articles = {a.slug: a for a in session.scalars(select(Article).where(Article.slug.in_(published)))}
        self.customers, self.agents = _people(session)
        self.counts = DemoCounts(people=len(self.customers) + sum(len(a) for a in self.agents.values()))
        self.visits = 0

    def answer(self, question: str) -> Answer:
        """The search's answer to a question, asked once per distinct question."""
        if question not in self.answers:
            self.answers[question] = self.classify(question)
        return self.answers[question]

    def event(self, kind: str, session_id: str, user: User, at: datetime, **fields) -> PortalEvent:
        """One funnel event of a demo visit."""
        event = PortalEvent(kind=kind, session_id=session_id, user_id=None if user is None else user.id,
                            created_at=at, **fields)
        self.session.add(event)
        self.counts.portal_events += 1
        return event

    def visit(self, problem: Problem, at: datetime, email: bool) -> None:
        """Someone with this problem: asks the portal (or writes an e-mail), maybe solves it, maybe opens a
        ticket."""
        same_lang = [c for c, (_, lang) in zip(self.customers, CUSTOMERS) if lang == problem.lang]
        person = self.rng.choice(same_lang if self.rng.random() < 0.9 else self.customers)
        if email:
            self.ticket(problem, person, at, email=True)
            return
        self.visits += 1
        session_id = f"{DEMO_SESSION}{self.visits:06d}"
        question = self.rng.choice(problem.questions)
        answer = self.answer(question)
        self.event("search", session_id, person, at, query=question, results=answer.results,
                   answered=answer.answered, confidence=answer.confidence, settled_at=at)
        at += timedelta(seconds=self.rng.randint(5, 40))
        for slug in answer.slugs[:3]:
            self.event("suggestion_shown", session_id, person, at, query=question, article_slug=slug)
        helped, opened = False, ""
        if answer.slugs and self.rng.random() < 0.75:
            slug = opened = answer.slugs[0]
            at += timedelta(seconds=self.rng.randint(10, 90))
            self.event("article_opened", session_id, person, at, query=question, article_slug=slug)
            helped = slug == problem.article and self.rng.random() < 0.6
            if helped:
                self.event("solved", session_id, person, at + timedelta(minutes=self.rng.randint(1, 8)),
                           query=question, article_slug=slug)
            if slug in self.articles and self.rng.random() < 0.35:
                self.session.add(ArticleFeedback(article_id=self.articles[slug].id, helpful=helped,
                                                 session_id=session_id, user_id=person.id,
                                                 created_at=at + timedelta(minutes=2)))
                self.counts.votes += 1
        if not helped and self.rng.random() < (0.75 if not answer.answered else 0.5):
            at += timedelta(minutes=self.rng.randint(1, 5))
            ticket = self.ticket(problem, person, at, email=False, shown=answer.slugs[:3], opened=opened)
            self.event("ticket_created", session_id, person, at, query=problem.subject, ticket_id=ticket.id)

    def ticket(self, problem: Problem, person: User, at: datetime, email: bool,
               shown: tuple[str, ...] = (), opened: str = "") -> Ticket:
        """A ticket about the problem, played from creation to where it would be now."""
        rng, agents = self.rng, self.agents
        impact = min(3, max(1, problem.impact + rng.choice((0, 0, 0, 1, -1))))
        urgency = min(3, max(1, problem.urgency + rng.choice((0, 0, 0, 1, -1))))
        priority = priority_for(impact, urgency)
        response_due, resolution_due = self.policy.due_times(priority, at)
        agent = rng.choice(agents[1])
        ticket = Ticket(subject=problem.subject, description=problem.description, type=TicketType(problem.ticket_type),
                        category=problem.category, impact=impact, urgency=urgency, priority=priority,
                        status=TicketStatus.NEW, level=1, lang=problem.lang, requester=person, assignee=agent,
                        team=agent.team, created_at=at, updated_at=at, response_due_at=response_due,
                        resolution_due_at=resolution_due)
        self.session.add(ticket)
        self.counts.tickets += 1
        log = [TicketEvent(actor=person, kind="created", public=True, created_at=at,
                           data={"priority": priority, "type": problem.ticket_type, "category": problem.category,
                                 **({"channel": "email"} if email else {})}),
               TicketEvent(kind="assigned", public=False, created_at=at, data={"to": agent.name, "automatic": True})]
        for rank, slug in enumerate(shown):
            if slug in self.articles:
                ticket.suggestions.append(TicketSuggestion(article_slug=slug, title=self.articles[slug].title,
                                                           rank=rank, opened=slug == opened))
        if self._acknowledgement_solves(ticket, problem, person, at, shown, log):
            return ticket
        response_target, resolution_target = response_due - at, resolution_due - at
        first_reply = at + response_target * math.exp(rng.gauss(math.log(0.35), 0.9))
        resolved = at + resolution_target * math.exp(rng.gauss(math.log(0.35), 0.8))
        resolved = max(resolved, first_reply + timedelta(minutes=10))
        if first_reply <= self.now:
            ticket.first_response_at, ticket.status = first_reply, TicketStatus.OPEN
            name = person.name.split()[0]
            log.append(TicketEvent(actor=agent, kind="reply", public=True, created_at=first_reply,
                                   body=rng.choice(FIRST_REPLIES[problem.lang]).format(name=name)))
            log.append(TicketEvent(actor=agent, kind="status", public=True, created_at=first_reply,
                                   data={"from": "new", "to": "open"}))
        worker = agent
        if rng.random() < 0.2:
            escalated = at + (resolved - at) * 0.5
            if escalated <= self.now:
                worker = rng.choice(agents[2])
                ticket.level, ticket.assignee, ticket.status = 2, worker, TicketStatus.ESCALATED
                log.append(TicketEvent(actor=agent, kind="escalated", public=False, created_at=escalated,
                                       body="Needs L2" if problem.lang == "en" else "Necesita L2",
                                       data={"to": worker.name, "level": 2}))
        if resolved <= self.now:
            if rng.random() < 0.07 and resolved + timedelta(days=2) <= self.now:  # reopened once, then solved
                reopened = resolved + timedelta(hours=rng.randint(2, 30))
                log.append(TicketEvent(actor=worker, kind="resolved", public=True, created_at=resolved,
                                       body=problem.solution))
                log.append(TicketEvent(actor=person, kind="status", public=True, created_at=reopened,
                                       data={"from": "resolved", "to": "open"}))
                resolved = reopened + (resolved - at) * 0.5
            if resolved <= self.now:
                self._resolve(ticket, problem, person, worker, resolved, log)
        if ticket.is_open and ticket.status == TicketStatus.OPEN and rng.random() < 0.3:
            ticket.status = TicketStatus.PENDING_CUSTOMER
        for _ in range(rng.randint(1, 2) if ticket.first_response_at else 0):
            minutes = rng.choice((5, 10, 15, 20, 30, 45, 60, 90))
            ticket.time_entries.append(TimeEntry(agent=worker, minutes=minutes, created_at=ticket.first_response_at))
        ticket.events.extend(sorted(log, key=lambda e: e.created_at))
        ticket.updated_at = max(e.created_at for e in log)
        if problem.article and problem.article in self.articles and ticket.resolved_at and rng.random() < 0.3:
            self.session.add(ArticleTicketLink(article=self.articles[problem.article], ticket=ticket, relation="cited",
                                               created_at=ticket.resolved_at))
        self.session.flush()
        return ticket

    def _acknowledgement_solves(self, ticket: Ticket, problem: Problem, person: User, at: datetime,
                                shown: tuple[str, ...], log: list[TicketEvent]) -> bool:
        """The acknowledgement mail offers the articles the search finds for the ticket (those not shown before);
        when the right one is among them, some requesters click "This solved my problem" and the ticket closes."""
        self.session.flush()
        offered = [slug for slug in self.answer(f"{problem.subject}. {problem.description}").slugs
                   if slug not in shown][:3]
        for slug in offered:
            self.event("suggestion_shown", f"{DEMO_SESSION}mail", person, at, article_slug=slug, ticket_id=ticket.id,
                       channel="email")
        clicked = at + timedelta(minutes=self.rng.randint(3, 90))
        if problem.article not in offered or self.rng.random() >= 0.3 or clicked > self.now:
            return False
        ticket.status, ticket.closed_at, ticket.updated_at = TicketStatus.CLOSED, clicked, clicked
        title = self.articles[problem.article].title if problem.article in self.articles else problem.article
        log.append(TicketEvent(actor=person, kind="self_solved", public=True, created_at=clicked, body=title,
                               data={"article": problem.article, "channel": "email", "from": "new"}))
        ticket.events.extend(log)
        self.event("solved", f"{DEMO_SESSION}mail", person, clicked, article_slug=problem.article, ticket_id=ticket.id,
                   channel="email")
        self.session.flush()
        return True

    def _resolve(self, ticket: Ticket, problem: Problem, person: User, worker: User, resolved: datetime,
                 log: list[TicketEvent]) -> None:
        """The ticket solved at ``resolved``: the solution, closing after the quiet days, and maybe a survey."""
        rng = self.rng
        ticket.status, ticket.resolved_at, ticket.solution = TicketStatus.RESOLVED, resolved, problem.solution
        log.append(TicketEvent(actor=worker, kind="resolved", public=True, created_at=resolved, body=problem.solution))
        closes = resolved + timedelta(days=self.auto_close_days)
        if closes <= self.now:
            ticket.status, ticket.closed_at = TicketStatus.CLOSED, closes
            log.append(TicketEvent(kind="status", public=True, created_at=closes,
                                   data={"from": "resolved", "to": "closed", "automatic": True,
                                         "after_days": self.auto_close_days}))
        answered_at = resolved + timedelta(hours=rng.randint(1, 48))
        if rng.random() < 0.45 and answered_at <= self.now:
            in_time = resolved <= ticket.resolution_due_at and ticket.first_response_at <= ticket.response_due_at
            rating = rng.choice((5, 5, 5, 4, 4, 3) if in_time else (4, 3, 2, 2, 1))
            comment = rng.choice(SURVEY_COMMENTS[problem.lang].get(rating, ("",))) if rng.random() < 0.5 else ""
            ticket.survey = SurveyResponse(rating=rating, comment=comment, created_at=answered_at)
            log.append(TicketEvent(actor=person, kind="survey", public=False, created_at=answered_at, body=comment,
                                   data={"rating": rating}))
            self.counts.surveys += 1


def _day_rate(day: datetime, start: datetime, days: int) -> float:
    """How busy a day is: weekends quiet, the desk a little busier towards the end of the period."""
    weekday = 1.0 if day.weekday() < 5 else 0.15
    return weekday * (0.8 + 0.4 * (day - start).days / max(days, 1))


def seed(session: Session, policy: SlaPolicy, classify: Classifier, now: datetime | None = None, days: int = 120,
         visits_per_day: float = 14.0, auto_close_days: int = 7, random_seed: int = 7) -> DemoCounts:
    """Add ``days`` days of demo activity ending at ``now``; refused when demo data is there already.

    Each working day has about ``visits_per_day`` people with a problem (fewer at weekends, a few more each
    month, and one week of a VPN outage); most ask the portal, a sixth write an e-mail.
    """
    if demo_ticket_count(session) or session.scalar(select(User.id).where(User.email.like(f"%@{DEMO_DOMAIN}"))):
        raise DemoDataPresent("The database holds demo data already; `flask demo remove` takes it out.")
    if days < 1 or visits_per_day <= 0:
        raise ValueError("days and visits per day must be positive")
    now = now or utcnow()
    rng = random.Random(random_seed)
    published = set(session.scalars(select(Article.slug).where(Article.status == "published")))
    desk = _Desk(session, policy, classify, rng, now, auto_close_days, published)
    session.flush()
    start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    outage = start + timedelta(days=int(days * 0.6))
    weights = [p.weight for p in PROBLEMS]
    vpn = [p.weight * (5 if p.category == "vpn" else 1) for p in PROBLEMS]
    for offset in range(days + 1):
        day = start + timedelta(days=offset)
        in_outage = outage <= day < outage + timedelta(days=5)
        for _ in range(_poisson(rng, visits_per_day * _day_rate(day, start, days) * (1.6 if in_outage else 1))):
            at = day + timedelta(hours=rng.uniform(7.5, 18.5))
            if at > now:
                continue
            problem = rng.choices(PROBLEMS, weights=vpn if in_outage else weights)[0]
            desk.visit(problem, at, email=rng.random() < 1 / 6)
    session.flush()
    return desk.counts


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count (Knuth's method; the means here are small)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def remove(session: Session) -> DemoCounts:
    """Delete every demo row (and nothing else): demo people, their tickets with everything on them, demo
    funnel events and votes. Returns what was removed."""
    people = select(User.id).where(User.email.like(f"%@{DEMO_DOMAIN}")).scalar_subquery()
    tickets = select(Ticket.id).where(Ticket.requester_id.in_(people)).scalar_subquery()
    counts = DemoCounts(
        people=session.scalar(select(func.count()).select_from(User).where(User.id.in_(people))) or 0,
        tickets=demo_ticket_count(session),
        surveys=session.scalar(select(func.count()).select_from(SurveyResponse)
                               .where(SurveyResponse.ticket_id.in_(tickets))) or 0)
    demo_events = or_(PortalEvent.session_id.like(f"{DEMO_SESSION}%"), PortalEvent.ticket_id.in_(tickets))
    counts.portal_events = session.scalar(select(func.count()).select_from(PortalEvent).where(demo_events)) or 0
    counts.votes = session.scalar(select(func.count()).select_from(ArticleFeedback)
                                  .where(ArticleFeedback.session_id.like(f"{DEMO_SESSION}%"))) or 0
    ticket_ids = list(session.scalars(select(Ticket.id).where(Ticket.requester_id.in_(people))))
    for start in range(0, len(ticket_ids), 500):  # bounded IN lists
        chunk = ticket_ids[start:start + 500]
        # Files a real agent may have attached to a demo ticket while trying the desk.
        files = select(Attachment.id).where(Attachment.ticket_id.in_(chunk)).scalar_subquery()
        session.execute(delete(AttachmentBlob).where(AttachmentBlob.attachment_id.in_(files)))
        session.execute(delete(Attachment).where(Attachment.ticket_id.in_(chunk)))
        for model in (TicketEvent, TicketSuggestion, TimeEntry, SurveyResponse, ArticleTicketLink, SlaWarning):
            session.execute(delete(model).where(model.ticket_id.in_(chunk)))
        session.execute(delete(PortalEvent).where(PortalEvent.ticket_id.in_(chunk)))
        for model in (OutboxMessage, InboundMail):  # never made for demo tickets; unlinked, never deleted
            session.execute(update(model).where(model.ticket_id.in_(chunk)).values(ticket_id=None))
        session.execute(delete(Ticket).where(Ticket.id.in_(chunk)))
    session.execute(delete(PortalEvent).where(PortalEvent.session_id.like(f"{DEMO_SESSION}%")))
    session.execute(delete(ArticleFeedback).where(ArticleFeedback.session_id.like(f"{DEMO_SESSION}%")))
    session.execute(delete(AgentMailPreferences).where(AgentMailPreferences.user_id.in_(people)))
    session.execute(delete(User).where(User.email.like(f"%@{DEMO_DOMAIN}")))
    session.expire_all()
    return counts
