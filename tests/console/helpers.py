"""What the console's browser tests share: signing up, making a tenant, unique names, a
recorder of every API response the browser received (for isolation checks), axe-core's
serious findings on a page, and the `context` / `shot` fixtures (re-exported by
conftest.py)."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "correct horse battery staple 42"


class Recorder:
    """Every API response the browser received (URL and body), for isolation checks."""

    def __init__(self, page: Page) -> None:
        self.bodies: list[tuple[str, str]] = []
        page.on("response", self._record)

    def _record(self, response: Response) -> None:
        if "/api/" not in response.url:
            return
        try:
            self.bodies.append((response.url, response.text()))
        except Exception:  # a body the browser discarded (a redirect, an aborted request)
            self.bodies.append((response.url, ""))

    def mentioning(self, needle: str) -> list[str]:
        return [url for url, body in self.bodies if needle in body]


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield ctx
    finally:
        ctx.close()


def sign_up(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/console/")
    page.get_by_role("link", name=re.compile("sign up", re.I)).click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()


def create_tenant(page: Page, name: str) -> None:
    page.get_by_label("Tenant name").fill(name)
    page.get_by_role("button", name="Create tenant").click()
    expect(page.get_by_role("link", name="Indexes")).to_be_visible()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def shot(tmp_path: Path) -> Callable[[Page, str], Path]:
    """Screenshot a page: into docs/console/ under `make screenshots`, else tmp_path."""
    folder = DOCS_SCREENSHOTS if os.environ.get("VECTORPLANE_CONSOLE_SCREENSHOTS") else tmp_path

    def take(page: Page, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        assert path.stat().st_size > 1000
        return path

    return take


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is (WCAG 2.1 A and AA)."""
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const only = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
            const r = await axe.run(document, {runOnly: only});
            return r.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => ({id: v.id, impact: v.impact,
                            nodes: v.nodes.map(n => n.target.join(' '))}));
        }"""
    )
    return found
