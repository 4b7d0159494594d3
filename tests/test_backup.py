"""`flask backup` and `flask restore`: a round trip reproduces every table and the search results, across
SQLite and PostgreSQL (the suite's database); bad backups and non-empty databases are refused untouched."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import re
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import (ARRAY, JSON, Boolean, Column, Date, DateTime, Enum, Float, ForeignKey, Integer, LargeBinary,
                        MetaData, Numeric, PickleType, String, Table, Text, Time, Uuid, create_engine, func, select)

from portal.backup import BackupError
from portal.backup.codec import RowCodec
from portal.backup.dump import _snapshot
from portal.backup.manifest import sha256_of
from portal.backup.schema import backed_up_tables, database_revision, migrations_head
from portal.db import alembic_config, get_session, upgrade_database
from portal.domain import agent_mail_preferences, api_tokens, attachments
from portal.domain import events as event_service
from portal.domain import knowledge
from portal.domain import rate_limits, sla_warnings
from portal.domain import tickets as ticket_service
from portal.domain import users as user_service
from portal.domain.models import (Article, Base, InboundMail, JobLease, MailDisposition, OutboxMessage, OutboxStatus,
                                  PortalEvent, Role, Ticket, TicketStatus, User, UTCDateTime, utcnow)
from portal.notifications import notify_requester
from portal.search import get_search
from tests.conftest import PASSWORD, POSTGRES_URL, AuthActions, make_test_app, reset_schema, seed, user_by_role
from tests.sample_files import png

QUERIES = ("printer queue stuck", "vpn no conecta desde casa", "mailbox full outlook", "olvidé mi contraseña")


# ----- databases ---------------------------------------------------------------------------------------------


def url_for(kind: str, directory: Path) -> str:
    """The suite's database (PostgreSQL in the PostgreSQL pass, else SQLite) or always a SQLite file."""
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "suite" and POSTGRES_URL:
        return POSTGRES_URL
    return f"sqlite:///{directory / 'mesa.db'}"


def migrated_app(directory: Path, url: str):
    """An app on an empty database made by the migrations, as `flask db upgrade` makes it."""
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()
    app = make_test_app(directory, url)
    upgrade_database(app)
    return app


def seeded_source(request, directory: Path, url: str):
    """The starter KB and one account per role, at the migrations' head revision (the suite's schema is made
    from the models, which a test in test_project.py keeps equal to the migrations)."""
    from alembic import command

    if url.startswith("sqlite"):
        template = request.getfixturevalue("seeded_sqlite_template")
        for name in ("mesa.db", "index.npz"):
            shutil.copyfile(template / name, directory / name)
        app = make_test_app(directory, url)
    else:
        reset_schema(url)
        app = make_test_app(directory, url)
        seed(app)
    command.stamp(alembic_config(app), "head")
    return app


