"""The knowledge loop: promote a solved ticket into an article, review, publish, revise, measure.

Article states: draft -> review -> published -> archived. L1 agents draft and submit; L2 agents and admins
approve and publish, send back with a comment, archive, and restore old revisions. Every save is a
revision; every step is an ArticleEvent with who and when.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import indexer
from indexer import detect_language

from .articles import add_revision, to_document
from .attachments import AttachmentSettings, claim_images
from .errors import N_, Conflict, Invalid, NotAllowed
from .numbers import parse_int
from .models import (Article, ArticleEvent, ArticleFeedback, ArticleRevision, ArticleTicketLink, PortalEvent,
                     Role, Ticket, TicketStatus, User, utcnow)
from .privacy import person_names, scrub_text
from .promotion_text import (carries_steps, drop_contact_requests, drop_introduction, localise_placeholders,
                             reader_voice, strip_conversation, unglue_links)

EDITABLE_BY_L1 = ("draft", "review")
MAX_BODY = 100_000
ARTICLE_LINK_RE = re.compile(r"/articles/([a-z0-9][a-z0-9-]*)")


def slugify(text: str) -> str:
    """An article slug from a title: lowercase ASCII words joined by '-'."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:80].strip("-")
    return slug or "article"


def unique_slug(session: Session, title: str) -> str:
    """A slug for the title that no article uses yet."""
    base = slugify(title)
    taken = set(session.scalars(select(Article.slug).where(Article.slug.like(f"{base}%"))))
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def scrub_personal_data(text: str, ticket: Ticket, lang: str = "en") -> str:
    """Remove the requester's name, e-mail addresses, phone numbers and the requester's asset tags; the
    placeholders left ("[phone]") are named in ``lang``, the article's language ("[teléfono]")."""
    tags = {ticket.asset_tag} | {t.asset_tag for t in _requester_tickets(ticket)}
    return localise_placeholders(scrub_text(text, person_names(ticket.requester), tags), lang)


def _requester_tickets(ticket: Ticket) -> list[Ticket]:
    from sqlalchemy.orm import object_session

    session = object_session(ticket)
    if session is None:
        return []
    return list(session.scalars(select(Ticket).where(Ticket.requester_id == ticket.requester_id,
                                                     Ticket.asset_tag != "")))


@dataclass
class ArticleDraft:
    """An article's editable content, before or after it is saved."""

    title: str
    body: str
    lang: str = "en"
    category: str = "general"
    tags: list[str] = field(default_factory=list)
    visibility: str = "public"
    topic: str = ""

    @classmethod
    def of(cls, source: "Article | ArticleRevision") -> "ArticleDraft":
        """The editable content of an article or of one of its revisions."""
        return cls(source.title, source.body, source.lang, source.category, list(source.tags or []),
                   source.visibility, source.topic or "")

    def fields(self) -> tuple:
        """Everything a save compares (to tell whether anything changed)."""
        return (self.title, self.body, self.lang, self.category, list(self.tags), self.visibility, self.topic)


SECTION_TITLES = {"es": ("Problema", "Solución"), "en": ("Problem", "Solution")}


