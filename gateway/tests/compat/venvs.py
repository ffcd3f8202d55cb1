"""Cached virtualenvs holding other versions of Pinecone's client and the integrations that
bring their own (tests/test_compat.py runs scripts in them against the test servers).

Each environment is one requirements file in `requirements/` (exact pins of what we test;
pip resolves the rest from PyPI). It is built once into `.cache/compat/<name>-<hash>/`
(git-ignored), where the hash covers the requirements and the Python version, so a changed pin
builds a new one and an unchanged one is reused; CI, starting from a clean clone, builds them.
A build goes to a temporary folder renamed into place when complete, so an interrupted build
is never taken for a finished one (nor are two sessions building the same one harmed: the
second rename loses and its copy is dropped). Builds run concurrently (pip mostly waits on the
network), with the test venv's pip (`pip --python`), so a new venv needs no pip of its own.
A session that ends early still waits for the builds it started (they are then cached).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements"
REPO = HERE.parents[2]
CACHE = REPO / ".cache" / "compat"
BUILD_TIMEOUT = 600.0


@dataclass(frozen=True)
class Venv:
    name: str
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def versions(self) -> dict[str, str]:
        """What pip resolved: {distribution name (lowercase): version}, from the build."""
        found: dict[str, str] = {}
        for line in (self.path / "resolved.txt").read_text().splitlines():
            name, _, version = line.partition("==")
            if version:
                found[name.strip().lower().replace("_", "-")] = version.strip()
        return found


def names() -> set[str]:
    """Every environment there is a requirements file for."""
    return {path.stem for path in REQUIREMENTS.glob("*.txt")}


def requirements(name: str) -> Path:
    return REQUIREMENTS / f"{name}.txt"


def location(name: str) -> Path:
    digest = hashlib.sha256()
    digest.update(requirements(name).read_bytes())
    digest.update(f"{sys.version_info[:3]} {sys.implementation.name}".encode())
    return CACHE / f"{name}-{digest.hexdigest()[:12]}"


def _pip(*args: str) -> list[str]:
    return [
        sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args,
    ]  # fmt: skip


def build(name: str) -> Venv:
    """The environment `name`, built if it is not in the cache."""
    target = location(name)
    if (target / "resolved.txt").is_file():
        return Venv(name, target)
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=CACHE))
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(work)],
            check=True, capture_output=True, timeout=BUILD_TIMEOUT,
        )  # fmt: skip
        python = str(work / "bin" / "python")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_REQUIRE", "PYTHON"))}
        for argv in (
            _pip("--python", python, "install", "--quiet", "-r", str(requirements(name))),
            _pip("--python", python, "check"),
        ):
            done = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
            )
            if done.returncode != 0:
                raise RuntimeError(
                    f"building the {name} venv failed: {' '.join(argv)}\n{done.stdout}"
                    f"\n{done.stderr}"
                )
        frozen = subprocess.run(
            _pip("--python", python, "freeze", "--all"),
            env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=True,
        )  # fmt: skip
        (work / "resolved.txt").write_text(frozen.stdout)
        try:
            work.rename(target)
        except OSError:  # another session finished it first
            if not (target / "resolved.txt").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Venv(name, target)


_lock = threading.Lock()
_builds: dict[str, Future[Venv]] = {}
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="compat-venv")


def start(names: Iterable[str]) -> None:
    """Start building these environments in the background (each at most once)."""
    with _lock:
        for name in names:
            if name not in _builds:
                _builds[name] = _pool.submit(build, name)


def get(name: str) -> Venv:
    """The environment `name`, waiting for its build (started now if it was not)."""
    start([name])
    return _builds[name].result(timeout=BUILD_TIMEOUT)
