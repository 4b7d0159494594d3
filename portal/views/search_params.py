"""Reading and checking the search parameters shared by the search page and the API."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from indexer.articles import LANGUAGES

from ..domain.errors import N_, Invalid
from ..domain.numbers import parse_int

DEFAULT_K = 10


@dataclass
class SearchRequest:
    """A checked search: the query text, how many results, and an optional article language."""

    query: str
    k: int
    lang: str | None


def read_search_request(args, default_k: int = DEFAULT_K) -> SearchRequest:
    """Parse ``q``, ``k`` and ``lang`` from request args; Invalid with a clear message when they are wrong."""
    query = " ".join((args.get("q") or "").split())
    max_query = current_app.config["MESA_SEARCH_MAX_QUERY"]
    max_k = current_app.config["MESA_SEARCH_MAX_K"]
    if not query:
        raise Invalid(N_("Type a few words to search for."))
    if len(query) > max_query:
        raise Invalid(N_("The search is too long: at most %(max)d characters."), max=max_query)
    raw_k = args.get("k")
    if raw_k in (None, ""):
        k = default_k
    else:
        k = parse_int(raw_k, low=1, high=max_k)
        if k is None:
            raise Invalid(N_("'k' must be a whole number from 1 to %(max)d."), max=max_k)
    lang = args.get("lang") or None
    if lang is not None and lang not in LANGUAGES:
        raise Invalid(N_("'lang' must be one of: %(langs)s."), langs=", ".join(LANGUAGES))
    return SearchRequest(query, k, lang)