def draft_from_ticket(ticket: Ticket) -> ArticleDraft:
    """A Markdown draft from a resolved ticket: the problem in the reader's words, the resolution and the
    agents' public replies that carry steps (see ``promotion_text``).

    The Problem is the description without greeting, introduction, requests to be called and signature, its
    first person turned to the reader's ("I cannot" -> "You cannot"); conversational replies ("we need more
    information") stay out; links are not glued to words. Customer details (names, e-mails, phone numbers, the requester's asset
    tags) are removed, their placeholders in the article's language.
    """
    if ticket.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED) or not ticket.solution.strip():
        raise Invalid(N_("Only a resolved ticket with a solution can become an article."))
    lang = detect_language(f"{ticket.subject} {ticket.description} {ticket.solution}")
    problem_title, solution_title = SECTION_TITLES[lang]
    agent_names = {name for e in ticket.events if e.actor is not None and e.actor.is_agent
                   for name in (e.actor.name, *e.actor.name.split())}
    problem = drop_contact_requests(drop_introduction(scrub_personal_data(
        strip_conversation(ticket.description, person_names(ticket.requester)), ticket)))
    problem = reader_voice(localise_placeholders(problem, lang), lang)
    replies = [e.body for e in ticket.events
               if e.kind == "reply" and e.public and e.actor is not None and e.actor.is_agent and carries_steps(e.body)]
    parts = []
    for text in [ticket.solution, *replies]:
        cleaned = unglue_links(strip_conversation(text, agent_names))
        if cleaned and not any(cleaned in kept for kept in parts):
            parts.append(cleaned)
    body = (f"## {problem_title}\n\n{problem}\n\n"
            f"## {solution_title}\n\n" + "\n\n".join(scrub_personal_data(p, ticket, lang) for p in parts) + "\n")
    tags = [ticket.category] if ticket.category and ticket.category != "general" else []
    return ArticleDraft(title=scrub_personal_data(ticket.subject.strip(), ticket, lang), body=body, lang=lang,
                        category=ticket.category or "general", tags=tags)


def read_draft(form) -> ArticleDraft:
    """An ArticleDraft from submitted form fields, checked (Invalid with a message when wrong)."""
    title = " ".join((form.get("title") or "").split())
    body = (form.get("body") or "").replace("\r\n", "\n").strip() + "\n"
    if not title:
        raise Invalid(N_("The %(field)s is required."), field=N_("title"))
    if len(title) > 300:
        raise Invalid(N_("The %(field)s is too long: at most %(max)d characters."), field=N_("title"), max=300)
    if not body.strip():
        raise Invalid(N_("The %(field)s is required."), field=N_("text"))
    if len(body) > MAX_BODY:
        raise Invalid(N_("The %(field)s is too long: at most %(max)d characters."), field=N_("text"), max=MAX_BODY)
    category = (form.get("category") or "general").strip()
    if len(category) > indexer.articles.MAX_CATEGORY:
        raise Invalid(N_("The %(field)s is too long: at most %(max)d characters."), field=N_("category"),
                      max=indexer.articles.MAX_CATEGORY)
    tags = [t.strip().lower() for t in (form.get("tags") or "").split(",") if t.strip()][:10]
    draft = ArticleDraft(title=title, body=body, lang=form.get("lang") or "en", category=category, tags=tags,
                         visibility=form.get("visibility") or "public", topic=(form.get("topic") or "").strip())
    try:
        indexer.articles.validate_article(indexer.Article(slug="check", title=draft.title, lang=draft.lang,
                                                          body=draft.body, category=draft.category,
                                                          tags=draft.tags, visibility=draft.visibility,
                                                          topic=draft.topic))
    except indexer.ArticleFormatError as exc:
        raise Invalid(N_("The article is not valid: %(problem)s"), problem=str(exc).split(": ", 1)[-1]) from None
    return draft


def unchecked_draft(form) -> ArticleDraft:
    """The submitted fields as they are, to show the editor again after a refused save (nothing is lost)."""
    return ArticleDraft(form.get("title", ""), form.get("body", ""), form.get("lang", "es"),
                        form.get("category", "general"),
                        [t.strip() for t in form.get("tags", "").split(",") if t.strip()],
                        form.get("visibility", "public"), form.get("topic", ""))


# ----- permissions ---------------------------------------------------------------------------------------


def can_publish(user: User | None) -> bool:
    """L2 agents and admins approve, publish, archive and restore."""
    return user is not None and user.role in (Role.AGENT_L2, Role.ADMIN)


def can_edit(user: User | None, article: Article) -> bool:
    """L1 agents edit drafts and articles in review; L2 agents and admins edit any article."""
    if user is None or not user.is_agent:
        return False
    return can_publish(user) or article.status in EDITABLE_BY_L1


