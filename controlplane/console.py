"""The web console (`frontend/`, a single-page app) served by the control plane at `/console/`,
same origin as `/api/v1/`: it signs in with the session cookie and sends the CSRF token the
`csrftoken` cookie carries, as any other client of the management API does.

- `/console/assets/...`: the bundle's files (`frontend/dist/assets/`, content-hashed names),
  served by WhiteNoise with a year's immutable cache (settings: WHITENOISE_IMMUTABLE_FILE_TEST);
- any other `/console/...` path: `frontend/dist/index.html` (client-side routing), never
  cached, and with the CSRF cookie set.

`make run` builds `frontend/dist/` when `frontend/` or `docs/openapi.yaml` changed; without a
build, `/console/` answers 503 saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe
from whitenoise.middleware import WhiteNoiseMiddleware

ASSETS_PREFIX = "console/assets/"


def console_dir() -> Path:
    """Where the console's build lives (`frontend/dist/`)."""
    return Path(settings.VECTORPLANE_CONSOLE_DIR)


class WhiteNoiseWithConsole(WhiteNoiseMiddleware):  # type: ignore[misc]  # untyped base
    """WhiteNoise as configured in settings, plus the console's built assets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assets = console_dir() / "assets"
        if assets.is_dir():
            self.add_files(str(assets), prefix=ASSETS_PREFIX)


_NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Vectorplane console not built</title></head><body><main>
<h1>The console is not built</h1>
<p><code>make run</code> builds it (<code>frontend/</code>, with Node.js and npm); or run
<code>make frontend</code> and reload this page.</p></main></body></html>"""


class _Index:
    """`index.html`, read again only when the build changed it."""

    def __init__(self) -> None:
        self._mtime: float | None = None
        self._body = b""

    def read(self) -> bytes | None:
        path = console_dir() / "index.html"
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return None
        if mtime != self._mtime:
            self._body, self._mtime = path.read_bytes(), mtime
        return self._body


_index = _Index()


@require_safe
@ensure_csrf_cookie
def console(request: HttpRequest, path: str = "") -> HttpResponse:
    """The single-page app's entry for every console route."""
    if path.startswith("assets/"):
        # A file the build does not have (WhiteNoise served those it has).
        return HttpResponse(b"Not found.", status=404, content_type="text/plain")
    body = _index.read()
    if body is None:
        response = HttpResponse(_NOT_BUILT, status=503, content_type="text/html")
    else:
        response = HttpResponse(body, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return response


def console_root(request: HttpRequest) -> HttpResponse:
    return HttpResponsePermanentRedirect("/console/")