def build_history(app) -> None:
    """A desk that has been used: tickets with replies, notes, time, a survey and e-mails; articles edited,
    archived, drafted from a ticket, cited and rated; funnel events; an inactive account; an API token."""
    app.test_cli_runner().invoke(args=["desk", "defaults"])
    policy = app.extensions["mesa_sla"]
    with app.app_context():
        session = get_session()
        customer, agent, l2 = (user_by_role(session, role) for role in (Role.CUSTOMER, Role.AGENT_L1, Role.AGENT_L2))
        gone = user_service.create_user(session, "gone@example.com", "Ñandú Gone", PASSWORD, Role.CUSTOMER)
        gone.active = False
        vpn = ticket_service.create_ticket(
            session, customer, "La VPN no conecta", "Desde casa: «error 809» 🚀", "network", 2, 2, policy,
            suggestions=[("vpn-connect-from-home", "Conectarse a la VPN")], asset_tag="LT-0042")
        notify_requester(session, vpn, list(vpn.events))
        ticket_service.add_reply(session, vpn, agent, "Prueba esto: /articles/vpn-connect-from-home", True,
                                 vpn.version)
        knowledge.cite_articles(session, vpn, "/articles/vpn-connect-from-home")
        ticket_service.add_reply(session, vpn, agent, "Nota interna: ¿router? ñ", False, vpn.version)
        ticket_service.log_time(session, vpn, agent, 25, vpn.version, "llamada")
        ticket_service.resolve(session, vpn, agent, "Reinstalar el cliente VPN.", vpn.version)
        session.flush()
        ticket_service.submit_survey(session, vpn, customer, 4, "rápido")
        printer = ticket_service.create_ticket(session, customer, "Printer jam", "Paper stuck", "hardware", 3, 3,
                                               policy, ticket_type="service_request", lang="en")
        ticket_service.escalate(session, printer, agent, "needs L2", printer.version)
        session.add(OutboxMessage(recipient=customer.email, subject="Sent", body="x", ticket_id=printer.id,
                                  sent_at=utcnow(), status=OutboxStatus.SENT, attempts=1))
        session.add(OutboxMessage(recipient=customer.email, subject="Failed", body="y", status=OutboxStatus.FAILED,
                                  attempts=8, last_error="550 no such user"))
        session.add(JobLease(name="desk-sweep", holder="host-a:123", last_started_at=utcnow(),
                             last_finished_at=utcnow()))
        session.add(InboundMail(mailbox="mesa@imap:993/INBOX", uidvalidity=7, uid=1, message_id="<m1@x>",
                                sender=customer.email, subject="Re: [#1]", size=27, ticket_id=printer.id,
                                disposition=MailDisposition.REPLY, reason="reply on #1",
                                raw=b"From: c\r\n\r\n\xc3\xb1 \x00\xff bytes"))
        screenshot = attachments.check_file(attachments.Upload("captura «VPN».png", png()),
                                            app.extensions["mesa_attachments"])
        attachments.save(session, app.extensions["mesa_attachments"], screenshot, customer, ticket=vpn,
                         event=vpn.events[0])
        api_tokens.create_token(session, agent, "Inventory script", "write")[0].last_used_at = utcnow()
        rate_limits.hit(session, "login-account:customer@example.com", rate_limits.Rule(10, 3600))
        agent_mail_preferences.save(session, l2, {"assigned", "reopened"}, "en", ["es", "en"])
        sla_warnings.record(session, printer.id, "resolution", utcnow())
        draft = knowledge.draft_from_ticket(vpn)
        knowledge.create_article(session, draft, l2, source_ticket=vpn)
        article = session.scalar(select(Article).where(Article.slug == "mailbox-full"))
        knowledge.edit_article(session, article, l2, knowledge.ArticleDraft(
            article.title, article.body + "\n## Edited\n\nNew step.\n", article.lang, article.category,
            list(article.tags), article.visibility), article.version, note="more")
        archived = session.scalar(select(Article).where(Article.slug == "laptop-disk-full"))
        knowledge.change_state(session, archived, l2, "archive", archived.version)
        knowledge.record_feedback(session, article, False, "no me sirvió", "browser-1", customer.id)
        event_service.record_question(session, "browser-1", customer.id, "printer queue stuck", 5, True,
                                      0.7345123456789)
        event_service.record_event(session, "ticket_created", "browser-1", customer.id, ticket_id=printer.id)
        session.commit()
        get_search().rebuild(session)


def table_rows(app) -> dict[str, list[dict]]:
    """Every backed-up table's rows, as the database returns them, in primary-key order."""
    with app.app_context():
        connection = get_session().connection()
        return {table.name: [dict(row) for row in connection.execute(
                    select(table).order_by(*table.primary_key.columns)).mappings()]
                for table in backed_up_tables(Base.metadata)}


def search_results(app) -> dict:
    """The ranked slugs and scores of a few queries, for a visitor and for an agent."""
    with app.app_context():
        agent = user_by_role(get_session(), Role.AGENT_L2)
        return {(query, who is None): [(hit.slug, round(hit.score, 6)) for hit in get_search().search(query, 5, who)]
                for query in QUERIES for who in (None, agent)}


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def succeed(app, *args) -> str:
    result = invoke(app, *args)
    assert result.exit_code == 0, result.output
    return result.output


def refused(app, *args) -> str:
    """A command that fails with a clear message: exit code 1 and no traceback."""
    result = invoke(app, *args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output, result.output
    return result.output


def row_count(app, model) -> int:
    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(model))


def rewrite(backup: Path, relative: str, change) -> None:
    """Change one file of a backup and its sha256 in the manifest (a backup damaged consistently)."""
    path = backup / relative
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    reseal(backup, relative)


def reseal(backup: Path, relative: str) -> None:
    """Put a file's sha256 as it is now into the manifest."""
    edit_manifest(backup, lambda manifest: manifest["files"].update({relative: sha256_of(backup / relative)}))


