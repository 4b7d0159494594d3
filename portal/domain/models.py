"""Mesa's database tables as typed SQLAlchemy 2.0 models."""

from __future__ import annotations

import enum
from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, Enum, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash


def utcnow() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def set_password(self, password: str) -> None:
        """Store a salted hash of the password, never the password."""
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        """Whether the password matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    @property
    def is_agent(self) -> bool:
        """Agents (L1, L2) and admins work the service desk and see internal content."""
        return self.role in AGENT_ROLES

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
        return str(self.id)


class Article(Base):
    """A knowledge-base article; the database is its system of record, files are import/export."""

    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True, index=True)
    title: Mapped[str] = mapped_column(String(300))
    lang: Mapped[str] = mapped_column(String(2), index=True)
    category: Mapped[str] = mapped_column(String(60), index=True)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    visibility: Mapped[str] = mapped_column(String(10), default="public")
    status: Mapped[str] = mapped_column(String(10), default="published", index=True)
    body: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow, server_default=func.now())

    @property
    def is_public(self) -> bool:
        """Anyone, signed in or not, may read it."""
        return self.visibility == "public" and self.status == "published"
