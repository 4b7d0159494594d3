"""End-to-end retrieval with the real bundled models (marked real_model; a few seconds each)."""

import pytest

from indexer import DEFAULT_RANKING, KnowledgeIndex, get_ranking, make_embedders, read_articles
from tests.conftest import ARTICLES_DIR

pytestmark = pytest.mark.real_model

PARAPHRASES = [
    ("no puedo conectarme a la VPN desde casa", {"vpn-conectar-desde-casa"}),
    ("my laptop disk is full", {"laptop-disk-full"}),
    ("olvidé mi contraseña y no puedo entrar al correo", {"restablecer-contrasena"}),
    ("the print job is stuck and nothing comes out of the printer", {"print-queue-stuck"}),
    ("he cambiado de móvil y ya no me llegan los códigos de verificación", {"mfa-cambiar-de-movil"}),
    ("nobody can hear me in Teams meetings", {"teams-microphone-camera-not-working"}),
]


def starter_index(ranking_name: str, release_models: bool = False) -> KnowledgeIndex:
    ranking = get_ranking(ranking_name)
    index = KnowledgeIndex.create(ranking, make_embedders(ranking))
    index.build([a for a in read_articles(ARTICLES_DIR) if a.status == "published"],
                release_models=release_models)
    return index


@pytest.fixture(scope="module")
def hybrid_index():
    # Built as `flask index build` does, letting go of each model: the searches load them again.
    return starter_index(DEFAULT_RANKING, release_models=True)


@pytest.fixture(scope="module")
def minilm_index():
    return starter_index("sentence-transformers")


@pytest.mark.parametrize("query, expected", PARAPHRASES)
def test_the_default_ranking_finds_the_article_first(hybrid_index, query, expected):
    top = [hit.slug for hit in hybrid_index.search(query, k=3)]
    assert top[0] in expected, f"{query!r} -> {top}"


@pytest.mark.parametrize("query, other_lang, expected", [
    ("my phone changed and the verification codes no longer arrive", "es", "mfa-cambiar-de-movil"),
    ("la impresora no imprime, el trabajo se queda en la cola", "en", "print-queue-stuck"),
])
def test_a_question_finds_the_article_in_the_other_language(hybrid_index, query, other_lang, expected):
    top = [hit.slug for hit in hybrid_index.search(query, k=3, lang=other_lang)]
    assert top[0] == expected, f"{query!r} -> {top}"


@pytest.mark.parametrize("query, expected", [
    ("me han robado el móvil del trabajo en el metro, ¿qué hago?", "lost-or-stolen-device"),
    ("¿cómo pongo en marcha el teléfono de empresa que me acaban de entregar?", "corporate-mobile-phone-setup"),
])
def test_a_spanish_question_finds_the_english_only_article_first(hybrid_index, query, expected):
    assert hybrid_index.articles[expected].lang == "en" and not hybrid_index.articles[expected].topic  # English only
    top = [hit.slug for hit in hybrid_index.search(query, k=3)]
    assert top[0] == expected, f"{query!r} -> {top}"


def test_bundled_minilm_finds_english_paraphrases(minilm_index):
    field = minilm_index.meta["fields"]["sentence-transformers"]
    assert field["model"] == "all-MiniLM-L6-v2-int8-onnx" and field["dim"] == 384  # the default: int8 ONNX
    top = [hit.slug for hit in minilm_index.search("my laptop disk is full", k=3)]
    assert "laptop-disk-full" in top
    top = [hit.slug for hit in minilm_index.search("I cannot connect to the VPN when working from home", k=3,
                                                   prefer_lang="en")]  # an English reader: the topic in English
    assert "vpn-connect-from-home" in top


def test_portal_api_with_the_default_model_puts_the_right_article_first(tmp_path):
    from portal import create_app
    from portal.db import get_session
    from portal.domain.articles import import_directory
    from portal.domain.models import Base
    from portal.search import get_search

    app = create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path),
                      "MESA_DATABASE_URL": f"sqlite:///{tmp_path / 'mesa.db'}"})
    assert app.config["MESA_RANKING"] == DEFAULT_RANKING  # the default of `make run`
    Base.metadata.create_all(app.extensions["mesa_engine"])
    with app.app_context():
        import_directory(get_session(), ARTICLES_DIR)
        get_session().commit()
        get_search().rebuild(get_session())
    client = app.test_client()
    for query, ui, expected in [("no puedo conectarme a la VPN desde casa", "es", "vpn-conectar-desde-casa"),
                                ("my laptop disk is full", "en", "laptop-disk-full"),
                                ("my laptop disk is full", "es", "portatil-disco-lleno")]:
        results = client.get("/api/search", query_string={"q": query, "k": 3},
                             headers={"Accept-Language": ui}).json["results"]
        assert results[0]["slug"] == expected, (query, ui, [r["slug"] for r in results])
        other = {"vpn-conectar-desde-casa": "vpn-connect-from-home", "laptop-disk-full": "portatil-disco-lleno",
                 "portatil-disco-lleno": "laptop-disk-full"}[expected]
        assert [t["slug"] for t in results[0]["translations"]] == [other]  # the topic once, in the UI's language
        assert other not in [r["slug"] for r in results]
