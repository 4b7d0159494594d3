"""Models exported once from bundled weights into a cache directory (ONNX files of indexer/minilm_onnx.py and
indexer/e5_onnx.py): where the cache is, and exporting a file into it at most once, in a child process.

The cache holds nothing that cannot be made again: deleting it only costs the next use an export.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

CACHE_ENV = "MESA_MODEL_CACHE"

_log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where exported models are kept: ``$MESA_MODEL_CACHE``, else ``$XDG_CACHE_HOME/mesa`` (by default
    ``~/.cache/mesa``). Safe to delete."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mesa"


def package_version(package: str) -> str:
    """The installed version of a package ("-" when it is not installed), for export keys."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def cached_export(model_name: str, key: str, source: Path, directory: Path, exporter_module: str) -> Path:
    """The file ``<model_name>-<key>.onnx`` in ``directory``, made first by ``python -m exporter_module SOURCE
    TARGET`` if it is not there yet.

    Two processes starting at once do not both export: the export holds a lock file in the directory, and the
    exporter writes the file aside and renames it, so it appears under its final name in one step. The export
    runs in a child process, so what it loads (torch, the ``onnx`` package, repacked weights) never stays in the
    process that then serves searches."""
    target = directory / f"{model_name}-{key}.onnx"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with _file_lock(directory / f".{model_name}.lock"):
        if not target.exists():
            _log.info("exporting %s to %s (once; the cache directory may be deleted)", model_name, target)
            _export_in_child(exporter_module, source, target, model_name)
    return target


def _export_in_child(exporter_module: str, source: Path, target: Path, model_name: str) -> None:
    package_root = str(Path(__file__).resolve().parent.parent)  # whatever directory the server started in
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run([sys.executable, "-m", exporter_module, str(source), str(target)],
                          capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path})
    if done.returncode != 0 or not target.exists():
        raise RuntimeError(f"exporting {model_name} from {source} failed: {done.stderr.strip()[-2000:]}")


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive lock on ``path`` between processes (released when the block ends or the process dies)."""
    import fcntl

    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
