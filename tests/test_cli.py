"""`flask kb`, `flask index`, `flask users` and `python -m indexer` commands."""

import json
import shutil

from sqlalchemy import func, select

from indexer.cli import main as indexer_main
from portal.db import get_session
from portal.domain.models import Article, User
from tests.conftest import ARTICLES_DIR, BENCH_DIR


def invoke(runner, *args):
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_kb_import_is_idempotent_by_slug_and_hash(app, runner, tmp_path):
    kb = tmp_path / "kb"
    shutil.copytree(ARTICLES_DIR, kb)
    count = len(list(kb.glob("*.md")))
    assert f"{count} new, 0 updated, 0 unchanged" in invoke(runner, "kb", "import", str(kb))
    assert f"0 new, 0 updated, {count} unchanged" in invoke(runner, "kb", "import", str(kb))
    page = kb / "vpn-connect-from-home.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n## Extra\n\nOne more step.\n", encoding="utf-8")
    assert f"0 new, 1 updated, {count - 1} unchanged" in invoke(runner, "kb", "import", str(kb))
    with app.app_context():
        assert get_session().scalar(select(func.count()).select_from(Article)) == count


def portal_changes(app, slug_to_edit: str, slug_to_archive: str) -> None:
    """An L2 agent edits one imported article and archives another, as in the portal."""
    from portal.domain import knowledge
    from portal.domain.models import Role, User

    with app.app_context():
        session = get_session()
        agent = User(email="l2@example.com", name="L2", role=Role.AGENT_L2, password_hash="x")
        session.add(agent)
        article = session.scalar(select(Article).where(Article.slug == slug_to_edit))
        draft = knowledge.ArticleDraft(article.title, article.body + "\n## Edited in the portal\n\nNew step.\n",
                                       article.lang, article.category, list(article.tags), article.visibility)
        knowledge.edit_article(session, article, agent, draft, article.version)
        archived = session.scalar(select(Article).where(Article.slug == slug_to_archive))
        knowledge.change_state(session, archived, agent, "archive", archived.version)
        session.commit()


def article_state(app, slug: str) -> tuple[str, str, int]:
    with app.app_context():
        article = get_session().scalar(select(Article).where(Article.slug == slug))
        return article.status, article.body, len(article.revisions)


def test_kb_import_never_undoes_work_done_in_the_portal(app, runner, tmp_path):
    kb = tmp_path / "kb"
    shutil.copytree(ARTICLES_DIR, kb)
    count = len(list(kb.glob("*.md")))
    invoke(runner, "kb", "import", str(kb))
    portal_changes(app, "vpn-connect-from-home", "mailbox-full")
    edited, archived = article_state(app, "vpn-connect-from-home"), article_state(app, "mailbox-full")
    for _ in range(2):  # `make run` twice: nothing is reverted or un-archived, and the second run says the same
        output = invoke(runner, "kb", "import", str(kb))
        assert f"0 new, 0 updated, {count - 2} unchanged, kept 2 edited in the portal" in output
        assert "mailbox-full, vpn-connect-from-home" in output and "--overwrite" in output
        assert article_state(app, "vpn-connect-from-home") == edited and "Edited in the portal" in edited[1]
        assert article_state(app, "mailbox-full") == archived and archived[0] == "archived"


