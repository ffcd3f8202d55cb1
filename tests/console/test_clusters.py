"""Dedicated clusters in the console, in a real browser against the real platform: a new user's
tenant (moved by an operator to a plan with clusters) orders a pgvector cluster in the console,
sees it become `ready` — a real Celery worker runs the provisioning task, and the `local`
driver starts a real PostgreSQL server — opens it, reads its state history, resizes it, and
deletes it with its name typed, after which the worker has removed it.

The control plane (`control_plane_server`) queues its tasks on the session's Redis; the worker
(`tests/console/worker.py`) consumes that queue, on the test database and in the session's
clusters folder (whose servers are stopped with the session: root conftest, `local_clusters`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

from gateway.tests.conftest import Server, ensure_plans
from provisioning.models import Cluster
from tenants import services as tenant_services
from tenants.actors import Actor
from tenants.models import Tenant
from tenants.tests.factories import UserFactory

from .helpers import create_tenant, serious_violations, sign_up, unique
from .worker import Worker

PROVISIONED = 120_000  # ms: initdb and a first start of PostgreSQL on a busy machine


def test_a_cluster_is_ordered_watched_until_ready_resized_and_deleted_in_the_console(
    context: BrowserContext,
    control_plane_server: Server,
    worker: Worker,
    django_db_blocker: Any,
    shot: Callable[[Page, str], Path],
) -> None:
    base = control_plane_server.url
    page = context.new_page()
    sign_up(page, base, f"{unique('cleo')}@example.test")
    create_tenant(page, unique("dedico"))
    match = re.search(r"/console/t/([^/]+)", page.url)
    assert match is not None, page.url
    slug = match.group(1)
    with django_db_blocker.unblock():
        # A new tenant is on the free plan (no clusters); an operator moves it to pro.
        ensure_plans()
        operator: Any = UserFactory(email=f"{unique('ops')}@example.test", is_staff=True)
        tenant_services.tenant_change_plan(
            actor=Actor(user=operator), tenant=Tenant.objects.get(slug=slug), plan_slug="pro"
        )
    page.reload()

    page.get_by_role("link", name="Clusters").click()
    expect(page.get_by_role("heading", name="No dedicated clusters yet")).to_be_visible()
    size = page.get_by_label("Size")
    expect(size.get_by_role("option", name=re.compile(r"^xl .*not in your plan"))).to_be_disabled()
    page.get_by_label("Name").fill("main")
    page.get_by_label("Engine").select_option("pgvector")
    size.select_option("xs")
    expect(size).to_have_accessible_description(re.compile("CPU 500m, memory 1Gi"))
    page.get_by_role("button", name="Create cluster").click()
    expect(page.get_by_text(re.compile("Cluster main ordered"))).to_be_visible()
    row = page.get_by_role("row", name=re.compile(r"\bmain\b"))
    # The list refreshes itself while the worker provisions the cluster.
    expect(row.locator(".badge")).to_have_text("ready", timeout=PROVISIONED)
    shot(page, "clusters")
    assert serious_violations(page) == []

    row.get_by_role("link", name="main").click()
    expect(page.get_by_role("heading", name="main", level=1)).to_be_visible()
    history = page.get_by_role("region", name="Status changes")
    expect(history.get_by_role("row")).to_have_text(
        [re.compile("Change"), re.compile("provisioning → ready"),
         re.compile("pending → provisioning"), re.compile("ordered → pending")]
    )  # fmt: skip
    expect(page.get_by_text(re.compile("None yet. Once the cluster is ready"))).to_be_visible()

    resize = page.get_by_role("form", name="Resize")
    resize.get_by_label("Size").select_option("s")
    resize.get_by_role("button", name="Resize cluster").click()
    expect(page.get_by_text(re.compile(r"Resize to s \S 1 requested\."))).to_be_visible()
    # The page refreshes itself until the worker applied the new size.
    facts = page.get_by_role("region", name="About this cluster")
    expect(history.get_by_role("row").nth(1)).to_contain_text(
        "updating → ready", timeout=PROVISIONED
    )
    expect(facts.locator(".badge")).to_have_text("ready")
    expect(facts).to_contain_text("CPU 1, memory 4Gi")
    expect(history.get_by_role("row").nth(2)).to_contain_text("ready → updating")
    shot(page, "cluster")
    assert serious_violations(page) == []

    page.get_by_role("button", name="Delete cluster…").click()
    dialog = page.get_by_role("dialog", name="Delete cluster main?")
    confirm = dialog.get_by_role("button", name="Delete cluster")
    dialog.get_by_label(re.compile("to confirm")).fill("mai")
    expect(confirm).to_be_disabled()
    dialog.get_by_label(re.compile("to confirm")).fill("main")
    confirm.click()
    expect(page.get_by_text("Cluster main is being deleted.", exact=False)).to_be_visible()
    expect(page.get_by_text(re.compile("There is no cluster main here"))).to_be_visible(
        timeout=PROVISIONED
    )
    page.get_by_role("link", name="Back to the clusters").click()
    expect(page.get_by_role("heading", name="No dedicated clusters yet")).to_be_visible()
    with django_db_blocker.unblock():
        statuses = list(
            Cluster.objects.unscoped()
            .filter(tenant__slug=slug, name="main")
            .values_list("status", flat=True)
        )
    assert statuses == ["deleted"], (statuses, worker.tail())
