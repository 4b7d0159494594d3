"""Mesa's settings: declared once here with their defaults and help, read from MESA_* environment variables.

The README's settings table must list every setting below (a test checks it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV_PREFIX = "MESA_"
DEV_SECRET_KEY = "dev-only-not-secret"


@dataclass(frozen=True)
class Setting:
    """One setting: its name (without the prefix), default, type and what it does."""

    name: str
    default: object
    help: str
    type: type = str


SETTINGS: tuple[Setting, ...] = (
    Setting("SECRET_KEY", DEV_SECRET_KEY,
            "Signs sessions and CSRF tokens. Must be set to a long random value in production; "
            "Mesa refuses to start with the default outside development and tests."),
    Setting("ENV", "production",
            "`development` allows the default secret key (set by `make run`); anything else is production."),
    Setting("INSTANCE_DIR", "instance",
            "Directory for the SQLite database and the search index (relative to where Mesa is started)."),
    Setting("DATABASE_URL", "",
            "SQLAlchemy URL of the database. Empty: SQLite file `mesa.db` in MESA_INSTANCE_DIR. PostgreSQL: "
            "`postgresql+psycopg://user:password@host/dbname`."),
    Setting("INDEX_PATH", "",
            "The search index file. Empty: `index.npz` in MESA_INSTANCE_DIR."),
    Setting("RANKING", "hybrid+e5",
            "How search ranks articles: `hybrid+e5` (multilingual USE + multilingual-e5-small + the "
            "sentence-transformers model + BM25, weighted per language pair; the best on the benchmarks; needs "
            "x86-64 with AVX2, elsewhere Mesa runs `hybrid` and says so), `hybrid` (the same without e5: "
            "cheaper to build and query, weaker across languages), `e5-hybrid`, `use+bm25` (no torch), `use`, "
            "`sentence-transformers`, `bm25`, or `fake` (tests only)."),
    Setting("EMBEDDER_MODEL", "",
            "The sentence-transformers model of the `hybrid` and `sentence-transformers` rankings: a model name "
            "or local path. Empty: the bundled all-MiniLM-L6-v2, int8 on ONNX Runtime "
            "(`all-MiniLM-L6-v2-int8-onnx`); `all-MiniLM-L6-v2`: the same weights on torch."),
    Setting("MODEL_CACHE", "",
            "Directory for the models Mesa makes from its bundled weights: the int8 ONNX export of "
            "all-MiniLM-L6-v2 (23 MB, made in ~5 s the first time a process needs it). Empty: "
            "`$XDG_CACHE_HOME/mesa`, by default `~/.cache/mesa`. Safe to delete: it is made again."),
    Setting("ARTICLES_DIR", "articles",
            "Directory of the starter knowledge base imported by `make run`."),
    Setting("ANSWER_THRESHOLD", None,
            "Confidence (0-1, the estimated probability that an article answers the question) from which a result "
            "counts as an answer: below it, search says that no article seems to answer, the ask-for-help form "
            "suggests nothing, the API says `\"answered\": false` and the question is listed as unanswered in "
            "the reports. Empty: the threshold fitted with the ranking's confidence (`flask index info` shows it).",
            float),
    Setting("SEARCH_MAX_QUERY", 500, "Longest search query accepted, in characters.", int),
    Setting("SEARCH_MAX_K", 50, "Most results one search may ask for.", int),
    Setting("LANGUAGES", "es,en", "UI languages offered, in order of preference when the browser says nothing."),
    Setting("SLA_TARGETS", "1=0.5/4,2=1/8,3=4/24,4=8/72,5=24/120",
            "Per priority (1 critical ... 5 planning): hours to first response / hours to resolution, "
            "counted on the clock (24x7) from the ticket's creation."),
    Setting("ESCALATE_AT", 0.75,
            "Share of the resolution time after which an unresolved L1 ticket is escalated to L2 automatically.",
            float),
    Setting("AUTO_CLOSE_DAYS", 7, "Resolved tickets the customer has not reopened are closed after this many days.",
            int),
    Setting("DUPLICATE_THRESHOLD", 0.55,
            "Similarity score from which an existing article is shown as a possible duplicate of a new one.", float),
    Setting("PORTAL_URL", "http://127.0.0.1:5000", "The portal's public address, for links in e-mails."),
    Setting("SMTP_HOST", "",
            "SMTP server for e-mail notifications. Empty: notifications are only written to the outbox "
            "(admins read it at /admin/outbox)."),
    Setting("SMTP_PORT", 587, "SMTP port.", int),
    Setting("SMTP_USER", "", "SMTP user name (empty: no login)."),
    Setting("SMTP_PASSWORD", "", "SMTP password."),
    Setting("SMTP_STARTTLS", "1", "`1` to use STARTTLS on the SMTP connection, `0` not to."),
    Setting("MAIL_FROM", "mesa@localhost", "Sender address of notifications."),
)


def load_settings(environ: dict | None = None) -> dict:
    """Flask config values (named ``MESA_<NAME>``) from defaults overridden by the environment."""
    environ = os.environ if environ is None else environ
    config = {}
    for setting in SETTINGS:
        key = ENV_PREFIX + setting.name
        raw = environ.get(key)
        if raw is None or raw == "":
            config[key] = setting.default
            continue
        try:
            config[key] = setting.type(raw)
        except ValueError:
            raise RuntimeError(f"{key}={raw!r} is not a valid {setting.type.__name__}") from None
    return config
