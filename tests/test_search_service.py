"""The search index follows the database: several processes (each its own index in memory and its own
snapshot file, as on several hosts) over one database see every publish, and never lose one."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import func, select

from portal.db import get_session
from portal.domain import knowledge, search_index
from portal.domain.models import Article, Role, SearchDocument, SearchGeneration
from portal.search import SearchService
from tests.conftest import ROOT, POSTGRES_URL, role_name  # noqa: F401

QUERY = "mailbox full outlook storage"


def other_host(app, tmp_path, name="host-b") -> SearchService:
    """Another process's search service on the same database, with its own snapshot directory."""
    first = app.extensions["mesa_search"]
    return SearchService(app.extensions["mesa_db"], tmp_path / name / "index.npz", first.ranking.name, first.model)


def slugs(service, query=QUERY, k=10):
    return [hit.slug for hit in service.search(query, k, None)]


def set_status(app, slug, status, stage=True):
    """Change an article's status as the portal does: its search document in the same transaction."""
    with app.app_context():
        session = get_session()
        article = session.scalar(select(Article).where(Article.slug == slug))
        article.status = status
        if stage:
            app.extensions["mesa_search"].stage_article(session, article)
        session.commit()


def publish_new(app, title, body):
    with app.app_context():
        session = get_session()
        l2 = session.scalar(select(knowledge.User).where(knowledge.User.role == Role.AGENT_L2))
        article = knowledge.create_article(session, knowledge.ArticleDraft(title, body, lang="en"), l2)
        knowledge.change_state(session, article, l2, "publish", article.version)
        app.extensions["mesa_search"].stage_article(session, article)
        session.commit()
        return article.slug


def test_another_host_sees_a_publish_on_its_next_search(seeded_app, tmp_path):
    with seeded_app.app_context():
        other = other_host(seeded_app, tmp_path)
        assert "mailbox-full" in slugs(other)
        before = other.applied_change
        set_status(seeded_app, "mailbox-full", "archived")
        other.follow(wait=True)  # what its next search does once the poll interval has passed
        assert "mailbox-full" not in other.index().articles and other.applied_change == before + 1
        slug = publish_new(seeded_app, "Dock flickers on the second monitor",
                           "## Fix\n\nUpdate the dock firmware from the vendor's tool.\n")
        other.follow(wait=True)
        assert slug in slugs(other, "dock flickers second monitor firmware")


def test_deleting_the_snapshot_loses_nothing(seeded_app, tmp_path):
    with seeded_app.app_context():
        set_status(seeded_app, "print-queue-stuck", "archived")
        first = other_host(seeded_app, tmp_path)
        expected = slugs(first)
        assert first.snapshot_path.exists()  # a load from the database writes one (a cache)
        first.snapshot_path.unlink()
        again = other_host(seeded_app, tmp_path)
        assert slugs(again) == expected
        assert "print-queue-stuck" not in again.index().articles


def test_a_snapshot_from_before_the_changes_catches_up(seeded_app, tmp_path, caplog):
    with seeded_app.app_context():
        other_host(seeded_app, tmp_path).index()  # writes host-b's snapshot
        set_status(seeded_app, "mailbox-full", "archived")
        caplog.set_level("INFO", logger="portal.search")
        restarted = other_host(seeded_app, tmp_path)
        assert "mailbox-full" not in restarted.index().articles
        assert "loaded from the database" not in caplog.text  # it started from its snapshot, then caught up


def test_a_lagging_process_never_shows_an_archived_article(seeded_app, tmp_path):
    with seeded_app.app_context():
        lagging = other_host(seeded_app, tmp_path)
        lagging.index()
        lagging._checked = float("inf")  # it has not polled yet
        set_status(seeded_app, "mailbox-full", "archived", stage=False)
        assert "mailbox-full" in lagging.index().articles
        assert "mailbox-full" not in slugs(lagging)


