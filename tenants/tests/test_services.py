"""Service rules that are easiest to see below the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants import services
from tenants.actors import Actor
from tenants.models import Membership, Role, Tenant
from tenants.scoping import tenant_scope
from tenants.selectors import tenant_effective_limits
from tenants.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_slug_derivation_takes_the_next_free_suffix(owner: Any) -> None:
    actor = Actor(user=owner)
    slugs = [services.tenant_create(actor=actor, name="Acme Corp").slug for _ in range(4)]
    assert slugs == ["acme-corp", "acme-corp-2", "acme-corp-3", "acme-corp-4"]
    services.tenant_create(actor=actor, name="x", slug="acme-corp-10")
    services.tenant_create(actor=actor, name="x", slug="acme-corporate")
    assert services.tenant_create(actor=actor, name="Acme Corp").slug == "acme-corp-11"
    assert services.tenant_create(actor=actor, name="Admin").slug == "admin-2"  # reserved
    assert services.tenant_create(actor=actor, name="!!").slug == "tenant"


def test_slug_derivation_is_one_query_however_many_collide(owner: Any) -> None:
    actor = Actor(user=owner)
    for _ in range(15):
        services.tenant_create(actor=actor, name="Popular")
    with CaptureQueriesContext(connection) as queries:
        services._unique_slug("Popular")
    assert len(queries.captured_queries) == 1


def test_creator_becomes_owner_on_the_free_plan(owner: Any) -> None:
    tenant = services.tenant_create(actor=Actor(user=owner), name="Fresh")
    assert tenant.plan.slug == "free"
    with tenant_scope(tenant.id):
        assert Membership.objects.get(user=owner).role == Role.OWNER


def test_effective_limits_overlay_overrides(operator: Any, tenant: Tenant) -> None:
    before = tenant_effective_limits(tenant=tenant)
    assert before.plan == "free" and before.overridden == []
    services.tenant_limits_override_set(
        actor=Actor(user=operator),
        tenant=tenant,
        values={"max_indexes": 42, "allowed_engines": ["pgvector", "qdrant"]},
        reason="pilot",
    )
    after = tenant_effective_limits(tenant=tenant)
    assert after.limits["max_indexes"] == 42
    assert after.limits["allowed_engines"] == ["pgvector", "qdrant"]
    assert after.limits["max_vectors"] == before.limits["max_vectors"]
    assert sorted(after.overridden) == ["allowed_engines", "max_indexes"]
    # Replacing the overrides with nothing falls back to the plan.
    services.tenant_limits_override_set(actor=Actor(user=operator), tenant=tenant, values={})
    assert tenant_effective_limits(tenant=tenant).limits == before.limits


def test_plan_change_moves_effective_limits(operator: Any, tenant: Tenant) -> None:
    services.tenant_change_plan(actor=Actor(user=operator), tenant=tenant, plan_slug="pro")
    tenant.refresh_from_db()
    limits = tenant_effective_limits(tenant=tenant).limits
    assert limits["allowed_tiers"] == ["shared", "dedicated"]
    assert limits["max_indexes"] == 50


def test_plans_are_seeded() -> None:
    from tenants.models import Plan

    assert list(Plan.objects.values_list("slug", flat=True)) == [
        "free",
        "starter",
        "pro",
        "enterprise",
    ]


def test_non_operator_cannot_pick_a_plan_at_creation() -> None:
    user: Any = UserFactory()
    from controlplane.errors import PermissionDeniedError

    with pytest.raises(PermissionDeniedError):
        services.tenant_create(actor=Actor(user=user), name="Greedy", plan_slug="enterprise")
