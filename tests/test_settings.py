"""Settings are parsed one way: booleans accept a few spellings and nothing else, enumerated settings refuse
unknown values, and every invalid value stops Mesa at start with a message naming the setting."""

from __future__ import annotations

import pytest

from portal import create_app
from portal.config import SETTINGS, load_settings

BOOLEAN_SETTINGS = [s.name for s in SETTINGS if s.type is bool]


def test_smtp_starttls_is_a_boolean_setting_on_by_default():
    assert "SMTP_STARTTLS" in BOOLEAN_SETTINGS
    assert load_settings({})["MESA_SMTP_STARTTLS"] is True


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "True", "yes", "Yes", "on", "ON", " true "])
def test_every_spelling_of_true_turns_a_boolean_on(raw):
    assert load_settings({"MESA_SMTP_STARTTLS": raw})["MESA_SMTP_STARTTLS"] is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "NO", "off", "Off"])
def test_every_spelling_of_false_turns_a_boolean_off(raw):
    assert load_settings({"MESA_SMTP_STARTTLS": raw})["MESA_SMTP_STARTTLS"] is False


@pytest.mark.parametrize("raw", ["ture", "2", "enabled", "y", "tls", "-1"])
def test_an_unknown_boolean_value_refuses_to_start_naming_the_setting_and_the_accepted_values(raw, tmp_path,
                                                                                              monkeypatch):
    monkeypatch.setenv("MESA_SMTP_STARTTLS", raw)
    with pytest.raises(RuntimeError) as refused:
        create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path)})
    message = str(refused.value)
    assert "MESA_SMTP_STARTTLS" in message and repr(raw) in message
    assert all(word in message for word in ("true/false", "yes/no", "on/off", "1/0"))


def test_a_boolean_given_as_text_to_the_app_factory_is_parsed_the_same_way(tmp_path):
    app = create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path), "MESA_SMTP_STARTTLS": "off"})
    assert app.config["MESA_SMTP_STARTTLS"] is False
    with pytest.raises(RuntimeError, match="MESA_SMTP_STARTTLS"):
        create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path), "MESA_SMTP_STARTTLS": "nope"})


@pytest.mark.parametrize("raw, expected", [("development", "development"), ("production", "production")])
def test_mesa_env_takes_development_or_production(raw, expected):
    assert load_settings({"MESA_ENV": raw})["MESA_ENV"] == expected


@pytest.mark.parametrize("raw", ["dev", "prod", "Development", "staging"])
def test_an_unknown_mesa_env_refuses_to_start(raw):
    with pytest.raises(RuntimeError, match=r"MESA_ENV=.* is not one of development, production"):
        load_settings({"MESA_ENV": raw})


def test_a_number_setting_that_is_not_a_number_refuses_to_start():
    with pytest.raises(RuntimeError, match=r"MESA_WORKERS='two' is not a valid int"):
        load_settings({"MESA_WORKERS": "two"})


class RecordingSMTP:
    """An SMTP server stand-in that records the commands Mesa gives it, in order."""

    commands: list[str] = []

    def __init__(self, host, port, timeout):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def starttls(self):
        self.commands.append("starttls")

    def login(self, user, password):
        self.commands.append("login")

    def send_message(self, email):
        self.commands.append("send")

    def quit(self):
        pass


@pytest.mark.parametrize("raw, expected", [
    ("true", ["starttls", "login", "send"]),
    ("yes", ["starttls", "login", "send"]),
    ("false", ["login", "send"]),
])
def test_smtp_starttls_true_secures_the_connection_before_the_password_is_sent(raw, expected, tmp_path,
                                                                               monkeypatch):
    import portal.mailer
    from portal.db import get_session, upgrade_database
    from portal.domain.models import OutboxMessage

    monkeypatch.setenv("MESA_SMTP_STARTTLS", raw)
    monkeypatch.setattr(RecordingSMTP, "commands", [])
    monkeypatch.setattr(portal.mailer.smtplib, "SMTP", RecordingSMTP)
    app = create_app({"TESTING": True, "MESA_INSTANCE_DIR": str(tmp_path),
                      "MESA_DATABASE_URL": f"sqlite:///{tmp_path / 'mesa.db'}", "MESA_SMTP_HOST": "smtp.example.com",
                      "MESA_SMTP_USER": "mesa", "MESA_SMTP_PASSWORD": "secret"})
    upgrade_database(app)
    with app.app_context():
        session = get_session()
        session.add(OutboxMessage(recipient="someone@example.com", subject="Hello", body="Hi"))
        session.commit()
        assert portal.mailer.deliver_all_due(session, app.config, "test").sent == 1
    app.extensions["mesa_engine"].dispose()
    assert RecordingSMTP.commands == expected
