"""Mesa's database tables as typed SQLAlchemy 2.0 models."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime, timezone

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Enum, Float, ForeignKey, Index, Integer, LargeBinary,
                        String, Text, UniqueConstraint, false, func)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator
from werkzeug.security import check_password_hash, generate_password_hash


def new_session_token() -> str:
    """A random token for a user's sessions (see User.session_token)."""
    return secrets.token_urlsafe(24)


def utcnow() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    """Base of every table."""


class Role(str, enum.Enum):
    """Who someone is in the service desk."""

    CUSTOMER = "customer"
    AGENT_L1 = "agent_l1"
    AGENT_L2 = "agent_l2"
    ADMIN = "admin"


AGENT_ROLES = (Role.AGENT_L1, Role.AGENT_L2, Role.ADMIN)


class User(Base):
    """An account: a customer (end user), an L1 or L2 agent, or an admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=20,
                                            values_callable=lambda roles: [r.value for r in roles]))
    active: Mapped[bool] = mapped_column(default=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Part of every session cookie of this user; a new one ends all of them (sign-out, new password).
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)
    # When the person proved they read this address (the link of the verification e-mail); None: not yet,
    # and a customer may search and read but not open tickets.
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    team: Mapped["Team | None"] = relationship(back_populates="members")

    @property
    def email_verified(self) -> bool:
        """Whether the address is verified (accounts made by admins and seeds are, self-registered ones after
        the link)."""
        return self.email_verified_at is not None

    def set_password(self, password: str) -> None:
        """Store a salted hash of the password, never the password; sessions signed in before end."""
        self.password_hash = generate_password_hash(password)
        self.end_sessions()

    def end_sessions(self) -> None:
        """Make every session cookie issued to this user so far worthless (the next load refuses it)."""
        self.session_token = new_session_token()

    def check_password(self, password: str) -> bool:
        """Whether the password matches the stored hash (never for an account without a password)."""
        return self.has_password and check_password_hash(self.password_hash, password)

    @property
    def has_password(self) -> bool:
        """False for a customer created from an e-mail, who has not set a password yet."""
        return self.password_hash.startswith(("scrypt:", "pbkdf2:"))

    @property
    def is_agent(self) -> bool:
        """Agents (L1, L2) and admins work the service desk and see internal content."""
        return self.role in AGENT_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def level(self) -> int | None:
        """The support level an agent works at: 1 (L1) or 2 (L2 and admins); None for customers."""
        return {Role.AGENT_L1: 1, Role.AGENT_L2: 2, Role.ADMIN: 2}.get(self.role)

    # The four members Flask-Login expects of a user object.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """What the session cookie names: the id and the current session token (portal/auth.py checks it)."""
        return f"{self.id}:{self.session_token}"


class Article(Base):
    """A knowledge-base article; the database is its system of record, files are import/export."""

    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True, index=True)
    title: Mapped[str] = mapped_column(String(300))
    lang: Mapped[str] = mapped_column(String(2), index=True)
    category: Mapped[str] = mapped_column(String(60), index=True)
    # Shared by the versions of one article in other languages ("": none); search lists a topic once.
    topic: Mapped[str] = mapped_column(String(80), default="", server_default="", index=True)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    visibility: Mapped[str] = mapped_column(String(10), default="public")
    status: Mapped[str] = mapped_column(String(10), default="published", index=True)
    body: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    # The content hash of the file it was last imported from (None: never imported). An article whose
    # content_hash differs from it was changed in the portal, and an import keeps it.
    imported_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow,
                                                 onupdate=utcnow, server_default=func.now())
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    revisions: Mapped[list["ArticleRevision"]] = relationship(
        back_populates="article", order_by="ArticleRevision.number", cascade="all, delete-orphan")
    events: Mapped[list["ArticleEvent"]] = relationship(
        back_populates="article", order_by="ArticleEvent.id", cascade="all, delete-orphan")
    ticket_links: Mapped[list["ArticleTicketLink"]] = relationship(
        back_populates="article", cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_public(self) -> bool:
        """Anyone, signed in or not, may read it."""
        return self.visibility == "public" and self.status == "published"


class Team(Base):
    """A group of agents that handles some categories (assignment goes by category to a team)."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    categories: Mapped[list] = mapped_column(JSON, default=list)

    members: Mapped[list[User]] = relationship(back_populates="team")