def test_two_hosts_publishing_keep_both_changes_in_order(seeded_app, tmp_path):
    with seeded_app.app_context():
        b = other_host(seeded_app, tmp_path)
        b.index()
        set_status(seeded_app, "mailbox-full", "archived")
        with seeded_app.app_context():
            session = get_session()
            article = session.scalar(select(Article).where(Article.slug == "print-queue-stuck"))
            article.status = "archived"
            b.stage_article(session, article)  # host B publishes through its own service
            session.commit()
        b.follow(wait=True)
        fresh = other_host(seeded_app, tmp_path, "host-c")
        for service in (b, fresh, seeded_app.extensions["mesa_search"]):
            service.index()
            service.follow(wait=True)
            assert {"mailbox-full", "print-queue-stuck"}.isdisjoint(service.index().articles)
        changes = sorted(get_session().scalars(select(SearchDocument.change).where(
            SearchDocument.slug.in_(["mailbox-full", "print-queue-stuck"]))))
        assert len(set(changes)) == 2


def test_publishes_during_a_rebuild_are_never_lost(seeded_app, tmp_path, monkeypatch):
    import portal.search

    published, publishing = [], []
    real = portal.search.prepare_articles

    def prepare_while_others_publish(*args, **kwargs):
        for group in real(*args, **kwargs):
            if len(published) < 3 and not publishing:  # another host publishes while the build embeds
                publishing.append(True)
                published.append(publish_new(seeded_app, f"Badge reader {len(published)} blinks red",
                                             "## Fix\n\nHold the badge still for two seconds.\n"))
                publishing.clear()
            yield group

    monkeypatch.setattr(portal.search, "prepare_articles", prepare_while_others_publish)
    monkeypatch.setattr(portal.search, "FINAL_PASS", 0)
    with seeded_app.app_context():
        session = get_session()
        service = seeded_app.extensions["mesa_search"]
        old = search_index.active_generation(session).uid
        other = other_host(seeded_app, tmp_path)
        other.index()
        service.rebuild(session, force=True)
        new = search_index.active_generation(session)
        assert new.uid != old and len(published) == 3
        held = search_index.indexed_hashes(session, new)
        assert set(published) <= set(held)
        assert not search_index.difference(session, new)
        assert session.scalar(select(func.count()).select_from(SearchGeneration)) == 1  # the old one dropped
        other.follow(wait=True)  # the switch: the other host loads the new generation in the background
        other.wait_for_reload()
        assert other.health()[0]["behind"] == 0 and set(published) <= set(other.index().articles)


def test_a_stopped_build_goes_on_where_it_stopped(seeded_app, monkeypatch):
    import portal.search

    real = portal.search.prepare_articles

    def stop_after_one_group(*args, **kwargs):
        for number, group in enumerate(real(*args, **kwargs, batch=16)):
            if number == 2:
                raise KeyboardInterrupt  # Ctrl-C, or the process killed
            yield group

    with seeded_app.app_context():
        session = get_session()
        service = seeded_app.extensions["mesa_search"]
        old = search_index.active_generation(session).uid
        monkeypatch.setattr(portal.search, "prepare_articles", stop_after_one_group)
        with pytest.raises(KeyboardInterrupt):
            service.rebuild(session, force=True)
        session.rollback()
        building = session.scalar(select(SearchGeneration).where(SearchGeneration.status == "building"))
        kept = len(search_index.indexed_hashes(session, building))
        assert kept > 0 and search_index.active_generation(session).uid == old  # searches go on, untouched
        monkeypatch.undo()
        embedded = []

        def counting(articles, *args, **kwargs):
            articles = list(articles)
            embedded.extend(articles)
            return real(articles, *args, **kwargs)

        monkeypatch.setattr(portal.search, "prepare_articles", counting)
        service.rebuild(session, force=True)
        assert search_index.active_generation(session).uid == building.uid
        published = session.scalar(select(func.count()).select_from(Article).where(Article.status == "published"))
        assert len(embedded) == published - kept  # only what the stopped build had not written


def test_an_unchanged_article_is_not_embedded_again(seeded_app, monkeypatch):
    import portal.search

    def no_model(*args, **kwargs):
        raise AssertionError("the model ran")

    monkeypatch.setattr(portal.search, "prepare_articles", no_model)
    with seeded_app.app_context():
        session = get_session()
        article = session.scalar(select(Article).where(Article.slug == "mailbox-full"))
        assert seeded_app.extensions["mesa_search"].stage_article(session, article) is False
        assert seeded_app.extensions["mesa_search"].is_current(session)


