"""The platform operators' pages in a real browser against the real platform: a staff user
(made through the ORM: staff status is granted in the Django admin, never by sign-up) signs in
and sees, under Platform, a tenant that another user created (and its pages have no serious
accessibility violation); a user who is not staff opening /console/operator gets the not-found
page, and the API answers them as for an unknown URL."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import Browser, Page, expect

from controlplane.celery import app as celery_app
from gateway.tests.conftest import CONTROL_PLANE_BROKER_DB, RedisProcess, Server
from tenants.models import AuditEvent, Tenant
from tenants.scoping import tenant_scope
from tenants.selectors import tenant_effective_limits
from tenants.tests.factories import UserFactory, make_tenant

from .helpers import PASSWORD, Recorder, serious_violations, sign_up, unique
from .worker import Worker


def _staff_user(django_db_blocker: Any) -> str:
    """A staff user who belongs to no tenant; its e-mail address (the password: PASSWORD)."""
    email = f"{unique('ops')}@example.test"
    with django_db_blocker.unblock():
        user: Any = UserFactory(email=email, is_staff=True)
        # Hashed with a hasher the control plane's settings accept, with few iterations.
        user.password = PBKDF2PasswordHasher().encode(PASSWORD, uuid.uuid4().hex[:12], 1000)
        user.save()
    return email


def test_staff_see_every_tenant_and_others_get_not_found(
    browser: Browser,
    control_plane_server: Server,
    worker: Worker,
    redis_server: RedisProcess,
    django_db_blocker: Any,
    shot: Callable[[Page, str], Path],
) -> None:
    base = control_plane_server.url
    # A reconcile through the real broker and worker: the heartbeat the health page reads.
    # (This process runs tasks eagerly; this one goes out on the control plane's queue.)
    eager, celery_app.conf.task_always_eager = celery_app.conf.task_always_eager, False
    try:
        with celery_app.connection_for_write(redis_server.url(CONTROL_PLANE_BROKER_DB)) as conn:
            celery_app.send_task("provisioning.tasks.clusters_reconcile",
                                 kwargs={"check_ready": False}, connection=conn)  # fmt: skip
    finally:
        celery_app.conf.task_always_eager = eager
    tenant_name = unique("Othercorp")
    with django_db_blocker.unblock():
        other = UserFactory(email=f"{unique('own')}@example.test")
        slug = make_tenant(owner=other, name=tenant_name).slug
    staff_email = _staff_user(django_db_blocker)

    staff_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    user_ctx = browser.new_context()
    try:
        staff = staff_ctx.new_page()
        staff.goto(f"{base}/console/sign-in")
        staff.get_by_label("Email").fill(staff_email)
        staff.get_by_label("Password").fill(PASSWORD)
        staff.get_by_role("button", name="Sign in").click()
        staff.get_by_role("link", name="Platform").click()
        expect(staff).to_have_url(re.compile(r"/console/operator$"))
        table = staff.get_by_role("table", name="Tenants")
        row = table.get_by_role("row", name=re.compile(re.escape(tenant_name)))
        expect(row).to_be_visible()
        expect(row).to_contain_text(slug)
        expect(row).to_contain_text("free")
        staff.get_by_label("Search").fill(slug)
        staff.get_by_role("button", name="Apply filters").click()
        expect(table.get_by_role("row")).to_have_count(2)  # the header and the tenant
        shot(staff, "operator-tenants")
        violations = {"tenants": serious_violations(staff)}
        staff.get_by_role("link", name="Clusters").click()
        expect(staff.get_by_role("heading", name="Clusters")).to_be_visible()
        expect(staff.get_by_role("status")).to_have_count(0)  # loaded
        violations["clusters"] = serious_violations(staff)
        staff.get_by_role("link", name="Health").click()
        expect(staff.get_by_role("listitem", name="Database")).to_contain_text("ok")
        # Every part of the running platform answers: the worker its ping, the reconcile it ran.
        reconcile = staff.get_by_role("listitem", name="Cluster reconcile")
        for _attempt in range(20):
            if re.search(r"\bok\b", reconcile.inner_text()):
                break
            staff.wait_for_timeout(500)
            staff.get_by_role("button", name="Check again").click()
            expect(staff.get_by_role("listitem", name="Database")).to_be_visible()
        for part in ("Database", "Task broker", "Gateway", "Workers", "Cluster reconcile"):
            item = staff.get_by_role("listitem", name=part)
            expect(item.get_by_text("ok", exact=True)).to_be_visible()
        expect(staff.get_by_role("listitem", name="Workers")).to_contain_text("1 answered")
        expect(staff.get_by_text("Every part answers.")).to_be_visible()

        # The tenant's page: suspend it (with the reason), move its plan, override a limit.
        staff.get_by_role("link", name="Tenants").click()
        staff.get_by_role("link", name=tenant_name).click()
        expect(staff.get_by_role("heading", name=tenant_name, level=1)).to_be_visible()
        staff.get_by_label("Reason").fill("unpaid invoice")
        staff.get_by_role("button", name="Suspend tenant").click()
        expect(staff.get_by_role("button", name="Reactivate tenant")).to_be_visible()
        expect(staff.get_by_text("Reason: unpaid invoice")).to_be_visible()
        staff.get_by_label("New plan").select_option("pro")
        staff.get_by_role("button", name="Change plan").click()
        expect(staff.get_by_text("Plan changed to pro.")).to_be_visible()
        expect(staff.get_by_text(re.compile(r"the plan's \(pro\)"))).to_be_visible()  # reloaded
        staff.get_by_label("Queries per second").fill("77")
        staff.get_by_label("Why").fill("launch week")
        staff.get_by_role("button", name="Save overrides").click()
        expect(staff.get_by_text("Limits saved: max_qps overridden.")).to_be_visible()
        violations = {"tenant": serious_violations(staff)}
        staff.get_by_role("button", name="Reactivate tenant").click()
        expect(staff.get_by_role("button", name="Suspend tenant")).to_be_visible()
        with django_db_blocker.unblock():
            changed = Tenant.objects.select_related("plan").get(slug=slug)
            assert (changed.status, changed.plan.slug) == ("active", "pro")
            assert tenant_effective_limits(tenant=changed).limits["max_qps"] == 77
            with tenant_scope(changed.id):
                actions = set(AuditEvent.objects.values_list("action", flat=True))
        assert {"tenant.suspended", "tenant.reactivated", "tenant.plan_changed",
                "tenant.limits_overridden"} <= actions
        assert violations == {"tenant": []}
        violations["health"] = serious_violations(staff)
        assert {name: found for name, found in violations.items() if found} == {}

        person = user_ctx.new_page()
        log = Recorder(person)
        sign_up(person, base, f"{unique('eve')}@example.test")
        expect(person.get_by_label("Tenant name")).to_be_visible()
        expect(person.get_by_role("link", name="Platform")).to_have_count(0)
        person.goto(f"{base}/console/operator")
        expect(person.get_by_role("heading", name="Page not found")).to_be_visible()
        assert log.mentioning(tenant_name) == []
        hidden = person.request.get(f"{base}/api/v1/operator/tenants")
        unknown = person.request.get(f"{base}/api/v1/operator/no-such-page")
        assert hidden.status == unknown.status == 404
        assert hidden.json() == unknown.json()
        assert hidden.json()["error"]["code"] == "not_found"
    finally:
        staff_ctx.close()
        user_ctx.close()
