"""The console's browser tests: Playwright (pytest-playwright) driving Debian's Chromium
(`/usr/bin/chromium`, installed by `make test` when missing: a downloaded browser build cannot
be fetched here), headless, against the real platform — the control plane (serving the built
console at /console/), the gateway and the test databases (gateway/tests/conftest.py's
servers)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from gateway.tests.conftest import (  # noqa: F401 - fixtures, by name
    control_plane_port,
    control_plane_server,
    gateway,
    gateway_server,
    redis_server,
)

from .helpers import context, shot  # noqa: F401 - fixtures, by name
from .worker import worker  # noqa: F401 - a fixture, by name

CHROMIUM = Path(os.environ.get("VECTORPLANE_CHROMIUM", "/usr/bin/chromium"))
DIST = Path(__file__).resolve().parents[2] / "frontend" / "dist" / "index.html"

# Playwright's sync API runs an event loop in this thread while a page is open; the tests'
# own ORM calls (making tenants and users) happen between page actions, never concurrently.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    if not DIST.exists():
        pytest.fail("the console is not built: `make frontend` builds frontend/dist/")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "headless": True}