class TicketType(str, enum.Enum):
    """ITIL: something broken (incident) or something wanted (service request)."""

    INCIDENT = "incident"
    SERVICE_REQUEST = "service_request"


class TicketStatus(str, enum.Enum):
    """Where a ticket is in its life."""

    NEW = "new"
    OPEN = "open"
    PENDING_CUSTOMER = "pending_customer"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"


OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING_CUSTOMER, TicketStatus.ESCALATED)


def _enum(enum_class):
    return Enum(enum_class, native_enum=False, length=20, values_callable=lambda items: [i.value for i in items])


class Ticket(Base):
    """Every contact with the service desk; its id is the number the customer sees."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    type: Mapped[TicketType] = mapped_column(_enum(TicketType), default=TicketType.INCIDENT)
    category: Mapped[str] = mapped_column(String(60), index=True)
    impact: Mapped[int] = mapped_column(Integer, default=3)
    urgency: Mapped[int] = mapped_column(Integer, default=3)
    priority: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus), default=TicketStatus.NEW, index=True)
    level: Mapped[int] = mapped_column(Integer, default=1)
    lang: Mapped[str] = mapped_column(String(2), default="es")
    asset_tag: Mapped[str] = mapped_column(String(40), default="")
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    solution: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolution_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    requester: Mapped[User] = relationship(foreign_keys=[requester_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    team: Mapped[Team | None] = relationship()
    events: Mapped[list["TicketEvent"]] = relationship(back_populates="ticket", order_by="TicketEvent.id",
                                                       cascade="all, delete-orphan")
    suggestions: Mapped[list["TicketSuggestion"]] = relationship(back_populates="ticket",
                                                                 cascade="all, delete-orphan")
    time_entries: Mapped[list["TimeEntry"]] = relationship(back_populates="ticket", order_by="TimeEntry.id",
                                                           cascade="all, delete-orphan")
    survey: Mapped["SurveyResponse | None"] = relationship(back_populates="ticket", cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": version}

    @property
    def number(self) -> str:
        """The number the customer quotes."""
        return f"#{self.id}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class TicketEvent(Base):
    """One line of a ticket's activity log: a change, a public reply or an internal note."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20))
    public: Mapped[bool] = mapped_column(default=False)
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()


