"""The key that signs sessions and CSRF tokens: MESA_SECRET_KEY, else a random key kept in the instance folder.

A key everyone can read (the old development default, or a word such as "secret") lets anyone forge a session,
an admin's included. Mesa therefore never signs with a built-in key: without MESA_SECRET_KEY it generates one
on the first start (``secret_key`` in MESA_INSTANCE_DIR, readable by its owner only) and reuses it after; and it
refuses to start with a known default key in production or when it listens beyond the loopback interface.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
from pathlib import Path

from .config import DEV_SECRET_KEY

SECRET_FILE = "secret_key"
MIN_GENERATED_LENGTH = 32
# Keys published somewhere (Mesa's old default, the usual placeholders): never accepted beyond a loopback dev.
KNOWN_DEFAULT_KEYS = frozenset({DEV_SECRET_KEY, "dev", "development", "secret", "secret-key", "secret_key",
                                "changeme", "change-me", "change_me", "default", "mesa", "test", "testing"})


def is_loopback_bind(bind: str) -> bool:
    """Whether a MESA_BIND value (``HOST:PORT``) listens on the loopback interface only; a Unix socket or
    anything unreadable counts as reachable from elsewhere (a proxy usually serves it)."""
    host = bind.strip().rsplit(":", 1)[0] if ":" in bind else bind.strip()
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_secret_key(key: str, env: str, bind: str, testing: bool = False) -> None:
    """RuntimeError when ``key`` is a known default and Mesa runs in production or listens beyond loopback."""
    if key.strip().lower() not in KNOWN_DEFAULT_KEYS:
        return
    if env == "production" and not testing:
        raise RuntimeError("MESA_SECRET_KEY is a known default key, with which anyone can forge a session. "
                           "Unset it (Mesa then generates a random key in MESA_INSTANCE_DIR) or set it to a long "
                           "random value (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`).")
    if not is_loopback_bind(bind):
        raise RuntimeError(f"MESA_SECRET_KEY is a known default key and MESA_BIND={bind} listens beyond this "
                           "machine: anyone could forge a session. Unset MESA_SECRET_KEY (Mesa then generates a "
                           "random key in MESA_INSTANCE_DIR) or set it to a long random value.")


def instance_secret(directory: Path) -> str:
    """The key in ``directory/secret_key``, generated (random, mode 0600) when the file does not exist yet.

    Several workers may start at once: each writes a complete key to a file of its own and links it into
    place; the first link wins and every process reads the same key.
    """
    path = directory / SECRET_FILE
    if not path.exists():
        draft = directory / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(draft, path)
            except FileExistsError:
                pass  # another process made it first: use that one
        finally:
            draft.unlink(missing_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise RuntimeError(f"{path} can be read by other users (mode {mode:o}); `chmod 600 {path}`, or delete it "
                           "(every session then ends) to have Mesa generate a new one.")
    key = path.read_text(encoding="ascii", errors="replace").strip()
    if len(key) < MIN_GENERATED_LENGTH:
        raise RuntimeError(f"{path} holds no usable key; delete it (every session then ends) and Mesa "
                           "generates a new one.")
    return key


def secret_key_for(config: dict, instance_dir: Path) -> str:
    """The signing key for an app's settings: checked MESA_SECRET_KEY, else the instance folder's key."""
    configured = config.get("MESA_SECRET_KEY") or ""
    if configured:
        check_secret_key(configured, config["MESA_ENV"], config["MESA_BIND"], bool(config.get("TESTING")))
        return configured
    return instance_secret(instance_dir)