def _require(allowed: bool) -> None:
    if not allowed:
        raise NotAllowed(N_("Your role cannot do this to the article."))


def _check_version(article: Article, expected_version) -> None:
    if parse_int(expected_version) != article.version:
        raise changed_meanwhile(article)


def changed_meanwhile(article: Article) -> Conflict:
    """The refusal for a save to an article that someone else changed since the user loaded it."""
    last = article.events[-1] if article.events else None
    who = last.actor.name if last is not None and last.actor is not None else "Mesa"
    return Conflict(N_("The article was changed by %(who)s since you opened it. Nothing was saved; your "
                       "text is kept below. Compare with the current version and save again."), who=who)


# ----- saving, revisions and the workflow ---------------------------------------------------------------


def _apply_draft(article: Article, draft: ArticleDraft) -> None:
    article.title, article.body, article.lang = draft.title, draft.body, draft.lang
    article.category, article.tags, article.visibility = draft.category, list(draft.tags), draft.visibility
    article.topic = draft.topic


def _refresh_hash(article: Article) -> None:
    article.content_hash = to_document(article).content_hash()


def _event(article: Article, actor: User | None, kind: str, comment: str = "", **data) -> ArticleEvent:
    event = ArticleEvent(actor=actor, actor_id=actor.id if actor else None, kind=kind, comment=comment,
                         data=data, created_at=utcnow())
    article.events.append(event)
    return event


def create_article(session: Session, draft: ArticleDraft, actor: User,
                   source_ticket: Ticket | None = None, files: AttachmentSettings | None = None) -> Article:
    """Save a new draft article (revision 1), linked to the ticket it came from (promoting one: L2 and admins).
    With ``files``, the images its text places become its own (see ``attachments.claim_images``)."""
    _require(actor.is_agent and (source_ticket is None or can_publish(actor)))
    article = Article(slug=unique_slug(session, draft.title), status="draft", content_hash="")
    _apply_draft(article, draft)
    session.add(article)
    if files is not None:
        session.flush()  # the article's id, which its images refer to
        article.body = claim_images(session, files, article, actor, article.body)
    _refresh_hash(article)
    add_revision(article, actor, "created")
    _event(article, actor, "created", ticket=source_ticket.id if source_ticket else None)
    if source_ticket is not None:
        article.ticket_links.append(ArticleTicketLink(ticket_id=source_ticket.id, relation="source"))
    session.flush()
    return article


def edit_article(session: Session, article: Article, actor: User, draft: ArticleDraft, expected_version,
                 note: str = "", files: AttachmentSettings | None = None) -> ArticleRevision | None:
    """Save new content as a revision; None when nothing changed. With ``files``, the images its text places
    become its own."""
    _require(can_edit(actor, article))
    _check_version(article, expected_version)
    if files is not None:
        draft.body = claim_images(session, files, article, actor, draft.body)
    if ArticleDraft.of(article).fields() == draft.fields():
        return None
    _apply_draft(article, draft)
    _refresh_hash(article)
    _event(article, actor, "edited", note)
    return add_revision(article, actor, note)


def append_solution(session: Session, article: Article, ticket: Ticket, actor: User, expected_version,
                    files: AttachmentSettings | None = None) -> None:
    """Add a ticket's solution to an existing article as a new section (instead of a duplicate article),
    with the ticket's images it places copied to the article (given ``files``)."""
    _require(can_edit(actor, article))
    _check_version(article, expected_version)
    draft = draft_from_ticket(ticket)
    solution = draft.body.split(f"## {SECTION_TITLES[draft.lang][1]}\n\n", 1)[-1].strip()
    if files is not None:
        solution = claim_images(session, files, article, actor, solution)
    article.body = f"{article.body.rstrip()}\n\n## {draft.title}\n\n{solution}\n"
    _refresh_hash(article)
    _event(article, actor, "edited", "", ticket=ticket.id, appended=True)
    add_revision(article, actor, f"solution of ticket #{ticket.id}")
    if not any(link.ticket_id == ticket.id and link.relation == "source" for link in article.ticket_links):
        article.ticket_links.append(ArticleTicketLink(ticket_id=ticket.id, relation="source"))
    session.flush()


