"""Billing's test servers: `localstripe` (PyPI), a real stateful Stripe API server (customers,
products, plans, subscriptions, invoices, payment methods) run as a process and driven through
the real `stripe` library; and a recorder of every request the library sends at the HTTP layer
(for the parts localstripe lacks — Checkout Sessions, the Customer Portal, Billing Meters —
whose requests are asserted against Stripe's published API reference)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import stripe

from billing import client as billing_client

LOCALSTRIPE = Path(sys.executable).with_name("localstripe")
SECRET_KEY = "sk_test_vectorplane"  # localstripe accepts any sk_test_ key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalStripe:
    url: str
    proc: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    """One localstripe process for the session (its state is in memory: `--from-scratch`)."""
    port = _free_port()
    work = tmp_path_factory.mktemp("localstripe")
    log = (work / "localstripe.log").open("wb")
    proc = subprocess.Popen(
        [str(LOCALSTRIPE), "--port", str(port), "--from-scratch"],
        cwd=work, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"localstripe exited: {(work / 'localstripe.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("localstripe did not listen within 30 s")
    try:
        yield LocalStripe(url=f"http://127.0.0.1:{port}", proc=proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def stripe_env(localstripe_server: LocalStripe, monkeypatch: pytest.MonkeyPatch) -> LocalStripe:
    """Billing on, against localstripe, with a webhook signing secret."""
    monkeypatch.setenv("STRIPE_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", localstripe_server.url)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_vectorplane_test")
    return localstripe_server


@dataclass
class SentRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    params: list[tuple[str, str]]  # the form-encoded body (or query), in order

    def form(self) -> dict[str, str]:
        return dict(self.params)


@dataclass
class Recorder:
    """Records what the real `stripe` library sends (method, path, headers, form fields) and
    passes it on to the real server it was configured for."""

    sent: list[SentRequest] = field(default_factory=list)

    def to(self, path: str) -> list[SentRequest]:
        return [r for r in self.sent if r.path == path]


class _RecordingClient(stripe.RequestsClient):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    # RequestsClient's own signature (its stubs disagree with HTTPClient's).
    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        path, _, query = url.partition("?")
        path = "/" + path.split("://", 1)[-1].split("/", 1)[-1]
        body = post_data.decode() if isinstance(post_data, bytes) else (post_data or query)
        self.recorder.sent.append(SentRequest(
            method=method.upper(), path=path, headers=dict(headers or {}),
            params=parse_qsl(body, keep_blank_values=True),
        ))  # fmt: skip
        return super().request(method, url, headers, post_data)


@pytest.fixture
def stripe_requests(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Every request billing's Stripe client sends during the test, recorded at the HTTP layer."""
    recorder = Recorder()
    monkeypatch.setattr(billing_client, "HTTP_CLIENT", _RecordingClient(recorder))
    return recorder


WEBHOOK_SECRET = "whsec_vectorplane_test"
WEBHOOK_URL = "/api/v1/billing/stripe/webhook"


def stripe_event(
    event_type: str, obj: dict[str, Any], *, created: int, event_id: str | None = None
) -> dict[str, Any]:
    """A Stripe event (v1 snapshot shape) around `obj`, as Stripe's webhooks deliver them."""
    return {
        "id": event_id or f"evt_{event_type.replace('.', '_')}_{created}",
        "object": "event",
        "api_version": stripe.api_version,
        "created": created,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": obj},
    }


def signature_for(payload: str, *, secret: str = WEBHOOK_SECRET,
                  timestamp: int | None = None) -> str:  # fmt: skip
    """The `Stripe-Signature` header, computed by the `stripe` library's own helper."""
    header: str = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    return header


@pytest.fixture
def webhook_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """Billing on with a webhook signing secret (webhooks call no Stripe API: no server)."""
    monkeypatch.setenv("STRIPE_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.delenv("STRIPE_API_BASE", raising=False)
    return WEBHOOK_SECRET

