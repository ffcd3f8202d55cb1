"""The tenant's billing account: off without a key (409 billing_disabled where Stripe is
needed), the Stripe customer made once (lazily, locked), the contact kept in step with it, the
spend alert, roles, and another tenant never reached."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from billing import services
from billing.client import stripe_client
from billing.tests.conftest import LocalStripe, Recorder
from tenants.models import AuditEvent, Role, Tenant
from tenants.scoping import tenant_scope

pytestmark = pytest.mark.django_db

URL = "/api/v1/tenants/acme/billing"


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_billing_is_off_without_a_key(
    owner: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    body = _client(owner).get(URL).json()
    assert body["enabled"] is False and body["plan"] == "free"
    assert body["payment_state"] == "current" and body["has_customer"] is False
    with pytest.raises(Exception) as refused:
        services.customer_ensure(tenant=tenant)
    assert getattr(refused.value, "code", None) == "billing_disabled"


def test_the_customer_is_made_once_and_follows_the_contact(
    members: dict[str, Any], tenant: Tenant, stripe_env: LocalStripe, stripe_requests: Recorder
) -> None:
    first = services.customer_ensure(tenant=tenant)
    again = services.customer_ensure(tenant=tenant)
    assert first.stripe_customer_id.startswith("cus_")
    assert again.stripe_customer_id == first.stripe_customer_id
    creates = stripe_requests.to("/v1/customers")
    assert len(creates) == 1 and creates[0].method == "POST"
    assert creates[0].headers["Idempotency-Key"] == f"vp-customer-{tenant.id}"
    assert creates[0].form()["metadata[tenant_id]"] == str(tenant.id)

    admin = _client(members[Role.ADMIN])
    patched = admin.patch(URL, {"billing_email": "ap@acme.test", "address_country": "DE",
                                "address_city": "Berlin", "spend_alert_cents": 5000},
                          format="json")  # fmt: skip
    assert patched.status_code == 200, patched.json()
    assert patched.json()["billing_email"] == "ap@acme.test"
    assert patched.json()["spend_alert_cents"] == 5000
    customer = stripe_client().v1.customers.retrieve(first.stripe_customer_id)
    assert customer.email == "ap@acme.test"
    assert customer.address is not None and customer.address.city == "Berlin"
    with tenant_scope(tenant.id):
        actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"billing.contact_updated", "billing.spend_alert_set"} <= actions


@pytest.mark.parametrize(
    "body",
    [{"billing_email": "nope"}, {"address_country": "de"}, {"spend_alert_cents": 0},
     {"spend_alert_cents": "5"}, {"plan": "pro"}, {"address_city": "x\x00y"}],
)  # fmt: skip
def test_bad_input_is_refused(owner: Any, tenant: Tenant, body: dict[str, Any]) -> None:
    response = _client(owner).patch(URL, body, format="json")
    assert response.status_code == 400, response.json()


def test_roles_and_another_tenant(
    members: dict[str, Any], tenant: Tenant, other_tenant: Tenant
) -> None:
    viewer = _client(members[Role.VIEWER])
    assert viewer.get(URL).status_code == 200
    refused = viewer.patch(URL, {"billing_email": "x@y.test"}, format="json")
    assert refused.status_code == 403
    member = _client(members[Role.MEMBER]).patch(URL, {"spend_alert_cents": 1}, format="json")
    assert member.status_code == 403
    from django.contrib.auth import get_user_model

    mallory = get_user_model().objects.get(email="mallory@example.test")
    for method in ("get", "patch"):
        answer = getattr(_client(mallory), method)(URL, {"billing_email": "m@evil.test"},
                                                    format="json")  # fmt: skip
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