class TicketSuggestion(Base):
    """An article the portal suggested before the ticket was created (what the customer already saw)."""

    __tablename__ = "ticket_suggestions"
    __table_args__ = (UniqueConstraint("ticket_id", "article_slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    article_slug: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    rank: Mapped[int] = mapped_column(Integer, default=0)
    # Whether the customer opened the article (read it) before creating the ticket, or was only shown it.
    opened: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    ticket: Mapped[Ticket] = relationship(back_populates="suggestions")


class TimeEntry(Base):
    """Time an agent spent on a ticket."""

    __tablename__ = "time_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    minutes: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="time_entries")
    agent: Mapped[User] = relationship()


class CannedReply(Base):
    """A reusable reply; placeholders such as {requester_name} are filled in per ticket."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(120), unique=True)
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SurveyResponse(Base):
    """The requester's satisfaction (1-5 and a comment) after resolution; one per ticket."""

    __tablename__ = "survey_responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="survey")


class OutboxStatus(str, enum.Enum):
    """Where an e-mail is in its delivery."""

    PENDING = "pending"  # waiting for its (next) attempt
    SENT = "sent"
    FAILED = "failed"  # given up: a permanent refusal, or too many attempts; an admin can retry it


class OutboxMessage(Base):
    """An e-mail notification, written in the same transaction as the change that causes it and delivered
    later by a sender (a thread in each serving process, or `flask mail send-outbox`); kept for the admin.

    A sender claims a pending message by moving ``next_attempt_at`` past the time it needs to send it, in one
    conditional UPDATE; a sender that dies mid-send loses the claim when that time comes.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    # The same mail as sanitised HTML, sent with ``body`` as multipart/alternative ("": plain text only).
    html_body: Mapped[str] = mapped_column(Text, default="", server_default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus), default=OutboxStatus.PENDING,
                                                 server_default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str] = mapped_column(String(80), default="", server_default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(String(500), default="", server_default="")
    # The Message-ID the e-mail is sent with ("": none recorded), so a reply by mail finds its ticket.
    message_id: Mapped[str] = mapped_column(String(250), default="", server_default="", index=True)


class MailDisposition(str, enum.Enum):
    """What became of an incoming e-mail."""

    TICKET = "ticket"  # a new ticket
    REPLY = "reply"  # a public reply on its ticket
    REFUSED = "refused"  # an auto-reply, a bounce, a mailing list or Mesa's own mail: not answered, kept
    DUPLICATE = "duplicate"  # the same Message-ID was already processed
    QUARANTINED = "quarantined"  # waits for an admin (bad mail, over the rate, not the requester)
    DISCARDED = "discarded"  # an admin threw it away (the raw message is dropped)


class InboundMail(Base):
    """One e-mail fetched from the help-desk mailbox, recorded in the same transaction as what it became,
    so it is processed exactly once: (mailbox, uidvalidity, uid) names it on the IMAP server. The original
    message is kept (``raw``) and downloadable as .eml."""

    __tablename__ = "inbound_mail"
    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity", "uid"),
                      Index("ix_inbound_mail_sender_received_at", "sender", "received_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(200))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str] = mapped_column(String(250), default="", index=True)
    sender: Mapped[str] = mapped_column(String(254), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    disposition: Mapped[MailDisposition] = mapped_column(_enum(MailDisposition), index=True)
    reason: Mapped[str] = mapped_column(String(300), default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # read only when needed (it may be large)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # released or discarded by an admin

    ticket: Mapped[Ticket | None] = relationship()


class RateCounter(Base):
    """How many times something limited (a failed sign-in for an account, a suggestion call from an address)
    happened in the current fixed window: one row per key, counted by one atomic upsert, so the limit holds
    across the processes and hosts that share the database."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger)  # Unix seconds, a multiple of the rule's window
    window_end: Mapped[int] = mapped_column(BigInteger, index=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)


class JobLease(Base):
    """Who runs a periodic job (the desk sweep) now, and when it last started: taken with a conditional
    UPDATE, so processes on several hosts over one database never run it at the same time."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120), default="", server_default="")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PortalEvent(Base):
    """A step of the self-service funnel (search, suggestion shown, article opened, solved, ticket created).

    Holds a random per-browser session id and the user id, no other personal data.
    """

    __tablename__ = "portal_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    session_id: Mapped[str] = mapped_column(String(40), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    query: Mapped[str] = mapped_column(String(500), default="")
    article_slug: Mapped[str] = mapped_column(String(200), default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    results: Mapped[int | None] = mapped_column(Integer)
    # Where the step happened: "portal" (the web pages) or "email" (an acknowledgement's articles and links).
    channel: Mapped[str] = mapped_column(String(10), default="portal", server_default="portal")
    # For a search: whether its best result was confident enough to count as an answer, that confidence
    # (None: the index has no calibration), and when the person stopped refining it (a burst of suggestion
    # calls while typing is one question, updated in place).
    answered: Mapped[bool | None] = mapped_column(Boolean)
    confidence: Mapped[float | None] = mapped_column(Float)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ArticleRevision(Base):
    """A saved version of an article's content; every save adds one, restoring copies an old one forward."""

    __tablename__ = "article_revisions"
    __table_args__ = (UniqueConstraint("article_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    lang: Mapped[str] = mapped_column(String(2))
    category: Mapped[str] = mapped_column(String(60))
    topic: Mapped[str] = mapped_column(String(80), default="", server_default="")
    tags: Mapped[list] = mapped_column(JSON, default=list)
    visibility: Mapped[str] = mapped_column(String(10))
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    article: Mapped[Article] = relationship(back_populates="revisions")
    author: Mapped[User | None] = relationship()


class ArticleEvent(Base):
    """Who did what to an article and when: created, edited, submitted, sent back, published, archived, restored."""

    __tablename__ = "article_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    article: Mapped[Article] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()


class ArticleTicketLink(Base):
    """An article and a ticket: the ticket it was promoted from ("source") or a ticket that cited it."""

    __tablename__ = "article_ticket_links"
    __table_args__ = (UniqueConstraint("article_id", "ticket_id", "relation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    relation: Mapped[str] = mapped_column(String(10))  # source | cited
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    article: Mapped[Article] = relationship(back_populates="ticket_links")
    ticket: Mapped[Ticket] = relationship()


class ArticleFeedback(Base):
    """"Was this helpful?" on an article page: yes or no, and an optional comment."""

    __tablename__ = "article_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    helpful: Mapped[bool] = mapped_column()
    comment: Mapped[str] = mapped_column(Text, default="")
    session_id: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SearchState(Base):
    """The one row (id 1) that orders the search index's changes: every publish, edit or archive takes the
    next ``last_change`` while holding this row, so change numbers are committed in the order they are
    given; ``active_generation_id`` is the generation searches use."""

    __tablename__ = "search_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_change: Mapped[int] = mapped_column(BigInteger, default=0)
    active_generation_id: Mapped[int | None] = mapped_column(
        ForeignKey("search_generations.id", ondelete="SET NULL"))


class SearchGeneration(Base):
    """One embedding of the knowledge base: a ranking and its models. A rebuild writes a new generation
    beside the active one and switches over in one step."""

    __tablename__ = "search_generations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)  # random: names it in snapshot files
    ranking: Mapped[str] = mapped_column(String(40))
    signature: Mapped[str] = mapped_column(String(500))  # the ranking and its models
    fields: Mapped[dict] = mapped_column(JSON)  # backend -> model, dim, unit
    max_chars: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="building")  # building | active | retired
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    built_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    build_seconds: Mapped[float | None] = mapped_column(Float)


class SearchDocument(Base):
    """A published article as one generation indexes it: the article's indexed fields, its chunks and
    (in ``vectors``) their vectors. ``change`` is the change that last wrote the row; an article taken out
    of search keeps its row with ``article`` None, so a process that follows the changes learns it. Its
    vectors are ``SearchVector`` rows."""

    __tablename__ = "search_documents"
    __table_args__ = (UniqueConstraint("generation_id", "slug"),
                      Index("ix_search_documents_changes", "generation_id", "change"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[int] = mapped_column(ForeignKey("search_generations.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(200))
    change: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    article: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))  # None: SQL NULL, not JSON null
    chunks: Mapped[list | None] = mapped_column(JSON(none_as_null=True))


class SearchVector(Base):
    """One document's vectors of one dense retriever: float32 rows, and the chunk each row belongs to."""

    __tablename__ = "search_vectors"

    document_id: Mapped[int] = mapped_column(ForeignKey("search_documents.id", ondelete="CASCADE"),
                                             primary_key=True)
    backend: Mapped[str] = mapped_column(String(40), primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    owners: Mapped[bytes] = mapped_column(LargeBinary)  # int32 chunk ordinal per row
    data: Mapped[bytes] = mapped_column(LargeBinary)  # float32, rows x dim


class ApiToken(Base):
    """A personal API token: only the SHA-256 of the secret is stored (the secret is shown once, at creation).
    ``scope`` is ``read`` (GET only) or ``write``; revoking deletes the row."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    scope: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the secret's first characters, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class Attachment(Base):
    """A file someone attached: to a ticket's message (the event it came with: the opening description, a
    reply, an internal note, an e-mail), or to an article (an image placed in its Markdown). Who may read it
    follows what it belongs to (portal/domain/attachments.py). Its bytes are stored apart (``storage``:
    ``database``, an AttachmentBlob row; ``directory``, a file named by its SHA-256; ``s3``, an object so
    named), so listing never loads them."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_events.id", ondelete="CASCADE"), index=True)
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))  # found from the content, never from the name
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage: Mapped[str] = mapped_column(String(10))  # database | directory | s3
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket | None] = relationship()
    event: Mapped[TicketEvent | None] = relationship()
    article: Mapped[Article | None] = relationship()


class AttachmentBlob(Base):
    """The bytes of an attachment stored in the database (the default store), one row per attachment."""

    __tablename__ = "attachment_blobs"

    attachment_id: Mapped[int] = mapped_column(ForeignKey("attachments.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
class AgentMailPreferences(Base):
    """Which e-mail notifications an agent wants (one flag per kind, all on by default: no row means all on)
    and the language they are written in ("": the first UI language of MESA_LANGUAGES)."""

    __tablename__ = "agent_mail_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    assigned: Mapped[bool] = mapped_column(Boolean, default=True)
    escalated: Mapped[bool] = mapped_column(Boolean, default=True)
    customer_replied: Mapped[bool] = mapped_column(Boolean, default=True)
    reopened: Mapped[bool] = mapped_column(Boolean, default=True)
    sla_warning: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str] = mapped_column(String(5), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SlaWarning(Base):
    """That agents were warned a ticket's SLA target (``response`` or ``resolution``) is about to be missed:
    the primary key lets the warning be written once per ticket and target, whatever the number of sweeps,
    processes and hosts."""

    __tablename__ = "sla_warnings"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    target: Mapped[str] = mapped_column(String(12), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
