"""Similar solved tickets on the agent's ticket page: the ranking (cosine over the search's embedder, above a
threshold, best first), the candidates (solved with a solution, not this ticket, the most recent), who sees
the block (agents, never customers) and its empty state."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from portal.db import get_session
from portal.domain import tickets as svc
from portal.domain.models import Role, Ticket, utcnow
from portal.gap_service import question_vectors
from portal import similar_tickets as similar
from tests.conftest import user_by_role

PRINTER_FIX = "Se vació la cola de impresión y se reinició el servicio de impresión; la impresora ya imprime."
VPN_FIX = "Se reinstaló el perfil de la VPN desde Company Portal; ya conecta desde casa."


def open_ticket(session, app, subject: str, description: str):
    """A new ticket by the seeded customer."""
    return svc.create_ticket(session, user_by_role(session, Role.CUSTOMER), subject, description, "general", 3, 3,
                             app.extensions["mesa_sla"], lang="es")


def solved_ticket(session, app, subject: str, description: str, solution: str, when=None):
    """A ticket resolved by the L1 agent with ``solution`` (at ``when``)."""
    ticket = open_ticket(session, app, subject, description)
    session.flush()
    svc.resolve(session, ticket, user_by_role(session, Role.AGENT_L1), solution, ticket.version, now=when)
    return ticket


@pytest.fixture
def desk(seeded_app, db):
    """A printer ticket being worked, a solved printer ticket, a solved VPN ticket and another open one."""
    worked = open_ticket(db, seeded_app, "La impresora no imprime",
                         "La cola de impresión está atascada y la impresora no imprime nada.")
    printer = solved_ticket(db, seeded_app, "La impresora de la planta no imprime",
                            "Mando a imprimir y no sale nada.", PRINTER_FIX)
    vpn = solved_ticket(db, seeded_app, "La VPN no conecta", "Desde casa la VPN da error.", VPN_FIX)
    still_open = open_ticket(db, seeded_app, "La impresora no imprime en color", "Sale todo en gris.")
    db.commit()
    return {"worked": worked.id, "printer": printer.id, "vpn": vpn.id, "open": still_open.id}


def test_rank_by_cosine_keeps_the_best_above_the_threshold_best_first():
    query = np.array([1.0, 0.0], dtype=np.float32)
    rows = np.array([[0.6, 0.8], [1.0, 0.0], [0.0, 1.0], [0.8, 0.6]], dtype=np.float32)
    assert [row for row, _ in similar.rank_by_cosine(query, rows, 0.5, 5)] == [1, 3, 0]
    assert [row for row, _ in similar.rank_by_cosine(query, rows, 0.5, 2)] == [1, 3]
    assert similar.rank_by_cosine(query, rows, 1.01, 5) == []
    assert similar.rank_by_cosine(query, np.zeros((0, 2), dtype=np.float32), 0.0, 5) == []


def test_a_solved_ticket_about_the_same_problem_is_listed_and_an_unrelated_one_is_not(seeded_app, db, desk):
    ticket = db.get(Ticket, desk["worked"])
    found = similar.similar_tickets(db, ticket, question_vectors(seeded_app))
    assert [item.id for item in found] == [desk["printer"]]
    assert found[0].solution == PRINTER_FIX
    assert found[0].similarity >= similar.threshold_for("fake")
    # Without a threshold both solved tickets are candidates, the printer one first; the ticket itself and the
    # open ticket never are.
    everything = similar.similar_tickets(db, ticket, question_vectors(seeded_app), threshold=-1.0)
    assert [item.id for item in everything] == [desk["printer"], desk["vpn"]]


def test_candidates_are_the_most_recent_solved_tickets_with_a_solution(seeded_app, db):
    now = utcnow()
    old = solved_ticket(db, seeded_app, "Antiguo", "Algo viejo.", "Arreglado hace tiempo.", now - timedelta(days=30))
    new = solved_ticket(db, seeded_app, "Reciente", "Algo nuevo.", "Arreglado ayer.", now - timedelta(days=1))
    middle = solved_ticket(db, seeded_app, "Medio", "Algo.", "Arreglado.", now - timedelta(days=10))
    db.commit()
    assert [row.id for row in similar.solved_candidates(db, None, limit=2)] == [new.id, middle.id]
    assert [row.id for row in similar.solved_candidates(db, new.id)] == [middle.id, old.id]


def test_a_long_solution_is_shortened_at_a_word_with_an_ellipsis():
    text = "Paso uno.\n\n" + "palabra " * 100
    short = similar.shorten(text, 60)
    assert short.endswith("…") and len(short) <= 61 and "\n" not in short
    assert similar.shorten("Corto.", 60) == "Corto."


def test_the_agent_sees_the_similar_solved_tickets_with_their_solution(client, auth, desk):
    auth.login(Role.AGENT_L1)
    page = client.get(f"/tickets/{desk['worked']}").text
    assert 'id="similar-tickets"' in page
    assert f'href="/tickets/{desk["printer"]}"' in page
    assert PRINTER_FIX in page
    assert f'href="/tickets/{desk["vpn"]}"' not in page


def test_customers_never_see_the_similar_tickets_block(client, auth, desk):
    auth.login(Role.CUSTOMER)
    page = client.get(f"/tickets/{desk['worked']}")
    assert page.status_code == 200
    assert 'id="similar-tickets"' not in page.text
    assert PRINTER_FIX not in page.text


def test_without_a_similar_solved_ticket_the_page_says_so(client, auth, seeded_app):
    with seeded_app.app_context():
        session = get_session()
        ticket = open_ticket(session, seeded_app, "El ratón no funciona", "El ratón inalámbrico no responde.")
        session.commit()
        ticket_id = ticket.id
    auth.login(Role.AGENT_L1)
    page = client.get(f"/tickets/{ticket_id}").text
    assert 'class="similar-none"' in page
    assert 'class="similar-list"' not in page


def test_a_model_that_fails_leaves_the_ticket_page_working(client, auth, desk, monkeypatch):
    from portal.views import tickets as ticket_views

    def broken(*args, **kwargs):
        raise RuntimeError("the model could not load")

    monkeypatch.setattr(ticket_views, "similar_tickets", broken)
    auth.login(Role.AGENT_L1)
    page = client.get(f"/tickets/{desk['worked']}")
    assert page.status_code == 200
    assert 'id="similar-tickets"' in page.text and 'class="similar-list"' not in page.text