def edit_manifest(backup: Path, change) -> None:
    manifest = json.loads((backup / "manifest.json").read_text(encoding="utf-8"))
    change(manifest)
    (backup / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


@pytest.fixture
def source(request, tmp_path):
    """A used desk on SQLite."""
    app = seeded_source(request, tmp_path / "source", url_for("sqlite", tmp_path / "source"))
    build_history(app)
    yield app
    app.extensions["mesa_engine"].dispose()


@pytest.fixture
def backup(source, tmp_path) -> Path:
    """A backup of the used desk."""
    succeed(source, "backup", str(tmp_path / "backup"))
    return tmp_path / "backup"


@pytest.fixture
def target(tmp_path):
    """An empty, migrated database of the suite's kind (PostgreSQL in the PostgreSQL pass)."""
    app = migrated_app(tmp_path / "target", url_for("suite", tmp_path / "target"))
    yield app
    app.extensions["mesa_engine"].dispose()


# ----- round trips -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source_kind, target_kind", [("sqlite", "suite"), ("suite", "sqlite")],
                         ids=["sqlite-to-suite-db", "suite-db-to-sqlite"])
def test_a_restore_reproduces_every_table_the_logins_and_the_search_results(request, tmp_path, source_kind,
                                                                            target_kind):
    source = seeded_source(request, tmp_path / "source", url_for(source_kind, tmp_path / "source"))
    build_history(source)
    target = migrated_app(tmp_path / "target", url_for(target_kind, tmp_path / "target"))
    before = table_rows(source)
    assert not [name for name, rows in before.items() if not rows], "every table should have rows in this test"

    output = succeed(source, "backup", str(tmp_path / "backup"))
    assert f"{sum(len(rows) for rows in before.values())} rows of {len(before)} tables" in output
    output = succeed(target, "restore", "--quiet", str(tmp_path / "backup"))
    assert "Search index rebuilt" in output

    assert table_rows(target) == before
    assert search_results(target) == search_results(source)
    with target.app_context():
        session = get_session()
        ticket = session.scalar(select(Ticket).where(Ticket.subject == "La VPN no conecta"))
        assert ticket.status == TicketStatus.RESOLVED and ticket.survey.rating == 4
        assert [event.kind for event in ticket.events][:3] == ["created", "assigned", "reply"]
        # New rows get ids after the restored ones (PostgreSQL: the sequences were moved past them).
        newcomer = user_service.create_user(session, "new@example.com", "New", PASSWORD, Role.CUSTOMER)
        event = event_service.record_event(session, "search", "browser-2", query="vpn")
        session.commit()
        assert newcomer.id > max(row["id"] for row in before["users"])
        assert event.id > max(row["id"] for row in before["portal_events"])
    client = target.test_client()
    assert AuthActions(client).login(Role.CUSTOMER).status_code == 302  # the password hash came along
    assert "La VPN no conecta" in client.get(f"/tickets/{ticket.id}").text
    for app in (source, target):
        app.extensions["mesa_engine"].dispose()


