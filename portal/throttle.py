"""Rate limits for the web layer: the rules from the settings, the client's address, and refusing with 429.

The counters are rows in the database (portal/domain/rate_limits.py), not memory: Mesa runs several worker
processes on several hosts over one database, and a per-process counter would multiply every limit by the
number of processes. Each count is committed at once (call these before the view changes anything), so it
holds whatever the rest of the request does.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_login import current_user

from .db import get_session
from .domain import rate_limits
from .domain.errors import N_, TooManyRequests

# Rule name -> the setting that holds it (COUNT/SECONDS).
RULE_SETTINGS = {
    "login-account": "MESA_LOGIN_LIMIT_ACCOUNT",
    "login-address": "MESA_LOGIN_LIMIT_ADDRESS",
    "register-address": "MESA_REGISTER_LIMIT_ADDRESS",
    "account-mail": "MESA_ACCOUNT_MAIL_LIMIT",
    "reset-address": "MESA_RESET_LIMIT_ADDRESS",
    "search-visitor": "MESA_SEARCH_LIMIT_VISITOR",
    "search-address": "MESA_SEARCH_LIMIT_ADDRESS",
    "feedback-address": "MESA_FEEDBACK_LIMIT_ADDRESS",
}


def init_app(app: Flask) -> None:
    """Parse every rule once at start; a malformed setting refuses to start, naming it."""
    rules = {}
    for name, key in RULE_SETTINGS.items():
        try:
            rules[name] = rate_limits.Rule.parse(app.config[key])
        except ValueError as exc:
            raise RuntimeError(f"{key}: {exc}") from None
    if app.config["MESA_TRUSTED_PROXIES"] < 0:
        raise RuntimeError("MESA_TRUSTED_PROXIES must be 0 or more")
    app.extensions["mesa_rate_rules"] = rules


def client_address() -> str:
    """The client's IP address: the connection's, or with MESA_TRUSTED_PROXIES = N the Nth address from the
    right of X-Forwarded-For (the one the outermost trusted proxy saw; anything left of it is client-made)."""
    proxies = current_app.config["MESA_TRUSTED_PROXIES"]
    if proxies:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies][:64]
    return (request.remote_addr or "unknown")[:64]


def _rule(name: str) -> rate_limits.Rule:
    return current_app.extensions["mesa_rate_rules"][name]


def _refuse(count: rate_limits.Count) -> TooManyRequests:
    """The 429 for a used-up rule, saying how long to wait."""
    if count.retry_after < 120:
        return TooManyRequests(N_("Too many attempts. Try again in %(seconds)d seconds."),
                               count.retry_after, seconds=count.retry_after)
    return TooManyRequests(N_("Too many attempts. Try again in %(minutes)d minutes."),
                           count.retry_after, minutes=-(-count.retry_after // 60))


def hit(name: str, subject: str) -> rate_limits.Count:
    """Count one event of rule ``name`` for ``subject`` (an address, an account) and commit the count."""
    session = get_session()
    count = rate_limits.hit(session, f"{name}:{subject}", _rule(name))
    session.commit()
    return count


def limit(name: str, subject: str) -> None:
    """Count one event and refuse it (TooManyRequests, a 429 with Retry-After) when it exceeds the rule."""
    limit_all([(name, subject)])


def limit_all(limits: list[tuple[str, str]]) -> None:
    """Count one event under each (rule, subject) in one transaction; refuse (429) if any is exceeded,
    with the longest wait."""
    session = get_session()
    counts = [rate_limits.hit(session, f"{name}:{subject}", _rule(name)) for name, subject in limits]
    session.commit()
    exceeded = [count for count in counts if count.exceeded]
    if exceeded:
        raise _refuse(max(exceeded, key=lambda count: count.retry_after))


def visitor() -> str:
    """Who a limit per person counts: the signed-in user, else the browser session."""
    from .tracking import browser_session_id

    if current_user.is_authenticated:
        return f"user-{current_user.id}"
    return f"session-{browser_session_id()}"


def limit_searches() -> None:
    """A search recorded for the reports: at most MESA_SEARCH_LIMIT_VISITOR per visitor and
    MESA_SEARCH_LIMIT_ADDRESS per client address (429 beyond)."""
    limit_all([("search-visitor", visitor()), ("search-address", client_address())])


def refuse_if_full(name: str, subject: str) -> None:
    """Refuse (429) when ``subject`` has used up rule ``name`` in this window, without counting anything."""
    count = rate_limits.peek(get_session(), f"{name}:{subject}", _rule(name))
    if count.full:
        raise _refuse(count)


def allows(name: str, subject: str) -> bool:
    """Count one event and say whether it is within the rule (for limits that skip work instead of refusing)."""
    return not hit(name, subject).exceeded


def reset(name: str, subject: str) -> None:
    """Forget ``subject``'s count for rule ``name`` (committed with the request's transaction)."""
    rate_limits.reset(get_session(), f"{name}:{subject}")