TRANSITIONS = {
    # action: (from states, to state, who may do it)
    "submit": (("draft",), "review", lambda user: user.is_agent),
    "publish": (("draft", "review"), "published", can_publish),
    "send_back": (("review",), "draft", can_publish),
    "archive": (("published",), "archived", can_publish),
    "reopen": (("archived",), "draft", can_publish),
}


def change_state(session: Session, article: Article, actor: User, action: str, expected_version,
                 comment: str = "") -> ArticleEvent:
    """Move an article through its workflow; sending back needs a comment for the author."""
    if action not in TRANSITIONS:
        raise Invalid(N_("Unknown action '%(action)s'."), action=action)
    sources, target, allowed = TRANSITIONS[action]
    _require(actor is not None and allowed(actor))
    _check_version(article, expected_version)
    if article.status not in sources:
        raise Invalid(N_("An article that is %(status)s cannot be moved that way."), status=article.status)
    comment = (comment or "").strip()
    if action == "send_back" and not comment:
        raise Invalid(N_("Say what should change when sending an article back."))
    previous = article.status
    article.status = target
    _refresh_hash(article)
    return _event(article, actor, action, comment[:5000], **{"from": previous, "to": target})


def restore_revision(session: Session, article: Article, actor: User, number, expected_version) -> ArticleRevision:
    """Make an old revision's content current again (as a new revision: history is never rewritten)."""
    _require(can_publish(actor))
    _check_version(article, expected_version)
    revision = next((r for r in article.revisions if str(r.number) == str(number)), None)
    if revision is None:
        raise Invalid(N_("There is no revision %(number)s."), number=number)
    _apply_draft(article, ArticleDraft.of(revision))
    _refresh_hash(article)
    _event(article, actor, "restored", "", revision=revision.number)
    return add_revision(article, actor, f"restored revision {revision.number}")


def diff_revisions(old: ArticleRevision, new: ArticleRevision) -> list[tuple[str, str]]:
    """A readable line diff between two revisions: (kind, line) with kind in ' ', '+', '-', '@'."""
    def lines(revision: ArticleRevision) -> list[str]:
        head = [f"# {revision.title}", f"lang: {revision.lang} · category: {revision.category} · "
                f"tags: {', '.join(revision.tags or [])} · visibility: {revision.visibility}"
                + (f" · topic: {revision.topic}" if revision.topic else ""), ""]
        return head + revision.body.splitlines()

    result = []
    for line in difflib.unified_diff(lines(old), lines(new), lineterm="", n=3):
        if line.startswith(("---", "+++")):
            continue
        kind = "@" if line.startswith("@@") else line[:1] or " "
        result.append((kind, line[1:] if kind != "@" else line))
    return result


# ----- links from tickets, feedback and numbers ------------------------------------------------------------


def cite_articles(session: Session, ticket: Ticket, text: str) -> list[str]:
    """Record the articles a ticket reply links to (``/articles/<slug>``) as cited by the ticket."""
    slugs = set(ARTICLE_LINK_RE.findall(text or ""))
    if not slugs:
        return []
    articles = session.scalars(select(Article).where(Article.slug.in_(slugs)))
    cited = []
    for article in articles:
        exists = session.scalar(select(ArticleTicketLink).where(
            ArticleTicketLink.article_id == article.id, ArticleTicketLink.ticket_id == ticket.id,
            ArticleTicketLink.relation == "cited"))
        if exists is None:
            session.add(ArticleTicketLink(article_id=article.id, ticket_id=ticket.id, relation="cited"))
            cited.append(article.slug)
    return cited


