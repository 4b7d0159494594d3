"""`/api/v1/search`, `/api/v1/suggest` and `/api/v1/me`: the pages' own search and suggestion views, documented."""

from __future__ import annotations

from flask_login import current_user, login_required

from ..views import api as page_api
from ..views import help as help_views
from .parsing import Blueprint
from .schemas import Me, SearchArgs, SearchResult, SuggestArgs, SuggestResult
from .tokens import auth_kind

bp = Blueprint("api_v1_search", __name__, url_prefix="/api/v1", description="Search, suggestions, who am I.")


@bp.get("/search")
@bp.arguments(SearchArgs, location="query", as_kwargs=True)
@bp.response(200, SearchResult)
def search(**_args):
    """Search the knowledge base: the best articles the caller may read, with their confidence.

    The same answer as `/api/search` (the search page's endpoint): ``answered`` says whether any result is
    confident enough to count as an answer (``threshold``).
    """
    return page_api.search()


@bp.get("/suggest")
@bp.arguments(SuggestArgs, location="query", as_kwargs=True)
@bp.response(200, SuggestResult)
def suggest(**_args):
    """Up to five articles that confidently answer what the person is typing (the ask-for-help form's call)."""
    return help_views.api_suggest()


@bp.get("/me")
@login_required
@bp.response(200, Me)
def me():
    """The signed-in user (by token or session) and the access of the request."""
    kind, scope = auth_kind()
    return {"id": current_user.id, "name": current_user.name, "email": current_user.email,
            "role": current_user.role, "auth": kind, "scope": scope}
