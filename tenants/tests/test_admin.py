"""The operators' Django admin: every page renders, actions go through the audited services."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tenants.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    PersonalAccessToken,
    Plan,
    Tenant,
    TenantLimitOverride,
)
from tenants.scoping import tenant_scope
from tenants.tests.factories import make_key

pytestmark = pytest.mark.django_db

MODELS = [
    Tenant,
    Membership,
    Invitation,
    ApiKey,
    PersonalAccessToken,
    Plan,
    TenantLimitOverride,
    AuditEvent,
]


@pytest.fixture
def superuser(db: Any) -> Any:
    return get_user_model().objects.create_superuser(
        username="root@example.test", email="root@example.test", password="pw-for-admin-tests-1"
    )


@pytest.fixture
def admin_client(superuser: Any) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_search_render(
    admin_client: Client, model: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    make_key(tenant)
    url = reverse(f"admin:tenants_{model._meta.model_name}_changelist")
    response = admin_client.get(url)
    assert response.status_code == 200
    assert admin_client.get(url, {"q": "acme"}).status_code == 200


def test_change_pages_render_and_hide_secrets(admin_client: Client, tenant: Tenant) -> None:
    key, secret = make_key(tenant)
    response = admin_client.get(reverse("admin:tenants_apikey_change", args=[key.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert key.prefix in body
    assert key.secret_hash not in body and secret not in body
    assert (
        admin_client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk])).status_code
        == 200
    )


def test_non_staff_is_sent_to_login(owner: Any) -> None:
    client = Client()
    client.force_login(owner)
    response = client.get(reverse("admin:tenants_tenant_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_suspend_and_reactivate_actions_are_audited(
    admin_client: Client, superuser: Any, tenant: Tenant
) -> None:
    url = reverse("admin:tenants_tenant_changelist")
    response = admin_client.post(
        url, {"action": "suspend", "_selected_action": [str(tenant.pk)]}, REMOTE_ADDR="10.1.2.3"
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.status == "suspended"
    with tenant_scope(tenant.id):
        event = AuditEvent.objects.get(action="tenant.suspended")
    assert event.actor_user_id == superuser.pk and event.source_ip == "10.1.2.3"
    admin_client.post(url, {"action": "reactivate", "_selected_action": [str(tenant.pk)]})
    tenant.refresh_from_db()
    assert tenant.status == "active"
    with tenant_scope(tenant.id):
        assert AuditEvent.objects.filter(action="tenant.reactivated").count() == 1


def test_revoke_keys_action_is_audited(
    admin_client: Client, superuser: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, _ = make_key(tenant)
    theirs, _ = make_key(other_tenant)
    response = admin_client.post(
        reverse("admin:tenants_apikey_changelist"),
        {"action": "revoke", "_selected_action": [str(mine.pk), str(theirs.pk)]},
    )
    assert response.status_code == 302
    for key, owner_tenant in ((mine, tenant), (theirs, other_tenant)):
        with tenant_scope(owner_tenant.id):
            key.refresh_from_db()
            assert key.revoked_at is not None
            event = AuditEvent.objects.get(action="api_key.revoked", target_id=str(key.id))
        assert event.actor_user_id == superuser.pk


def test_tenants_cannot_be_deleted_or_edited_in_admin(admin_client: Client, tenant: Tenant) -> None:
    response = admin_client.post(
        reverse("admin:tenants_tenant_change", args=[tenant.pk]), {"name": "Renamed"}
    )
    tenant.refresh_from_db()
    assert tenant.name == "Acme"
    assert response.status_code in (200, 302, 403)
    assert (
        admin_client.get(reverse("admin:tenants_tenant_delete", args=[tenant.pk])).status_code
        == 403
    )
