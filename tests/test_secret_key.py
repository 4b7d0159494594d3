"""The signing key: never a built-in one. Without MESA_SECRET_KEY a random key is generated into the instance
folder (0600) and reused; a known default key is refused in production and beyond the loopback interface."""

import stat
import threading

import pytest

from portal import create_app
from portal.config import DEV_SECRET_KEY
from portal.gunicorn_conf import server_settings
from portal.secret_key import SECRET_FILE, instance_secret, is_loopback_bind


def app_with(tmp_path, **settings):
    return create_app({"MESA_INSTANCE_DIR": str(tmp_path / "instance"), "MESA_RANKING": "fake", **settings})


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch):
    for name in ("MESA_SECRET_KEY", "MESA_ENV", "MESA_BIND"):
        monkeypatch.delenv(name, raising=False)


def test_without_a_key_production_generates_one_into_the_instance_folder_and_reuses_it(tmp_path):
    first = app_with(tmp_path, MESA_ENV="production")
    key_file = tmp_path / "instance" / SECRET_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.config["SECRET_KEY"] == key_file.read_text().strip() and len(first.config["SECRET_KEY"]) >= 64
    assert first.config["SECRET_KEY"] != DEV_SECRET_KEY
    assert app_with(tmp_path, MESA_ENV="production").config["SECRET_KEY"] == first.config["SECRET_KEY"]
    other = create_app({"MESA_INSTANCE_DIR": str(tmp_path / "elsewhere"), "MESA_RANKING": "fake"})
    assert other.config["SECRET_KEY"] != first.config["SECRET_KEY"]


def test_make_run_on_every_interface_signs_with_the_generated_key(tmp_path):
    app = app_with(tmp_path, MESA_ENV="development", MESA_BIND="0.0.0.0:8000")
    assert app.config["SECRET_KEY"] == (tmp_path / "instance" / SECRET_FILE).read_text().strip()


def test_processes_starting_at_once_share_one_generated_key(tmp_path):
    keys = []
    threads = [threading.Thread(target=lambda: keys.append(instance_secret(tmp_path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]  # no draft left behind


def test_a_key_file_others_can_read_is_refused(tmp_path):
    instance_secret(tmp_path)
    (tmp_path / SECRET_FILE).chmod(0o644)
    with pytest.raises(RuntimeError, match="chmod 600"):
        instance_secret(tmp_path)


@pytest.mark.parametrize("key", [DEV_SECRET_KEY, "changeme", "secret"])
def test_a_known_default_key_is_refused_in_production(tmp_path, key):
    with pytest.raises(RuntimeError, match="known default key"):
        app_with(tmp_path, MESA_ENV="production", MESA_SECRET_KEY=key)


@pytest.mark.parametrize("bind", ["0.0.0.0:5000", "192.168.1.20:8000", "[::]:5000", "unix:/run/mesa.sock"])
def test_a_known_default_key_is_refused_beyond_loopback_even_in_development(tmp_path, bind):
    with pytest.raises(RuntimeError, match=r"listens beyond this machine"):
        app_with(tmp_path, MESA_ENV="development", MESA_SECRET_KEY=DEV_SECRET_KEY, MESA_BIND=bind)
    with pytest.raises(RuntimeError, match=r"known default key"):
        server_settings({"MESA_ENV": "development", "MESA_SECRET_KEY": DEV_SECRET_KEY, "MESA_BIND": bind})


def test_a_known_default_key_is_tolerated_in_development_on_loopback_only(tmp_path):
    app = app_with(tmp_path, MESA_ENV="development", MESA_SECRET_KEY=DEV_SECRET_KEY, MESA_BIND="127.0.0.1:5000")
    assert app.config["SECRET_KEY"] == DEV_SECRET_KEY
    assert server_settings({"MESA_ENV": "development", "MESA_SECRET_KEY": DEV_SECRET_KEY})["bind"] == [
        "127.0.0.1:5000"]


def test_a_long_random_key_is_used_as_given(tmp_path):
    app = app_with(tmp_path, MESA_ENV="production", MESA_SECRET_KEY="x" * 40, MESA_BIND="0.0.0.0:80")
    assert app.config["SECRET_KEY"] == "x" * 40
    assert not (tmp_path / "instance" / SECRET_FILE).exists()


@pytest.mark.parametrize("bind, loopback", [
    ("127.0.0.1:5000", True), ("127.0.0.2:80", True), ("localhost:5000", True), ("[::1]:5000", True),
    ("0.0.0.0:5000", False), ("[::]:5000", False), ("10.0.0.5:5000", False), ("mesa.example:80", False),
    ("unix:/tmp/mesa.sock", False), ("", False),
])
def test_loopback_binds_are_told_from_the_rest(bind, loopback):
    assert is_loopback_bind(bind) is loopback