def test_kb_import_takes_a_changed_file_only_for_articles_untouched_in_the_portal(app, runner, tmp_path):
    kb = tmp_path / "kb"
    shutil.copytree(ARTICLES_DIR, kb)
    count = len(list(kb.glob("*.md")))
    invoke(runner, "kb", "import", str(kb))
    portal_changes(app, "vpn-connect-from-home", "mailbox-full")
    for name in ("vpn-connect-from-home", "mailbox-full", "laptop-disk-full"):  # upstream changes
        page = kb / f"{name}.md"
        page.write_text(page.read_text(encoding="utf-8") + "\n## Upstream\n\nFrom the files.\n", encoding="utf-8")
    output = invoke(runner, "kb", "import", str(kb))
    assert f"0 new, 1 updated, {count - 3} unchanged, kept 2 edited in the portal" in output
    assert "From the files." in article_state(app, "laptop-disk-full")[1]
    assert "From the files." not in article_state(app, "vpn-connect-from-home")[1]
    assert article_state(app, "mailbox-full")[0] == "archived"

    output = invoke(runner, "kb", "import", "--overwrite", str(kb))
    assert f"0 new, 0 updated, {count - 2} unchanged, overwrote 2 edited in the portal" in output
    status, body, _ = article_state(app, "vpn-connect-from-home")
    assert "From the files." in body and "Edited in the portal" not in body
    assert article_state(app, "mailbox-full")[0] == "published"
    assert f"0 new, 0 updated, {count} unchanged." in invoke(runner, "kb", "import", str(kb))


def test_kb_import_after_exporting_portal_edits_follows_the_files_again(app, runner, tmp_path):
    invoke(runner, "kb", "import", str(ARTICLES_DIR))
    portal_changes(app, "vpn-connect-from-home", "mailbox-full")
    kb = tmp_path / "kb"
    invoke(runner, "kb", "export", str(kb))
    count = len(list(kb.glob("*.md")))
    assert f"0 new, 0 updated, {count} unchanged." in invoke(runner, "kb", "import", str(kb))
    page = kb / "vpn-connect-from-home.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n## Upstream\n\nFrom the files.\n", encoding="utf-8")
    assert f"0 new, 1 updated, {count - 1} unchanged." in invoke(runner, "kb", "import", str(kb))
    assert "From the files." in article_state(app, "vpn-connect-from-home")[1]


def test_kb_export_writes_the_same_bytes_back(runner, tmp_path):
    invoke(runner, "kb", "import", str(ARTICLES_DIR))
    out = tmp_path / "exported"
    invoke(runner, "kb", "export", str(out))
    originals = sorted(ARTICLES_DIR.glob("*.md"))
    assert sorted(p.name for p in out.glob("*.md")) == [p.name for p in originals]
    for path in originals:
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name


def test_kb_import_of_a_bench_pack_round_trips_stably(runner, tmp_path):
    invoke(runner, "kb", "import", str(BENCH_DIR / "wiki-es"))
    invoke(runner, "kb", "export", str(tmp_path / "one"))
    invoke(runner, "kb", "import", str(tmp_path / "one"))
    invoke(runner, "kb", "export", str(tmp_path / "two"))
    for path in (tmp_path / "one").glob("*.md"):
        assert (tmp_path / "two" / path.name).read_bytes() == path.read_bytes()


def test_kb_import_names_the_bad_file(runner, tmp_path):
    (tmp_path / "broken.md").write_text("---\ntitle: x\n", encoding="utf-8")
    result = runner.invoke(args=["kb", "import", str(tmp_path)])
    assert result.exit_code != 0
    assert "broken.md" in result.output and "closing '---'" in result.output


def test_index_build_skips_when_current_and_rebuilds_after_a_change(app, runner, tmp_path):
    invoke(runner, "kb", "import", str(ARTICLES_DIR))
    assert "Indexed" in invoke(runner, "index", "build", "--quiet")
    assert "Index up to date" in invoke(runner, "index", "build", "--quiet")
    with app.app_context():
        session = get_session()
        article = session.scalar(select(Article).where(Article.slug == "mailbox-full"))
        article.status = "archived"
        article.content_hash = "changed"
        session.commit()
    before = json.loads(invoke(runner, "index", "info"))
    assert "Indexed" in invoke(runner, "index", "build", "--quiet")
    info = json.loads(invoke(runner, "index", "info"))
    assert info["ranking"] == "fake" and info["vectors"]["fake"] > info["articles"] > 40
    # Only the archived article changed: the same generation, one article fewer, a later change number.
    assert info["generation"] == before["generation"] and info["articles"] == before["articles"] - 1
    assert info["last_change"] > before["last_change"] and info["current"]
    assert "Indexed" in invoke(runner, "index", "build", "--quiet", "--force")
    forced = json.loads(invoke(runner, "index", "info"))
    assert forced["generation"] != info["generation"] and forced["articles"] == info["articles"]


