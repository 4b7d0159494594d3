"""Two survey submissions at once (a double click, two tabs): one rating is kept and the other is told
"already rated", never a 500 (the unique survey per ticket used to surface as an IntegrityError)."""

import threading

import pytest
from sqlalchemy import func, insert, select

from portal.db import get_session
from portal.domain import tickets as svc
from portal.domain.errors import Invalid
from portal.domain.models import Role, SurveyResponse, Ticket, TicketEvent
from tests.conftest import AuthActions, csrf_token_from, user_by_role

EN = {"Accept-Language": "en"}


def resolved_ticket(app) -> int:
    """A resolved ticket of the seeded customer, committed."""
    with app.app_context():
        session = get_session()
        customer, l2 = user_by_role(session, Role.CUSTOMER), user_by_role(session, Role.AGENT_L2)
        ticket = svc.create_ticket(session, customer, "VPN drops", "Every hour.", "vpn", 3, 3,
                                   app.extensions["mesa_sla"])
        svc.resolve(session, ticket, l2, "New profile.", ticket.version)
        session.commit()
        return ticket.id


def rate_from_another_connection(app, ticket_id: int, rating: int) -> None:
    """Another request's rating, committed while this one is between its check and its write."""
    with app.extensions["mesa_engine"].begin() as connection:
        connection.execute(insert(SurveyResponse).values(ticket_id=ticket_id, rating=rating, comment=""))


def surveys_of(app, ticket_id: int) -> list[int]:
    with app.app_context():
        return list(get_session().scalars(select(SurveyResponse.rating).where(SurveyResponse.ticket_id == ticket_id)))


def test_two_sessions_rating_at_once_give_already_rated_to_the_second(seeded_app):
    ticket_id = resolved_ticket(seeded_app)
    with seeded_app.app_context():
        session = get_session()
        ticket = session.get(Ticket, ticket_id)
        assert ticket.survey is None  # read before the other submission is committed
        rate_from_another_connection(seeded_app, ticket_id, 2)
        with pytest.raises(Invalid, match="already rated"):
            svc.submit_survey(session, ticket, user_by_role(session, Role.CUSTOMER), 5)
        session.rollback()
    assert surveys_of(seeded_app, ticket_id) == [2]


def test_the_page_says_already_rated_when_a_rating_lands_between_check_and_write(seeded_app, monkeypatch):
    ticket_id = resolved_ticket(seeded_app)
    client = seeded_app.test_client()
    AuthActions(client).login(Role.CUSTOMER)
    submit = svc.submit_survey

    def submit_while_another_tab_submits(session, ticket, *args, **kwargs):
        assert ticket.survey is None
        rate_from_another_connection(seeded_app, ticket.id, 3)
        return submit(session, ticket, *args, **kwargs)

    monkeypatch.setattr(svc, "submit_survey", submit_while_another_tab_submits)
    token = csrf_token_from(client.get(f"/tickets/{ticket_id}", headers=EN).text)
    response = client.post(f"/tickets/{ticket_id}/survey", data={"rating": "5", "csrf_token": token}, headers=EN)
    assert response.status_code == 400, response.text
    assert "already rated this ticket" in response.text and "Customer" in response.text  # the whole page
    assert surveys_of(seeded_app, ticket_id) == [3]
    with seeded_app.app_context():
        survey_events = get_session().scalar(select(func.count()).select_from(TicketEvent).where(
            TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "survey"))
    assert survey_events == 0  # the refused submission logged nothing


def test_simultaneous_submissions_from_two_clients_keep_one_rating_and_no_500(seeded_app):
    ticket_id = resolved_ticket(seeded_app)
    clients = [seeded_app.test_client() for _ in range(4)]
    tokens = []
    for client in clients:
        AuthActions(client).login(Role.CUSTOMER)
        tokens.append(csrf_token_from(client.get(f"/tickets/{ticket_id}", headers=EN).text))
    start = threading.Barrier(len(clients))
    statuses = []

    def submit(client, token, rating):
        start.wait()
        response = client.post(f"/tickets/{ticket_id}/survey", data={"rating": str(rating), "csrf_token": token},
                               headers=EN)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=submit, args=(client, token, rating))
               for rating, (client, token) in enumerate(zip(clients, tokens), start=1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [302, 400, 400, 400]
    assert len(surveys_of(seeded_app, ticket_id)) == 1
