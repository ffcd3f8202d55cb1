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

from gateway.tests.conftest import Server
from tenants.tests.factories import UserFactory, make_tenant

from .helpers import PASSWORD, Recorder, serious_violations, sign_up, unique


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
    django_db_blocker: Any,
    shot: Callable[[Page, str], Path],
) -> None:
    base = control_plane_server.url
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