def test_kb_import_makes_new_articles_searchable_in_the_same_commit(app, runner, tmp_path):
    invoke(runner, "kb", "import", str(ARTICLES_DIR))
    invoke(runner, "index", "build", "--quiet")
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "dock-flickers.md").write_text(
        '---\ntitle: "Dock flickers on the second monitor"\nlang: en\n---\n\n## Fix\n\nUpdate the dock firmware.\n',
        encoding="utf-8")
    invoke(runner, "kb", "import", str(tmp_path / "kb"))
    info = json.loads(invoke(runner, "index", "info"))
    assert info["current"]  # no `index build` needed
    with app.app_context():
        app.extensions["mesa_search"].follow(wait=True)  # what a search does at most 250 ms later
        hits = app.extensions["mesa_search"].search("dock flickers second monitor", 3, None)
        assert hits[0].slug == "dock-flickers"


def test_users_demo_creates_four_accounts_once_and_prints_passwords(app, runner):
    first = invoke(runner, "users", "demo")
    for email in ("admin@mesa.example", "l1@mesa.example", "l2@mesa.example", "customer@mesa.example"):
        assert email in first
    second = invoke(runner, "users", "demo")
    assert "exist already" in second
    with app.app_context():
        assert get_session().scalar(select(func.count()).select_from(User)) == 4


def test_users_create_rejects_bad_input_clearly(runner):
    ok = runner.invoke(args=["users", "create", "--email", "Ana@Example.com", "--role", "agent_l2",
                             "--password", "long enough pass"])
    assert ok.exit_code == 0 and "agent_l2 ana@example.com" in ok.output
    again = runner.invoke(args=["users", "create", "--email", "ana@example.com", "--password", "long enough pass"])
    assert again.exit_code != 0 and "exists already" in again.output
    short = runner.invoke(args=["users", "create", "--email", "b@example.com", "--password", "short"])
    assert short.exit_code != 0 and "at least 10 characters" in short.output


def test_indexer_cli_build_info_query(tmp_path, capsys):
    out = tmp_path / "kb.npz"
    assert indexer_main(["build", str(ARTICLES_DIR), "--out", str(out), "--config", "fake", "--quiet"]) == 0
    assert indexer_main(["info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert info["ranking"] == "fake" and info["fields"]["fake"]["model"] == "fake-256"
    assert indexer_main(["query", str(out), "printer queue stuck", "-k", "2"]) == 0
    output = capsys.readouterr().out
    assert "1. [" in output and "why: fake " in output and "keywords: printer" in output


def test_indexer_cli_reports_errors_without_a_traceback(tmp_path, capsys):
    assert indexer_main(["info", str(tmp_path / "missing.npz")]) == 2
    assert "error: No index at" in capsys.readouterr().err


def test_indexer_cli_eval_reports_metrics_as_json(tmp_path, capsys):
    pack = tmp_path / "pack"
    (pack / "articles").mkdir(parents=True)
    (pack / "articles" / "vpn.md").write_text('---\ntitle: "VPN"\nlang: en\ntags: []\n---\n\nvpn client error\n')
    (pack / "articles" / "printer.md").write_text('---\ntitle: "Printer"\nlang: en\ntags: []\n---\n\nprinter jam\n')
    (pack / "queries.jsonl").write_text(
        '{"id": "1", "query": "vpn error", "lang": "en", "relevant": ["vpn"]}\n'
        '{"id": "2", "query": "printer jam", "lang": "en", "relevant": ["printer"]}\n')
    assert indexer_main(["eval", str(pack), "--config", "fake", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (result["articles"], result["queries"], result["recall@1"], result["mrr@10"]) == (2, 2, 1.0, 1.0)
    assert result["pack"] == "pack" and result["config"] == "fake"
    assert set(result["latency_ms"]) == {"p50", "p95"} and "baselines" not in result