KILL_MID_PUBLISH = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from sqlalchemy import select
    from tests.conftest import make_test_app
    from pathlib import Path
    from portal.db import get_session
    from portal.domain.models import Article
    app = make_test_app(Path({directory!r}), {url!r})
    with app.app_context():
        session = get_session()
        article = session.scalar(select(Article).where(Article.slug == "mailbox-full"))
        article.status = "archived"
        app.extensions["mesa_search"].stage_article(session, article)
        session.flush()
        print("staged", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # killed before the commit
""")


def test_a_worker_killed_in_the_middle_of_a_publish_leaves_everything_consistent(seeded_app, tmp_path):
    url = str(seeded_app.extensions["mesa_engine"].url.render_as_string(hide_password=False))
    script = KILL_MID_PUBLISH.format(root=str(ROOT), directory=str(tmp_path / "killed"), url=url)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == -signal.SIGKILL and "staged" in done.stdout, done.stderr
    with seeded_app.app_context():
        session = get_session()
        assert session.scalar(select(Article.status).where(Article.slug == "mailbox-full")) == "published"
        service = seeded_app.extensions["mesa_search"]
        assert service.is_current(session)
        assert "mailbox-full" in slugs(other_host(seeded_app, tmp_path))
        set_status(seeded_app, "mailbox-full", "archived")  # and the next publish goes through
        service.follow(wait=True)
        assert "mailbox-full" not in service.index().articles


def edit_body(app, slug, extra, stage=True):
    """Change an article's text (and its content hash) as an edit does."""
    from portal.domain.articles import to_document

    with app.app_context():
        session = get_session()
        article = session.scalar(select(Article).where(Article.slug == slug))
        article.body += f"\n\n{extra}\n"
        article.content_hash = to_document(article).content_hash()
        if stage:
            app.extensions["mesa_search"].stage_article(session, article)
        session.commit()
        return article.content_hash


def held_hash(app, slug):
    with app.app_context():
        session = get_session()
        return search_index.indexed_hashes(session, search_index.active_generation(session)).get(slug)


def test_a_publish_while_a_rebuild_switches_lands_in_the_new_generation(seeded_app, monkeypatch):
    import portal.search

    real = portal.search.prepare_articles
    rebuilt = []

    def rebuild_meanwhile(documents, *args, **kwargs):
        documents = list(documents)
        if not rebuilt and [d.slug for d in documents] == ["mailbox-full"]:  # the publish is embedding
            rebuilt.append(True)
            with seeded_app.app_context():
                seeded_app.extensions["mesa_search"].rebuild(get_session(), force=True, load=False)
        return real(documents, *args, **kwargs)

    monkeypatch.setattr(portal.search, "prepare_articles", rebuild_meanwhile)
    with seeded_app.app_context():
        old = search_index.active_generation(get_session()).uid
    expected = edit_body(seeded_app, "mailbox-full", "Ask IT for a larger mailbox if archiving is not enough.")
    assert rebuilt
    with seeded_app.app_context():
        session = get_session()
        assert search_index.active_generation(session).uid != old
        assert not search_index.difference(session, search_index.active_generation(session))
    assert held_hash(seeded_app, "mailbox-full") == expected


def test_an_index_build_never_writes_an_older_version_over_an_edit_made_meanwhile(seeded_app, monkeypatch):
    import portal.search

    for slug in ("mailbox-full", "print-queue-stuck", "vpn-connect-from-home"):
        edit_body(seeded_app, slug, "A line the index has not seen.", stage=False)  # what a build will embed
    real = portal.search.prepare_articles
    newer = []

    def edit_meanwhile(documents, *args, **kwargs):
        for group in real(documents, *args, **kwargs):
            if not newer and any(p.slug == "mailbox-full" for p in group):  # embedded; now someone edits it
                newer.append(None)  # (the edit's own embedding comes through here too)
                newer[0] = edit_body(seeded_app, "mailbox-full", "Newer advice, published meanwhile.")
            yield group

    monkeypatch.setattr(portal.search, "prepare_articles", edit_meanwhile)
    monkeypatch.setattr(portal.search, "FINAL_PASS", 0)
    with seeded_app.app_context():
        session = get_session()
        assert seeded_app.extensions["mesa_search"].sync(session)
        assert newer and not search_index.difference(session, search_index.active_generation(session))
    assert held_hash(seeded_app, "mailbox-full") == newer[0]
