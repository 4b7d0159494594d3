"""The portal's search service with several worker processes sharing one index file."""

from sqlalchemy import select

from portal.db import get_session
from portal.domain.models import Article
from portal.search import SearchService


def worker(seeded_app) -> SearchService:
    """Another worker process's view of the same index file (its own loaded copy)."""
    first = seeded_app.extensions["mesa_search"]
    return SearchService(first.index_path, first.ranking.name, first.model)


def slugs(service, query, k=10):
    return [hit.slug for hit in service.search(query, k, None)]


def archive(seeded_app, slug):
    with seeded_app.app_context():
        session = get_session()
        article = session.scalar(select(Article).where(Article.slug == slug))
        article.status = "archived"
        session.commit()
        return article


def test_another_worker_sees_a_change_on_its_next_search(seeded_app):
    with seeded_app.app_context():
        other = worker(seeded_app)
        assert "mailbox-full" in slugs(other, "mailbox full outlook storage")
        base = other.index_path.read_bytes()
        article = archive(seeded_app, "mailbox-full")
        seeded_app.extensions["mesa_search"].update_article(article)
        assert other.index_path.read_bytes() == base  # the change went to the journal only
        # The other worker replays the journal's new frame before its next search: no reload needed.
        other.search("mailbox full", 5, None)
        assert other._reloading is None
        assert "mailbox-full" not in other.index().articles


def test_a_grown_journal_is_compacted_in_the_background_and_other_workers_reload(seeded_app, monkeypatch):
    import indexer.index
    from indexer.journal import journal_path

    monkeypatch.setattr(indexer.index, "COMPACT_MIN_BYTES", 0)
    monkeypatch.setattr(indexer.index, "COMPACT_SHARE", 10**9)
    with seeded_app.app_context():
        service, other = seeded_app.extensions["mesa_search"], worker(seeded_app)
        other.index()
        service.update_article(archive(seeded_app, "mailbox-full"))
        service.wait_for_compaction()
        assert not journal_path(service.index_path).exists()
        assert "mailbox-full" not in worker(seeded_app).index().articles  # a fresh load: the base has it
        other.search("mailbox full", 5, None)  # the base was replaced: a background reload
        other.wait_for_reload()
        assert "mailbox-full" not in other.index().articles
        assert service.is_current(get_session())


def test_a_lagging_worker_never_shows_an_archived_article(seeded_app):
    with seeded_app.app_context():
        lagging = worker(seeded_app)
        lagging.index()  # loaded before the change
        archive(seeded_app, "mailbox-full")  # the database changed; the index file not yet
        assert "mailbox-full" in lagging.index().articles
        assert "mailbox-full" not in slugs(lagging, "mailbox full outlook storage")


def test_two_workers_publishing_at_once_keep_both_changes(seeded_app):
    with seeded_app.app_context():
        first, second = seeded_app.extensions["mesa_search"], worker(seeded_app)
        first.index(), second.index()  # both loaded the same version
        one = archive(seeded_app, "mailbox-full")
        two = archive(seeded_app, "print-queue-stuck")
        first.update_article(one)
        second.update_article(two)  # loads the newest file under the lock before changing it
        fresh = worker(seeded_app)
        assert "mailbox-full" not in fresh.index().articles
        assert "print-queue-stuck" not in fresh.index().articles


def test_a_failed_index_save_leaves_the_file_and_the_database_consistent(seeded_app, monkeypatch):
    import os

    import pytest

    with seeded_app.app_context():
        service = seeded_app.extensions["mesa_search"]
        before = service.index_path.read_bytes()
        article = archive(seeded_app, "mailbox-full")

        def disk_full(*args, **kwargs):
            raise OSError("disk full")

        monkeypatch.setattr(os, "fsync", disk_full)
        with pytest.raises(OSError):
            service.update_article(article)
        monkeypatch.undo()
        assert service.index_path.read_bytes() == before
        assert "mailbox-full" in service.index().articles  # memory matches the file again
        assert "mailbox-full" not in slugs(service, "mailbox full outlook storage")  # and archived stays hidden
        assert not service.is_current(get_session())  # `flask index build` will bring it in step
