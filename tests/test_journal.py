"""Changes saved as a journal beside the index file: fast to write, replayed by readers, safe to tear."""

import pytest

import indexer.index
from indexer import IndexConflictError, KnowledgeIndex
from indexer.journal import journal_path
from tests.test_index import article, fake_embedders


def slugs(index, query, k=5):
    return [hit.slug for hit in index.search(query, k=k)]


@pytest.fixture
def saved(tmp_path):
    """A saved three-article index and its path."""
    index = KnowledgeIndex.create("fake", fake_embedders())
    index.build([
        article("vpn", "VPN connection", "## Fix\n\nRestart the VPN client and sign in again."),
        article("printer", "Printer jammed", "## Fix\n\nOpen the tray and remove the paper."),
        article("wifi", "Wi-Fi guest network", "## Fix\n\nJoin the guest network with the daily code."),
    ])
    path = tmp_path / "index.npz"
    index.save(path)
    return index, path


MFA = article("mfa", "Authenticator app lost", "## Fix\n\nUse the backup codes printed at enrolment.")


def test_changes_go_to_the_journal_and_a_load_replays_them(saved):
    index, path = saved
    base = path.read_bytes()
    index.upsert(MFA)
    index.remove("printer")
    assert index.save_changes(path) == 2
    assert path.read_bytes() == base  # the base file is not rewritten
    assert journal_path(path).exists()
    loaded = KnowledgeIndex.load(path, fake_embedders())
    assert set(loaded.articles) == {"vpn", "wifi", "mfa"}
    assert slugs(loaded, "backup codes authenticator")[0] == "mfa"
    assert "printer" not in slugs(loaded, "printer jammed paper tray")
    # The metadata read without loading the vectors includes the journal's changes.
    info = KnowledgeIndex.read_info(path)
    assert info["articles"] == 3 and info["fingerprint"] == index.fingerprint() == loaded.fingerprint()
    # New ids never collide with those of replayed articles.
    loaded.upsert(article("new", "New", "Brand new text"))
    assert min(loaded.articles["new"].chunk_ids) > max(loaded.articles["mfa"].chunk_ids)


def test_an_edit_replaces_the_article_and_nothing_is_saved_when_nothing_changed(saved):
    index, path = saved
    assert index.save_changes(path) == 0 and not journal_path(path).exists()
    edited = article("vpn", "VPN connection", "## Fix\n\nReinstall the tunnel profile from the portal.")
    index.upsert(edited)
    index.upsert(edited)  # same version again: no second frame
    assert index.save_changes(path) == 1
    loaded = KnowledgeIndex.load(path, fake_embedders())
    assert len(loaded.articles) == 3
    assert "tunnel profile" in loaded.search("reinstall tunnel profile", k=1)[0].snippet
    assert loaded.stores["fake"].count == len(loaded.chunks)


def test_another_reader_refreshes_with_only_the_new_frames(saved):
    index, path = saved
    reader = KnowledgeIndex.load(path, fake_embedders())
    index.upsert(MFA)
    index.save_changes(path)
    assert reader.refresh(path) is True
    assert "mfa" in reader.articles
    end = reader.journal_end
    assert reader.refresh(path) is True and reader.journal_end == end  # nothing new: nothing replayed
    index.remove("mfa")
    index.save_changes(path)
    reader.refresh(path)
    assert "mfa" not in reader.articles
    # A full save replaces the base: a refresh cannot apply that, the reader must load again.
    index.save(path)
    assert not journal_path(path).exists()
    assert reader.refresh(path) is False


def test_a_torn_last_frame_is_ignored_and_cut_off_by_the_next_writer(saved):
    index, path = saved
    index.upsert(MFA)
    index.save_changes(path)
    complete = journal_path(path).stat().st_size
    index.upsert(article("disk", "Disk full", "## Fix\n\nEmpty the recycle bin."))
    index.save_changes(path)
    journal = journal_path(path)
    journal.write_bytes(journal.read_bytes()[:-7])  # the process died in the middle of the second append
    loaded = KnowledgeIndex.load(path, fake_embedders())
    assert "mfa" in loaded.articles and "disk" not in loaded.articles
    assert loaded.journal_end == complete
    loaded.upsert(article("toner", "Toner low", "## Fix\n\nOrder a cartridge."))
    loaded.save_changes(path)
    again = KnowledgeIndex.load(path, fake_embedders())
    assert set(again.articles) == {"vpn", "printer", "wifi", "mfa", "toner"}


def test_a_journal_left_from_before_a_rebuild_is_ignored(saved, tmp_path):
    index, path = saved
    index.upsert(MFA)
    index.save_changes(path)
    old_journal = journal_path(path).read_bytes()
    rebuilt = KnowledgeIndex.create("fake", fake_embedders())
    rebuilt.build([article("vpn", "VPN connection", "Restart the VPN client.")])
    rebuilt.save(path)
    journal_path(path).write_bytes(old_journal)  # e.g. a crash between the rename and the removal
    assert set(KnowledgeIndex.load(path, fake_embedders()).articles) == {"vpn"}
    assert KnowledgeIndex.read_info(path)["articles"] == 1


def test_a_writer_that_missed_another_writers_change_is_refused(saved):
    index, path = saved
    other = KnowledgeIndex.load(path, fake_embedders())
    other.upsert(MFA)
    other.save_changes(path)
    index.remove("printer")
    with pytest.raises(IndexConflictError, match="refresh"):
        index.save_changes(path)
    other.save(path)  # a rebuild or compaction elsewhere
    with pytest.raises(IndexConflictError, match="load it again"):
        index.save_changes(path)


def test_a_failed_append_leaves_no_half_change(saved, monkeypatch):
    import os

    index, path = saved
    index.upsert(MFA)
    index.save_changes(path)
    before = journal_path(path).read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    index.remove("vpn")
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        index.save_changes(path)
    monkeypatch.undo()
    assert journal_path(path).read_bytes() == before
    assert "vpn" in KnowledgeIndex.load(path, fake_embedders()).articles


def test_a_grown_journal_is_compacted_into_the_base_file(saved, monkeypatch):
    index, path = saved
    monkeypatch.setattr(indexer.index, "COMPACT_MIN_BYTES", 0)
    monkeypatch.setattr(indexer.index, "COMPACT_SHARE", 10**9)  # any journal counts as grown
    index.upsert(MFA)
    index.save_changes(path, compact=False)
    assert index.needs_compaction(path) and journal_path(path).exists()
    index.remove("wifi")
    index.save_changes(path)  # compact=True by default: a full save instead
    assert not journal_path(path).exists()
    assert set(KnowledgeIndex.load(path, fake_embedders()).articles) == {"vpn", "printer", "mfa"}
