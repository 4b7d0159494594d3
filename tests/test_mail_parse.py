"""Reading incoming e-mail without a server: senders, subjects, text from HTML, automatic mail, reply cutting,
and the Message-IDs Mesa's own e-mails carry so replies find their ticket."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.domain.inbound import reply_text
from portal.domain.models import OutboxMessage
from portal.mail_parse import html_to_text, parse
from portal.mail_threading import message_ids, thread_id, ticket_in_thread
from portal.mailer import build_email

CORPUS = Path(__file__).parent / "data" / "mail"


def test_every_corpus_mail_is_read_without_an_exception():
    names = sorted(CORPUS.glob("*.eml"))
    assert len(names) >= 20
    for path in names:
        parsed = parse(path.read_bytes(), {"mesa@localhost"})
        assert parsed.sender or parsed.problem or not parsed.subject or path.name.startswith(("05", "06")), path


def test_html_only_mail_becomes_text_without_scripts_or_styles():
    text = html_to_text("<html><head><style>p{}</style><script>alert(1)</script></head><body>"
                        "<p onclick='x()'>Line one</p><script>steal()</script><p>Two &amp; three</p></body></html>")
    assert text == "Line one\n\nTwo & three"


def test_an_unknown_charset_is_read_as_utf8():
    parsed = parse("From: a@x.example\nSubject: s\nContent-Type: text/plain; charset=x-nope\n"
                   "Content-Transfer-Encoding: 8bit\n\nportátil\n".encode())
    assert parsed.text == "portátil" and not parsed.problem


def test_encoded_word_and_8bit_subjects_are_decoded():
    assert parse(b"From: a@x.example\nSubject: =?utf-8?Q?Contrase=C3=B1a?= caducada\n\nx").subject == \
        "Contraseña caducada"
    assert parse("From: a@x.example\nSubject: Contraseña\n\nx".encode()).subject == "Contraseña"


@pytest.mark.parametrize("headers, reason", [
    ("Auto-Submitted: auto-replied", "Auto-Submitted"),
    ("Precedence: bulk", "Precedence: bulk"),
    ("Precedence: junk", "Precedence: junk"),
    ("Precedence: list", "Precedence: list"),
    ("X-Autoreply: yes", "X-Autoreply"),
    ("Return-Path: <>", "bounce"),
    ("Content-Type: multipart/report; boundary=b", "bounce"),
])
def test_automatic_mail_is_recognised(headers, reason):
    parsed = parse(f"From: someone@x.example\nSubject: s\n{headers}\n\nbody\n".encode())
    assert reason in parsed.automatic


def test_auto_submitted_no_and_a_person_are_not_automatic():
    assert parse(b"From: a@x.example\nAuto-Submitted: no\nSubject: s\n\nb").automatic == ""


def test_bounces_and_mesas_own_address_are_automatic():
    assert "bounce" in parse(b"From: MAILER-DAEMON@mx.example\nSubject: s\n\nb").automatic
    assert "own address" in parse(b"From: Mesa <MESA@localhost>\nSubject: s\n\nb", {"mesa@localhost"}).automatic


def test_quoted_history_and_signature_are_cut_from_a_reply():
    text = ("It works now, thank you.\n\n--\nCarmen Cliente\nACME Ltd\n\n"
            "On Tue, 1 Dec 2026 at 10:00, Mesa <mesa@localhost> wrote:\n> Hello Carmen,\n> try again.\n")
    assert reply_text(text) == "It works now, thank you."
    spanish = ("Ya funciona.\n\nEl mar, 1 dic 2026 a las 10:00, Mesa <mesa@localhost> escribió:\n> Hola\n")
    assert reply_text(spanish) == "Ya funciona."
    outlook = ("Sigue sin funcionar.\n\nDe: Mesa <mesa@localhost>\nEnviado: martes\nPara: Carmen\n"
               "Asunto: [#3] Nueva respuesta\n\nHola Carmen\n")
    assert reply_text(outlook) == "Sigue sin funcionar."


def test_a_reply_that_is_only_quotes_keeps_its_text():
    assert reply_text("> only quoted\n> lines") == "> only quoted\n> lines"


def test_outgoing_mail_carries_its_message_id_and_the_ticket_thread():
    config = {"MESA_MAIL_FROM": "Help <help@desk.example>"}
    message = OutboxMessage(recipient="c@x.example", subject="[#7] New reply", body="b", ticket_id=7,
                            message_id="<mesa.7.abc@desk.example>")
    email = build_email(config, message)
    assert email["Message-ID"] == "<mesa.7.abc@desk.example>"
    assert email["References"] == email["In-Reply-To"] == thread_id(7, config["MESA_MAIL_FROM"]) == \
        "<mesa.ticket.7@desk.example>"
    assert ticket_in_thread(message_ids("<other@x> <mesa.ticket.7@desk.example>")) == 7
