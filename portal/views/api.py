"""JSON API."""

from __future__ import annotations

from flask import Blueprint, jsonify, request, url_for

from ..auth import viewer
from ..search import counts_as_answer, get_search
from .search_params import read_search_request

bp = Blueprint("api", __name__, url_prefix="/api")


def why_it_matched(hit) -> dict:
    """Why a hit matched: its best section, the cosine similarity of the multilingual model, the query's
    words it contains, and each retriever's weighted share of the score."""
    return {"section": hit.heading, "semantic": hit.semantic, "keywords": hit.keywords,
            "retrievers": hit.retrievers}


@bp.get("/search")
def search():
    """`GET /api/search?q=...&k=...&lang=...`: the best articles the caller may read, as JSON.

    ``answered`` says whether any of them is confident enough to count as an answer (``threshold``); each
    result has its ``confidence`` (the estimated probability that it answers the query) and ``answers``.
    """
    params = read_search_request(request.args, default_k=5)
    search_service = get_search()
    hits = search_service.search(params.query, params.k, viewer(), lang=params.lang)
    threshold = search_service.threshold()
    return jsonify(
        query=params.query,
        answered=any(counts_as_answer(hit, threshold) for hit in hits),
        threshold=threshold,
        results=[{
            "slug": hit.slug,
            "title": hit.title,
            "url": url_for("public.article", slug=hit.slug, _external=False),
            "lang": hit.lang,
            "category": hit.category,
            "section": hit.heading,
            "snippet": hit.snippet,
            "score": hit.score,
            "confidence": hit.confidence,
            "answers": counts_as_answer(hit, threshold),
            "translations": [{**other, "url": url_for("public.article", slug=other["slug"])}
                             for other in hit.translations],
            "why": why_it_matched(hit),
        } for hit in hits],
    )