def test_a_backup_holds_the_articles_as_markdown_and_a_manifest_of_every_file(source, backup, tmp_path):
    manifest = json.loads((backup / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["alembic_revision"] == migrations_head(source) and manifest["database"] == "sqlite"
    assert [table["name"] for table in manifest["tables"]] == [t.name for t in backed_up_tables(Base.metadata)]
    rows = table_rows(source)
    assert {table["name"]: table["rows"] for table in manifest["tables"]} == {n: len(r) for n, r in rows.items()}
    listed = {path for path in manifest["files"]}
    on_disk = {str(path.relative_to(backup)) for path in backup.rglob("*") if path.is_file()} - {"manifest.json"}
    assert listed == on_disk
    assert all(sha256_of(backup / path) == digest for path, digest in manifest["files"].items())
    succeed(source, "kb", "export", str(tmp_path / "exported"))
    exported = sorted(tmp_path.joinpath("exported").glob("*.md"))
    assert manifest["articles"] == len(exported) == len(rows["articles"])
    for path in exported:
        assert (backup / "articles" / path.name).read_bytes() == path.read_bytes()
    assert (backup.stat().st_mode & 0o777) == 0o700  # password hashes inside: only the owner may read
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup", "exported", "source"]  # nothing left over


def test_a_backup_reads_one_snapshot_and_does_not_hold_off_writers(seeded_app, tmp_path):
    engine = seeded_app.extensions["mesa_engine"]
    with _snapshot(engine, tmp_path) as connection:
        before = connection.scalar(select(func.count()).select_from(User))
        with seeded_app.app_context():  # another process signs someone up meanwhile: not blocked
            session = get_session()
            user_service.create_user(session, "meanwhile@example.com", "Meanwhile", PASSWORD, Role.CUSTOMER)
            session.commit()
        assert connection.scalar(select(func.count()).select_from(User)) == before
    assert row_count(seeded_app, User) == before + 1


# ----- refusals ----------------------------------------------------------------------------------------------


def test_a_backup_never_writes_into_a_directory_that_is_not_empty(source, tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "notes.txt").write_text("keep me", encoding="utf-8")
    assert "is not empty" in refused(source, "backup", str(tmp_path / "old"))
    assert [p.name for p in (tmp_path / "old").iterdir()] == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    succeed(source, "backup", str(tmp_path / "empty"))
    assert (tmp_path / "empty" / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "old", "source"]


def test_a_backup_of_a_database_not_made_by_the_migrations_is_refused(app, tmp_path):
    with app.app_context():
        get_session().connection().exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        get_session().commit()
    assert "flask db upgrade" in refused(app, "backup", str(tmp_path / "backup"))
    assert not (tmp_path / "backup").exists() and not list(tmp_path.glob(".backup.partial-*"))


def test_a_restore_into_a_database_that_holds_data_is_refused_and_force_replaces_it(source, backup, target):
    succeed(target, "users", "demo")
    output = refused(target, "restore", str(backup))
    assert "already holds data (users: 4)" in output and "--force" in output
    with target.app_context():
        assert {u.email for u in get_session().scalars(select(User))} == {
            "admin@mesa.example", "l1@mesa.example", "l2@mesa.example", "customer@mesa.example"}
    output = succeed(target, "restore", "--force", "--quiet", str(backup))
    assert "after deleting 4 rows that were there" in output
    assert table_rows(target) == table_rows(source)


def test_when_only_the_index_rebuild_fails_the_database_stays_restored_and_the_message_says_so(
        source, backup, target, monkeypatch):
    import portal.search

    def model_fails(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(portal.search, "prepare_articles", model_fails)
    output = refused(target, "restore", "--quiet", str(backup))
    assert "The database was restored, but rebuilding the search index failed" in output
    assert "run `flask index build`" in output
    assert table_rows(target) == table_rows(source)


def test_a_restore_refuses_a_changed_file_and_leaves_the_database_empty(backup, target):
    tickets = backup / "tables" / "tickets.jsonl"
    tickets.write_text(tickets.read_text(encoding="utf-8").replace("Printer jam", "Printer fixed"), encoding="utf-8")
    output = refused(target, "restore", str(backup))
    assert "tables/tickets.jsonl does not match its sha256" in output
    assert row_count(target, Ticket) == 0 and row_count(target, User) == 0
    tickets.unlink()
    assert "incomplete: tables/tickets.jsonl is missing" in refused(target, "restore", str(backup))


def test_a_restore_refuses_a_backup_of_another_schema_revision(backup, target):
    edit_manifest(backup, lambda manifest: manifest.update(alembic_revision="0001"))
    output = refused(target, "restore", str(backup))
    assert "The backup is of schema revision 0001" in output and f"at {migrations_head(target)}." in output
    assert row_count(target, User) == 0


def test_a_restore_refuses_a_database_not_migrated_to_the_newest_revision(backup, target):
    from alembic import command

    command.downgrade(alembic_config(target), "-1")
    engine = target.extensions["mesa_engine"]
    with engine.connect() as connection:
        previous = database_revision(connection)
    output = refused(target, "restore", str(backup))
    assert f"The database is at schema revision {previous}" in output and "flask db upgrade" in output


def test_a_restore_names_a_missing_directory_and_a_bad_manifest(backup, target, tmp_path):
    assert "is not a directory" in refused(target, "restore", str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    assert "has no manifest.json" in refused(target, "restore", str(tmp_path / "empty"))
    manifest = (backup / "manifest.json").read_text(encoding="utf-8")
    (backup / "manifest.json").write_text(manifest[:40], encoding="utf-8")
    assert "Bad backup manifest (manifest.json): it is not valid JSON" in refused(target, "restore", str(backup))
    (backup / "manifest.json").write_text(manifest, encoding="utf-8")
    edit_manifest(backup, lambda data: data.pop("files"))
    assert "'files' must map each file to its sha256" in refused(target, "restore", str(backup))
    (backup / "manifest.json").write_text(manifest, encoding="utf-8")
    edit_manifest(backup, lambda data: data["files"].update({"../outside.txt": "0" * 64}))
    assert "outside the backup directory" in refused(target, "restore", str(backup))
    (backup / "manifest.json").write_text(manifest, encoding="utf-8")
    edit_manifest(backup, lambda data: data["tables"].pop())
    assert "tables differ from this Mesa's (missing: " in refused(target, "restore", str(backup))
    assert row_count(target, User) == 0


def test_a_restore_that_fails_midway_leaves_the_database_as_it_was(backup, target):
    succeed(target, "users", "demo")
    # A consistent-looking backup whose activity log points at a ticket that does not exist.
    events = "tables/ticket_events.jsonl"
    rewrite(backup, events, lambda text: text.replace('"ticket_id":1,', '"ticket_id":999,', 1))
    output = refused(target, "restore", "--force", str(backup))
    assert "Restoring the table ticket_events failed, and the database was left as it was" in output
    assert row_count(target, User) == 4 and row_count(target, Ticket) == 0 and row_count(target, Article) == 0
    rewrite(backup, events, lambda text: text.replace('"ticket_id":999,', '"ticket_id":1,', 1))
    # A row that is not what its table holds is named by file and line.
    rewrite(backup, "tables/portal_events.jsonl", lambda text: text.replace('"answered":true', '"answered":"yes"'))
    output = refused(target, "restore", "--force", str(backup))
    # (the acknowledgement's offered articles come first in the file: the bad row is a later line)
    assert re.search(r"tables/portal_events\.jsonl, line \d+: column answered: 'yes' is not true or false", output)
    assert row_count(target, User) == 4 and row_count(target, Ticket) == 0
    teams = backup / "tables" / "teams.jsonl"
    teams.write_bytes(b'{"id":1,"name":"\xff","categories":[]}\n')
    reseal(backup, "tables/teams.jsonl")
    output = refused(target, "restore", "--force", str(backup))
    assert "tables/teams.jsonl, line 1: 'utf-8' codec can't decode" in output


# ----- the format --------------------------------------------------------------------------------------------


class Colour(str, enum.Enum):
    RED = "red"
    DARK_BLUE = "dark_blue"


def every_type_table(metadata: MetaData) -> Table:
    return Table(
        "every_type", metadata, Column("id", Integer, primary_key=True), Column("when", UTCDateTime),
        Column("naive", DateTime), Column("day", Date), Column("time", Time), Column("flag", Boolean),
        Column("ratio", Float), Column("money", Numeric(10, 2)), Column("blob", LargeBinary),
        Column("key", Uuid), Column("name", String(20)), Column("text", Text), Column("data", JSON),
        Column("by_value", Enum(Colour, native_enum=False, values_callable=lambda c: [m.value for m in c])),
        Column("by_name", Enum(Colour, native_enum=False)))


def test_every_column_type_comes_back_from_a_real_database_as_it_went_in():
    metadata = MetaData()
    table = every_type_table(metadata)
    row = {"id": 7, "when": dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
           "naive": dt.datetime(2026, 3, 1, 10, 0), "day": dt.date(2026, 2, 28), "time": dt.time(23, 59, 1),
           "flag": False, "ratio": 0.1 + 0.2, "money": decimal.Decimal("12.34"), "blob": b"\x00\xffbytes",
           "key": uuid.UUID("12345678-1234-5678-1234-567812345678"), "name": "ñandú", "text": "línea\n«dos» 🚀",
           "data": {"nested": [1, 2.5, None, "x"], "ok": True}, "by_value": Colour.DARK_BLUE, "by_name": Colour.RED}
    codec = RowCodec(table)
    line = json.dumps(codec.encode(row))
    assert '"by_value": "dark_blue"' in line and '"by_name": "RED"' in line
    assert '"when": "2026-03-01T10:30:15.123456+00:00"' in line and '"blob": "AP9ieXRlcw=="' in line
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(table.insert(), [codec.decode(json.loads(line)), codec.decode(json.loads(
            json.dumps(codec.encode({name: None if name != "id" else 8 for name in codec.columns}))))])
        back = [dict(r) for r in connection.execute(select(table).order_by(table.c.id)).mappings()]
    assert back[0] == row and back[0]["when"].tzinfo is not None
    assert back[1] == {"id": 8, **{name: None for name in codec.columns if name != "id"}}


def test_a_column_type_backups_do_not_know_is_refused_by_name():
    metadata = MetaData()
    for name, type_ in (("pickled", PickleType()), ("numbers", ARRAY(Integer))):
        table = Table(f"odd_{name}", metadata, Column("id", Integer, primary_key=True), Column(name, type_))
        with pytest.raises(BackupError, match=f"odd_{name}.{name} has the type"):
            RowCodec(table)
    for table in Base.metadata.sorted_tables:  # and every column of Mesa's own tables is known
        RowCodec(table)


def test_the_search_index_tables_are_left_out_of_a_backup():
    metadata = MetaData()
    Table("articles", metadata, Column("id", Integer, primary_key=True))
    Table("search_chunks", metadata, Column("id", Integer, primary_key=True),
          Column("article_id", ForeignKey("articles.id")))
    Table("tickets", metadata, Column("id", Integer, primary_key=True))
    assert [table.name for table in backed_up_tables(metadata)] == ["articles", "tickets"]