def record_feedback(session: Session, article: Article, helpful: bool, comment: str, session_id: str,
                    user_id: int | None) -> ArticleFeedback:
    """One "Was this helpful?" answer per person and article (a new answer replaces the old): per signed-in
    user on any device and session, per browser session for anonymous visitors."""
    comment = (comment or "").strip()
    if len(comment) > 2000:
        raise Invalid(N_("The %(field)s is too long: at most %(max)d characters."), field=N_("comment"), max=2000)
    same_person = ArticleFeedback.user_id == user_id if user_id is not None \
        else (ArticleFeedback.session_id == session_id) & ArticleFeedback.user_id.is_(None)
    feedback = session.scalar(select(ArticleFeedback).where(ArticleFeedback.article_id == article.id, same_person)
                              .order_by(ArticleFeedback.id).limit(1))
    if feedback is None:
        feedback = ArticleFeedback(article_id=article.id, session_id=session_id)
        session.add(feedback)
    feedback.helpful, feedback.comment, feedback.user_id, feedback.session_id = helpful, comment, user_id, session_id
    feedback.created_at = utcnow()
    return feedback


@dataclass
class ArticleNumbers:
    """What agents see per article."""

    views: int = 0
    helpful: int = 0
    not_helpful: int = 0
    cited: int = 0
    deflected: int = 0
    source_tickets: list[int] = field(default_factory=list)

    @property
    def helpful_ratio(self) -> float | None:
        answers = self.helpful + self.not_helpful
        return self.helpful / answers if answers else None


def article_numbers(session: Session, articles: list[Article]) -> dict[int, ArticleNumbers]:
    """Views, helpful answers, citing tickets, deflections and source tickets for each article."""
    numbers = {a.id: ArticleNumbers() for a in articles}
    by_slug = {a.slug: a.id for a in articles}
    if not articles:
        return numbers
    for slug, kind, n in session.execute(
            select(PortalEvent.article_slug, PortalEvent.kind, func.count())
            .where(PortalEvent.article_slug.in_(by_slug), PortalEvent.kind.in_(("article_opened", "solved")))
            .group_by(PortalEvent.article_slug, PortalEvent.kind)):
        if kind == "article_opened":
            numbers[by_slug[slug]].views = n
        else:
            numbers[by_slug[slug]].deflected = n
    for article_id, helpful, n in session.execute(
            select(ArticleFeedback.article_id, ArticleFeedback.helpful, func.count())
            .where(ArticleFeedback.article_id.in_(numbers)).group_by(ArticleFeedback.article_id,
                                                                     ArticleFeedback.helpful)):
        if helpful:
            numbers[article_id].helpful = n
        else:
            numbers[article_id].not_helpful = n
    for article_id, ticket_id, relation in session.execute(
            select(ArticleTicketLink.article_id, ArticleTicketLink.ticket_id, ArticleTicketLink.relation)
            .where(ArticleTicketLink.article_id.in_(numbers))):
        if relation == "cited":
            numbers[article_id].cited += 1
        else:
            numbers[article_id].source_tickets.append(ticket_id)
    return numbers


def articles_from_ticket(session: Session, ticket: Ticket) -> list[Article]:
    """The articles a ticket produced (promoted or appended to)."""
    return list(session.scalars(select(Article).join(ArticleTicketLink).where(
        ArticleTicketLink.ticket_id == ticket.id, ArticleTicketLink.relation == "source")))


def articles_for_review(session: Session) -> dict[str, list[Article]]:
    """Articles by state, for the knowledge-base desk."""
    grouped: dict[str, list[Article]] = {s: [] for s in ("review", "draft", "published", "archived")}
    for article in session.scalars(select(Article).order_by(Article.updated_at.desc())):
        grouped.setdefault(article.status, []).append(article)
    return grouped
