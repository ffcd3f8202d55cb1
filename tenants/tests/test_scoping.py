"""Tenant scoping fails closed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tenants.models import ApiKey, AuditEvent, Invitation, Membership, Tenant, TenantLimitOverride
from tenants.scoping import TenantScopeRequired, current_tenant_id, tenant_scope
from tenants.tests.factories import make_key

pytestmark = pytest.mark.django_db

SCOPED_MODELS = [ApiKey, AuditEvent, Invitation, Membership, TenantLimitOverride]


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda m: m.__name__)
def test_query_without_tenant_in_scope_raises(model: Any, tenant: Tenant) -> None:
    with pytest.raises(TenantScopeRequired):
        list(model.objects.all())
    with pytest.raises(TenantScopeRequired):
        model.objects.filter(pk=1).exists()
    with pytest.raises(TenantScopeRequired):
        model.objects.count()


@pytest.mark.parametrize("related", ["api_keys", "audit_events", "invitations", "memberships"])
def test_related_manager_without_scope_raises(related: str, tenant: Tenant) -> None:
    with pytest.raises(TenantScopeRequired):
        list(getattr(tenant, related).all())


def test_scope_returns_only_that_tenants_rows(tenant: Tenant, other_tenant: Tenant) -> None:
    mine, _ = make_key(tenant)
    theirs, _ = make_key(other_tenant)
    with tenant_scope(tenant.id):
        ids = set(ApiKey.objects.values_list("id", flat=True))
        # Even asking for the other tenant's row by primary key finds nothing.
        assert not ApiKey.objects.filter(pk=theirs.pk).exists()
        # And its related manager, entered through the other tenant, finds nothing either.
        assert list(other_tenant.api_keys.all()) == []
    assert mine.id in ids and theirs.id not in ids


def test_scope_is_restored_after_the_block(tenant: Tenant, other_tenant: Tenant) -> None:
    with tenant_scope(tenant.id):
        with tenant_scope(other_tenant.id):
            assert current_tenant_id() == other_tenant.id
        assert current_tenant_id() == tenant.id
    with pytest.raises(TenantScopeRequired):
        current_tenant_id()


def test_create_for_another_tenant_in_scope_is_refused(
    tenant: Tenant, other_tenant: Tenant, owner: Any
) -> None:
    with tenant_scope(tenant.id), pytest.raises(TenantScopeRequired):
        Membership.objects.create(tenant=other_tenant, user=owner, role="viewer")
    assert not Membership.objects.unscoped().filter(tenant=other_tenant, user=owner).exists()


def test_scope_requires_a_uuid() -> None:
    with pytest.raises(TypeError), tenant_scope("acme"):  # type: ignore[arg-type]
        pass


def test_unscoped_is_the_explicit_escape_hatch(tenant: Tenant, other_tenant: Tenant) -> None:
    make_key(tenant)
    make_key(other_tenant)
    tenants = set(ApiKey.objects.unscoped().values_list("tenant_id", flat=True))
    assert tenants == {tenant.id, other_tenant.id}


def test_unknown_tenant_scope_sees_nothing(tenant: Tenant) -> None:
    make_key(tenant)
    with tenant_scope(uuid.uuid4()):
        assert ApiKey.objects.count() == 0
