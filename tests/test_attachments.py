"""Attachments: files on tickets (ask-for-help form, replies, internal notes, e-mail) and images in articles;
who may open them, the limits with their messages, the type read from the content, inline or download."""

from __future__ import annotations

import html
import io
import re
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.db import get_session
from portal.domain import attachments as files
from portal.domain import inbound
from portal.domain import tickets as ticket_service
from portal.domain.file_types import ALLOWED, allowed_type, detect, safe_filename
from portal.domain.markdown_render import render_markdown
from portal.domain.models import Article, Attachment, AttachmentBlob, Role, Ticket, utcnow
from portal.mail_fetch import intake_for
from tests.conftest import AuthActions, csrf_token_from, register_and_confirm, user_by_role
from tests.sample_files import HTML_PAGE, TEXT_WITH_TAGS, pdf, png, zip_file

EN = {"Accept-Language": "en"}
CORPUS = Path(__file__).parent / "data" / "mail"
REQUEST = {"subject": "The printer shows a strange error", "description": "This message appears when I print.",
           "type": "incident", "category": "printers", "impact": "3", "urgency": "3", "asset_tag": ""}


def post_with_files(client, page_url: str, url: str, data: dict, uploads: list[tuple[bytes, str]]):
    """Post a form as the browser does (multipart, the page's CSRF token), with files in its file field."""
    token = csrf_token_from(client.get(page_url, headers=EN).text)
    form = {**data, "csrf_token": token, "attachments": [(io.BytesIO(content), name) for content, name in uploads]}
    return client.post(url, data=form, headers=EN, content_type="multipart/form-data")


def ask_for_help(client, uploads, **changes):
    """The customer's "I still need help" with files."""
    return post_with_files(client, "/help", "/help", {**REQUEST, **changes, "action": "submit"}, uploads)


def newest_ticket(app) -> Ticket | None:
    """The newest ticket, its events and requester loaded (read after the session is gone)."""
    with app.app_context():
        ticket = get_session().scalar(select(Ticket).order_by(Ticket.id.desc()).limit(1))
        if ticket is not None:
            _loaded = (list(ticket.events), ticket.requester)
        return ticket


def ticket_files(app, ticket_id: int) -> list[Attachment]:
    with app.app_context():
        return list(get_session().scalars(select(Attachment).where(Attachment.ticket_id == ticket_id)
                                          .order_by(Attachment.id)))


def ticket_count(app) -> int:
    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(Ticket))


# ----- the type, from the content ---------------------------------------------------------------------------


def docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.mark.parametrize("content, expected", [
    (png(), "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64, "image/jpeg"),
    (b"GIF89a" + b"\x00" * 64, "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 64, "image/webp"),
    (pdf(), "application/pdf"),
    (zip_file(), "application/zip"),
    (docx(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("Café sin conexión\nerror 42\n".encode(), "text/plain"),
    (TEXT_WITH_TAGS, "text/plain"),
    ((CORPUS / "01-plain-new-request.eml").read_bytes(), "message/rfc822"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     "image/svg+xml"),
    (HTML_PAGE, "text/html"),
])
def test_the_type_is_read_from_the_content(content, expected):
    assert detect(content) == expected


@pytest.mark.parametrize("content", [HTML_PAGE, b"MZ\x90\x00" + b"\x00" * 200, bytes(range(256)) * 4])
def test_html_programs_and_unknown_binary_data_are_not_accepted(content):
    assert allowed_type(detect(content)) is None


def test_only_real_raster_images_are_inline_and_svg_never_is():
    assert {mime for mime, kind in ALLOWED.items() if kind.inline} == {
        "image/png", "image/jpeg", "image/gif", "image/webp"}
    assert not allowed_type("image/svg+xml").inline


@pytest.mark.parametrize("name, content, expected", [
    ("screenshot.png", png(), "screenshot.png"),
    ("../../etc/passwd.png", png(), "passwd.png"),
    ("C:\\Users\\ana\\shot.PNG", png(), "shot.png"),
    ('evil";\r\nSet-Cookie: x.png', png(), "evilSet-Cookie x.png"),
    ("page.png", TEXT_WITH_TAGS, "page.png.txt"),
    ("report", pdf(), "report.pdf"),
    ("", png(), "attachment.png"),
    ("a" * 300 + ".png", png(), "a" * 116 + ".png"),
])
def test_names_lose_folders_and_quotes_and_end_with_their_real_type(name, content, expected):
    assert safe_filename(name, allowed_type(detect(content))) == expected


def test_the_sanitiser_keeps_images_from_mesas_attachments():
    html = render_markdown("![screenshot](/attachments/12/screenshot.png)")
    assert '<img src="/attachments/12/screenshot.png" alt="screenshot">' in html


# ----- the ask-for-help form, the ticket page, who may open a file --------------------------------------------


def test_a_customer_attaches_a_screenshot_and_opens_it_inline(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    response = ask_for_help(client, [(png(), "screen shot.png"), (pdf(), "invoice.pdf")])
    assert response.status_code == 302
    ticket = newest_ticket(seeded_app)
    shot, invoice = ticket_files(seeded_app, ticket.id)
    assert (shot.filename, shot.content_type, shot.size) == ("screen shot.png", "image/png", len(png()))
    assert shot.event_id == ticket.events[0].id and shot.storage == "database"

    page = client.get(f"/tickets/{ticket.id}", headers=EN).text
    assert f'<img class="attachment-thumb" src="/attachments/{shot.id}/screen-shot.png"' in page
    assert f'href="/attachments/{invoice.id}/invoice.pdf" download>invoice.pdf' in page

    image = client.get(f"/attachments/{shot.id}/screen-shot.png")
    assert image.status_code == 200 and image.data == png()
    assert image.headers["Content-Type"] == "image/png"
    assert image.headers["Content-Disposition"].startswith("inline;")
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in image.headers["Content-Security-Policy"]
    assert "default-src 'none'" in image.headers["Content-Security-Policy"]

    document = client.get(f"/attachments/{invoice.id}")
    assert document.status_code == 200 and document.data == pdf()
    assert document.headers["Content-Type"] == "application/octet-stream"
    assert document.headers["Content-Disposition"] == \
        "attachment; filename=\"invoice.pdf\"; filename*=UTF-8''invoice.pdf"
    assert document.headers["X-Content-Type-Options"] == "nosniff"


def test_another_customer_gets_404_for_a_tickets_file_and_a_visitor_the_sign_in(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    ask_for_help(client, [(png(), "shot.png")])
    shot = ticket_files(seeded_app, newest_ticket(seeded_app).id)[0]
    auth.logout()
    visitor = client.get(f"/attachments/{shot.id}/shot.png")
    assert visitor.status_code == 302 and "/login" in visitor.headers["Location"]  # perhaps theirs: sign in
    assert client.get(f"/attachments/{shot.id + 1000}").status_code == 302  # the same for a file that is not
    register_and_confirm(seeded_app, client, "Other Customer", "other@example.com")
    missing = client.get(f"/attachments/{shot.id}/shot.png", headers=EN)
    assert missing.status_code == 404 and "There is no such file." in missing.text
    assert client.get(f"/attachments/{shot.id + 1000}").status_code == 404  # the same as for a file that is not
    auth.logout()
    AuthActions(client).login(Role.AGENT_L1)
    assert client.get(f"/attachments/{shot.id}/shot.png").status_code == 200


def test_replies_carry_files_and_an_internal_notes_files_are_for_agents_only(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    ask_for_help(client, [])
    ticket = newest_ticket(seeded_app)
    reply = post_with_files(client, f"/tickets/{ticket.id}", f"/tickets/{ticket.id}/reply",
                            {"body": "Here is the log.", "version": str(ticket.version)},
                            [("error 42 at 10:01\n".encode(), "printer.log")])
    assert reply.status_code == 302
    auth.logout()
    auth.login(Role.AGENT_L1)
    version = newest_ticket(seeded_app).version
    note = post_with_files(client, f"/tickets/{ticket.id}", f"/tickets/{ticket.id}/reply",
                           {"body": "Driver dump, for us.", "visibility": "internal", "version": str(version)},
                           [(zip_file(), "dump.zip")])
    assert note.status_code == 302
    log, dump = ticket_files(seeded_app, ticket.id)
    agent_page = client.get(f"/tickets/{ticket.id}", headers=EN).text
    assert "printer.log" in agent_page and "dump.zip" in agent_page
    assert client.get(f"/attachments/{dump.id}").status_code == 200
    auth.logout()

    auth.login(Role.CUSTOMER)
    customer_page = client.get(f"/tickets/{ticket.id}", headers=EN).text
    assert "printer.log" in customer_page and "dump.zip" not in customer_page
    assert client.get(f"/attachments/{log.id}").status_code == 200
    assert client.get(f"/attachments/{dump.id}/dump.zip").status_code == 404


# ----- limits and types, with clear messages and nothing lost ------------------------------------------------


def test_a_file_over_the_size_limit_refuses_the_ticket_and_keeps_the_text(seeded_app_with):
    app = seeded_app_with(MESA_ATTACHMENT_MAX_BYTES="1000")
    client = app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    before = ticket_count(app)
    response = ask_for_help(client, [(png() + b"\x00" * 2000, "huge.png")])
    assert response.status_code == 400
    assert "“huge.png” is too large (2.1 KB): each file may be at most 1.0 KB." in response.text
    assert REQUEST["subject"] in response.text and REQUEST["description"] in response.text  # the text is kept
    assert ticket_count(app) == before


def test_more_files_than_allowed_are_refused_with_the_limit(seeded_app_with):
    app = seeded_app_with(MESA_ATTACHMENT_MAX_FILES="2")
    client = app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    before = ticket_count(app)
    response = ask_for_help(client, [(png(), f"{n}.png") for n in range(3)])
    assert response.status_code == 400
    assert "Too many files: at most 2 per message (there were 3)." in response.text
    assert REQUEST["description"] in response.text and ticket_count(app) == before


def test_a_refused_reply_keeps_its_text_and_saves_nothing(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    ask_for_help(client, [])
    ticket = newest_ticket(seeded_app)
    events_before = len(ticket.events)
    response = post_with_files(client, f"/tickets/{ticket.id}", f"/tickets/{ticket.id}/reply",
                               {"body": "My words stay here.", "version": str(ticket.version)},
                               [(b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "tool.png")])
    assert response.status_code == 400
    assert "“tool.png” is not a kind of file Mesa accepts (its content is application/x-executable)." in \
        response.text
    assert "My words stay here." in response.text
    assert len(newest_ticket(seeded_app).events) == events_before and ticket_files(seeded_app, ticket.id) == []


def test_a_request_over_every_limit_is_a_413_with_a_message_not_a_500(seeded_app_with):
    app = seeded_app_with(MESA_ATTACHMENT_MAX_BYTES="1000", MESA_ATTACHMENT_MAX_FILES="1")
    client = app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    response = ask_for_help(client, [(b"x" * (3 * 1024 * 1024), "big.txt")])
    assert response.status_code == 413 and "What you sent is too large: at most 2 MB at once." in response.text


def test_the_request_limit_allows_every_file_at_its_largest(seeded_app_with):
    app = seeded_app_with(MESA_ATTACHMENT_MAX_BYTES="3000000", MESA_ATTACHMENT_MAX_FILES="1")
    client = app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    assert ask_for_help(client, [(b"log line\n" * 300_000, "big.log")]).status_code == 302  # 2.7 MB > 2 MB
    assert ticket_files(app, newest_ticket(app).id)[0].size == 2_700_000


def test_a_png_that_is_an_html_page_is_refused_and_never_served_as_html(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    refused = ask_for_help(client, [(HTML_PAGE, "screenshot.png")])
    assert refused.status_code == 400
    assert "“screenshot.png” is not a kind of file Mesa accepts (its content is text/html)." in refused.text

    assert ask_for_help(client, [(TEXT_WITH_TAGS, "notes.png")]).status_code == 302  # text with tags: text
    notes = ticket_files(seeded_app, newest_ticket(seeded_app).id)[0]
    assert (notes.filename, notes.content_type) == ("notes.png.txt", "text/plain")
    served = client.get(f"/attachments/{notes.id}/notes.png")
    assert served.status_code == 200 and served.data == TEXT_WITH_TAGS
    assert "html" not in served.headers["Content-Type"] and "image" not in served.headers["Content-Type"]
    assert served.headers["Content-Disposition"].startswith('attachment; filename="notes.png.txt"')
    assert served.headers["X-Content-Type-Options"] == "nosniff"


def test_an_svg_is_always_a_download(client, auth, seeded_app):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><circle r="4"/></svg>'
    auth.login(Role.CUSTOMER)
    assert ask_for_help(client, [(svg, "logo.svg")]).status_code == 302
    logo = ticket_files(seeded_app, newest_ticket(seeded_app).id)[0]
    assert logo.content_type == "image/svg+xml"
    served = client.get(f"/attachments/{logo.id}/logo.svg")
    assert served.headers["Content-Type"] == "application/octet-stream"
    assert served.headers["Content-Disposition"].startswith("attachment;")
    assert "attachment-thumb" not in client.get(f"/tickets/{logo.ticket_id}").text


def test_a_stored_image_whose_bytes_changed_is_no_longer_shown_inline(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    ask_for_help(client, [(png(), "shot.png")])
    shot = ticket_files(seeded_app, newest_ticket(seeded_app).id)[0]
    with seeded_app.app_context():
        session = get_session()
        session.get(AttachmentBlob, shot.id).data = HTML_PAGE
        session.commit()
    served = client.get(f"/attachments/{shot.id}/shot.png")
    assert served.headers["Content-Type"] == "application/octet-stream"
    assert served.headers["Content-Disposition"].startswith("attachment;")


# ----- storage ----------------------------------------------------------------------------------------------


def test_the_directory_store_keeps_files_outside_the_database_and_old_ones_stay_readable(seeded_app_with, tmp_path):
    database_app = seeded_app_with()
    client = database_app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    ask_for_help(client, [(png(), "in-database.png")])
    in_database = ticket_files(database_app, newest_ticket(database_app).id)[0]

    directory = tmp_path / "shared-attachments"
    directory_app = seeded_app_with(MESA_ATTACHMENT_STORE="directory", MESA_ATTACHMENTS_DIR=str(directory))
    client = directory_app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    ask_for_help(client, [(pdf(), "on-disk.pdf")])
    on_disk = ticket_files(directory_app, newest_ticket(directory_app).id)[0]
    assert on_disk.storage == "directory"
    assert (directory / on_disk.sha256[:2] / on_disk.sha256).read_bytes() == pdf()
    with directory_app.app_context():
        assert get_session().get(AttachmentBlob, on_disk.id) is None
    assert client.get(f"/attachments/{on_disk.id}").data == pdf()
    assert client.get(f"/attachments/{in_database.id}").data == png()  # stored before the change


def test_a_file_missing_from_its_directory_is_a_404_with_a_message(seeded_app_with, tmp_path):
    app = seeded_app_with(MESA_ATTACHMENT_STORE="directory", MESA_ATTACHMENTS_DIR=str(tmp_path / "files"))
    client = app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    ask_for_help(client, [(pdf(), "gone.pdf")])
    gone = ticket_files(app, newest_ticket(app).id)[0]
    (tmp_path / "files" / gone.sha256[:2] / gone.sha256).unlink()
    response = client.get(f"/attachments/{gone.id}", headers=EN)
    assert response.status_code == 404 and "no longer in the store" in response.text


# ----- incoming mail ----------------------------------------------------------------------------------------


def take_mail(app, raw: bytes, uid: int) -> tuple[str, int]:
    """The mail taken in as the fetcher does: what it became, and its record's id."""
    with app.app_context():
        session = get_session()
        outcome = inbound.take_in(session, intake_for(app), "INBOX", 1, uid, raw, utcnow())
        session.commit()
        return outcome.record.disposition.value, outcome.record.id


def test_a_mails_attachments_become_the_tickets_and_those_refused_are_named(seeded_app_with):
    app = seeded_app_with(MESA_ATTACHMENT_MAX_BYTES="5000")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "Ana <ana@example.org>", "help@example.com", "Printer"
    message["Message-ID"] = "<printer-1@example.org>"
    message.set_content("The printer shows this error, screenshot attached.")
    message.add_attachment(png(), maintype="image", subtype="png", filename="error.png")
    message.add_attachment(b"A" * 6000, maintype="application", subtype="octet-stream", filename="dump.bin")
    message.add_attachment(HTML_PAGE, maintype="image", subtype="png", filename="fake.png")
    take_mail(app, message.as_bytes(), 1)

    ticket = newest_ticket(app)
    assert ticket.requester.email == "ana@example.org"
    (shot,) = ticket_files(app, ticket.id)
    assert (shot.filename, shot.content_type, shot.event_id) == ("error.png", "image/png", ticket.events[0].id)
    assert "[Not attached, kept in the original e-mail: “dump.bin” is too large (6.0 KB)" in ticket.description
    assert "“fake.png” is not a kind of file Mesa accepts (its content is text/html)" in ticket.description


def test_a_corpus_mail_with_only_a_screenshot_becomes_a_ticket_with_it(seeded_app):
    take_mail(seeded_app, (CORPUS / "18-only-attachment.eml").read_bytes(), 1)
    ticket = newest_ticket(seeded_app)
    assert [(f.filename, f.content_type) for f in ticket_files(seeded_app, ticket.id)] == [("error.png", "image/png")]


def test_a_reply_by_mail_brings_its_files_to_the_reply(seeded_app):
    with seeded_app.app_context():
        session = get_session()
        customer = user_by_role(session, Role.CUSTOMER)
        ticket = ticket_service.create_ticket(session, customer, "VPN drops", "Every hour.", "vpn", 3, 3,
                                              seeded_app.extensions["mesa_sla"])
        session.commit()
        ticket_id, email = ticket.id, customer.email
    message = EmailMessage()
    message["From"], message["Subject"] = email, f"Re: [#{ticket_id}] VPN drops"
    message.set_content("Here is the log you asked for.")
    message.add_attachment(b"vpn: tunnel down at 10:01\n", maintype="text", subtype="plain", filename="vpn.log")
    disposition, record_id = take_mail(seeded_app, message.as_bytes(), 2)
    assert disposition == "reply"
    (log,) = ticket_files(seeded_app, ticket_id)
    with seeded_app.app_context():
        event = get_session().get(Ticket, ticket_id).events[-1]
        assert log.event_id == event.id and event.kind == "reply" and event.public
        assert event.data["mail"] == record_id  # the original e-mail stays downloadable beside it


# ----- images in articles, and promotion ----------------------------------------------------------------------


def editor_upload(client, content: bytes, name: str, page_url: str = "/kb/new"):
    token = csrf_token_from(client.get(page_url).text)
    return client.post("/kb/images", data={"attachments": [(io.BytesIO(content), name)]},
                       headers={"X-CSRFToken": token, "Accept": "application/json", **EN},
                       content_type="multipart/form-data")


def post_editor(client, url: str, data: dict, page_url: str = "/kb/new"):
    token = csrf_token_from(client.get(page_url).text)
    return client.post(url, data={**data, "csrf_token": token}, headers=EN)


def publish(client, seeded_app, slug: str):
    with seeded_app.app_context():
        version = get_session().scalar(select(Article.version).where(Article.slug == slug))
    return post_editor(client, f"/kb/articles/{slug}/state", {"action": "publish", "version": str(version)},
                       f"/kb/articles/{slug}/edit")


def test_an_editor_uploads_an_image_and_it_shows_in_the_published_article(client, auth, seeded_app):
    auth.login(Role.AGENT_L2)
    uploaded = editor_upload(client, png(), "Print dialog.png")
    assert uploaded.status_code == 200
    (placed,) = uploaded.json["files"]
    assert re.fullmatch(r"!\[Print dialog\.png\]\(/attachments/\d+/Print-dialog\.png\)", placed["markdown"])
    body = f"## Steps\n\nOpen the print dialog:\n\n{placed['markdown']}\n"
    saved = post_editor(client, "/kb/new", {"title": "Printing a test page", "body": body, "lang": "en",
                                            "category": "printers", "visibility": "public", "confirm_new": "1"})
    assert saved.status_code == 302
    slug = saved.headers["Location"].split("/")[-2]
    with seeded_app.app_context():
        article = get_session().scalar(select(Article).where(Article.slug == slug))
        (image,) = files.images_of(get_session(), article)
        assert files.path_of(image) == placed["url"]

    auth.logout()
    assert client.get(placed["url"]).status_code == 302  # a draft's image: editors only (sign in first)
    auth.login(Role.AGENT_L2)
    assert publish(client, seeded_app, slug).status_code == 302
    auth.logout()
    page = client.get(f"/articles/{slug}")
    assert f'<img src="{placed["url"]}" alt="Print dialog.png">' in page.text
    served = client.get(placed["url"])
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/png"


def test_the_editor_refuses_files_that_are_not_images_with_a_message(client, auth):
    auth.login(Role.AGENT_L1)
    response = editor_upload(client, pdf(), "manual.pdf")
    assert response.status_code == 400
    assert response.json["error"] == "“manual.pdf” is not an image an article can show: use PNG, JPEG, GIF or WebP."


def test_without_javascript_the_upload_button_places_the_image_and_keeps_the_editors_text(client, auth):
    auth.login(Role.AGENT_L1)
    token = csrf_token_from(client.get("/kb/new").text)
    response = client.post("/kb/images", data={
        "csrf_token": token, "title": "Badge reader", "body": "## Steps\n\nMy unsaved text.", "lang": "en",
        "category": "hardware", "visibility": "public", "action": "upload",
        "attachments": [(io.BytesIO(png()), "reader.png")]}, headers=EN, content_type="multipart/form-data")
    assert response.status_code == 200
    assert 'value="Badge reader"' in response.text and "My unsaved text." in response.text
    assert re.search(r"!\[reader\.png\]\(/attachments/\d+/reader\.png\)\s*</textarea>", response.text)
    assert "Save to keep it in the article." in response.text


def test_promoting_a_solution_copies_the_ticket_images_it_shows_into_the_article(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    ask_for_help(client, [(png(), "error.png"), (png(rgb=(0, 0, 0)), "unused.png")])
    ticket = newest_ticket(seeded_app)
    shot, unused = ticket_files(seeded_app, ticket.id)
    auth.logout()
    auth.login(Role.AGENT_L2)
    solution = f"Reinstall the driver; the error looks like this:\n\n![error]({files.path_of(shot)})"
    resolved = post_editor(client, f"/tickets/{ticket.id}/resolve",
                           {"solution": solution, "version": str(ticket.version)}, f"/tickets/{ticket.id}")
    assert resolved.status_code == 302
    draft = client.get(f"/kb/from-ticket/{ticket.id}").text
    assert files.path_of(shot) in draft  # the editor's preview shows the image (the agent may see it)
    body = re.search(r'<textarea name="body"[^>]*>(.*?)</textarea>', draft, re.S).group(1)
    saved = post_editor(client, "/kb/new", {"title": "Printer driver error", "body": html.unescape(body),
                                            "lang": "en", "category": "printers", "visibility": "public",
                                            "ticket_id": str(ticket.id), "confirm_new": "1"})
    assert saved.status_code == 302
    slug = saved.headers["Location"].split("/")[-2]
    with seeded_app.app_context():
        article = get_session().scalar(select(Article).where(Article.slug == slug))
        (copy,) = files.images_of(get_session(), article)
        assert copy.id != shot.id and copy.sha256 == shot.sha256 and copy.ticket_id is None
        assert files.path_of(copy) in article.body and files.path_of(shot) not in article.body
        assert files.path_of(copy) in article.revisions[-1].body
        assert unused.id not in {a.id for a in files.images_of(get_session(), article)}
    publish(client, seeded_app, slug)
    auth.logout()
    assert client.get(files.path_of(copy)).status_code == 200  # everyone reads the published article's copy
    assert client.get(files.path_of(shot)).status_code == 302  # the ticket's file stays the ticket's


def test_appending_a_solution_to_an_article_copies_its_images_too(client, auth, seeded_app):
    auth.login(Role.CUSTOMER)
    ask_for_help(client, [(png(), "vpn.png")])
    ticket = newest_ticket(seeded_app)
    (shot,) = ticket_files(seeded_app, ticket.id)
    auth.logout()
    auth.login(Role.AGENT_L2)
    post_editor(client, f"/tickets/{ticket.id}/resolve",
                {"solution": f"Like this: ![vpn]({files.path_of(shot)})", "version": str(ticket.version)},
                f"/tickets/{ticket.id}")
    appended = post_editor(client, "/kb/articles/laptop-disk-full/append", {"ticket_id": str(ticket.id)},
                           f"/kb/from-ticket/{ticket.id}")
    assert appended.status_code == 302
    with seeded_app.app_context():
        article = get_session().scalar(select(Article).where(Article.slug == "laptop-disk-full"))
        (copy,) = files.images_of(get_session(), article)
        assert files.path_of(copy) in article.body
