"""Buying a plan: the Checkout Session and Customer Portal requests the real `stripe` library
sends, recorded at the HTTP layer and checked against Stripe's API reference (localstripe has
neither endpoint: it answers 404, which the API reports as `502 payment_provider_error`);
refusals before Stripe is asked (not for sale, unchanged, a downgrade the use exceeds, no
catalogue, billing off); invoices from localstripe; roles and another tenant."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from billing.checkout import base_lookup_key, metered_lookup_key
from billing.models import CatalogueEntry, Meter
from billing.tests.conftest import LocalStripe, Recorder
from provisioning.models import Index
from tenants import services as tenant_services
from tenants.actors import Actor
from tenants.models import Plan, Role, Tenant
from tenants.scoping import tenant_scope

pytestmark = pytest.mark.django_db

T = "/api/v1/tenants/acme/billing"


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _catalogue(plan: str) -> dict[str, str]:
    """The Stripe price ids the catalogue command records for `plan` (its table, as it would)."""
    ids = {base_lookup_key(plan): f"price_{plan}_base"}
    ids |= {metered_lookup_key(plan, m): f"price_{plan}_{m}" for m in Meter.values}
    for key, stripe_id in ids.items():
        CatalogueEntry.objects.update_or_create(
            lookup_key=key, defaults={"kind": "price", "stripe_id": stripe_id,
                                      "plan": Plan.objects.get(slug=plan)},
        )  # fmt: skip
    return ids


def test_checkout_sends_the_documented_session_request(
    members: dict[str, Any], tenant: Tenant, stripe_env: LocalStripe, stripe_requests: Recorder
) -> None:
    ids = _catalogue("starter")
    response = _client(members[Role.ADMIN]).post(f"{T}/checkout", {"plan": "starter"},
                                                 format="json")  # fmt: skip
    # localstripe has no Checkout: Stripe's error is reported, and nothing changed.
    assert response.status_code == 502, response.json()
    assert response.json()["error"]["code"] == "payment_provider_error"
    tenant.refresh_from_db()
    assert tenant.plan.slug == "free"
    (sent,) = stripe_requests.to("/v1/checkout/sessions")
    form = sent.form()
    assert sent.method == "POST"
    assert sent.headers["Authorization"] == "Bearer sk_test_vectorplane"
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    # POST /v1/checkout/sessions (API reference): mode, customer, line_items[n][price] (and
    # [quantity] for licensed prices, none for metered ones), success_url, cancel_url.
    assert form["mode"] == "subscription"
    assert form["customer"].startswith("cus_")  # made in localstripe first
    assert form["client_reference_id"] == str(tenant.id)
    assert form["line_items[0][price]"] == ids[base_lookup_key("starter")]
    assert form["line_items[0][quantity]"] == "1"
    metered = [form[f"line_items[{i}][price]"] for i in range(1, 1 + len(Meter.values))]
    assert metered == [ids[metered_lookup_key("starter", m)] for m in Meter.values]
    assert not any(f"line_items[{i}][quantity]" in form for i in range(1, 5))
    assert form["success_url"].endswith(
        "/console/t/acme/billing?checkout=success&session_id={CHECKOUT_SESSION_ID}"
    )
    assert form["cancel_url"].endswith("/console/t/acme/billing?checkout=cancelled")
    assert form["metadata[plan]"] == "starter"
    assert form["subscription_data[metadata][tenant_id]"] == str(tenant.id)


def test_portal_sends_the_documented_session_request(
    owner: Any, tenant: Tenant, stripe_env: LocalStripe, stripe_requests: Recorder
) -> None:
    response = _client(owner).post(f"{T}/portal")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "payment_provider_error"
    (sent,) = stripe_requests.to("/v1/billing_portal/sessions")
    assert sent.method == "POST"
    form = sent.form()  # POST /v1/billing_portal/sessions: customer (required), return_url
    assert form["customer"].startswith("cus_")
    assert form["return_url"].endswith("/console/t/acme/billing")


def test_refusals_before_stripe_is_asked(
    owner: Any, tenant: Tenant, operator: Any, stripe_env: LocalStripe, stripe_requests: Recorder
) -> None:
    client = _client(owner)
    cases = [
        ("enterprise", 400, "plan_not_purchasable"),  # private
        ("free", 400, "plan_not_purchasable"),  # no price: cancel in the portal instead
        ("gold", 400, "unknown_plan"),
        ("starter", 409, "catalogue_missing"),
    ]
    for plan, status, code in cases:
        answer = client.post(f"{T}/checkout", {"plan": plan}, format="json")
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), plan
    # A downgrade the tenant's use exceeds: 4 indexes on pro, starter allows 10, free 3.
    tenant_services.tenant_change_plan(actor=Actor(user=operator), tenant=tenant, plan_slug="pro")
    for i in range(4):
        made = client.post("/api/v1/tenants/acme/indexes", {"name": f"i{i}", "dimension": 3},
                           format="json")  # fmt: skip
        assert made.status_code == 201, made.json()
    Plan.objects.filter(slug="starter").update(max_indexes=2, max_dimension=2)
    _catalogue("starter")
    refused = client.post(f"{T}/checkout", {"plan": "starter"}, format="json")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "plan_limits_exceeded"
    assert error["details"]["exceeded"] == {
        "max_indexes": {"used": 4, "limit": 2},
        "max_dimension": {"used": 3, "limit": 2},
    }
    same = client.post(f"{T}/checkout", {"plan": "pro"}, format="json")
    assert same.status_code == 409 and same.json()["error"]["code"] == "plan_unchanged"
    assert stripe_requests.to("/v1/checkout/sessions") == []
    with tenant_scope(tenant.id):
        assert Index.objects.count() == 4


def test_billing_off_answers_billing_disabled(
    owner: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    _catalogue("starter")
    for path, body in (("checkout", {"plan": "starter"}), ("portal", None)):
        answer = _client(owner).post(f"{T}/{path}", body, format="json")
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "billing_disabled"


def test_invoices_come_from_stripe(owner: Any, tenant: Tenant, stripe_env: LocalStripe) -> None:
    from billing import services
    from billing.client import stripe_client

    empty = _client(owner).get(f"{T}/invoices")
    assert empty.status_code == 200 and empty.json() == {"data": [], "upcoming": None}
    account = services.customer_ensure(tenant=tenant)
    stripe = stripe_client()
    product = stripe.v1.products.create(params={"name": "Starter"})
    plan = stripe.v1.plans.create(params={"product": product.id, "amount": 2500,
                                          "currency": "usd", "interval": "month"})  # fmt: skip
    card = stripe.v1.payment_methods.create(params={"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123",
    }})  # fmt: skip
    stripe.v1.payment_methods.attach(card.id, params={"customer": account.stripe_customer_id})
    stripe.v1.customers.update(
        account.stripe_customer_id,
        params={"invoice_settings": {"default_payment_method": card.id}},
    )
    subscription = stripe.v1.subscriptions.create(
        params={"customer": account.stripe_customer_id, "items": [{"plan": plan.id}]}
    )
    account.stripe_subscription_id = subscription.id
    account.save()
    answer = _client(owner).get(f"{T}/invoices")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    (invoice,) = body["data"]
    assert (invoice["status"], invoice["total"], invoice["currency"]) == ("paid", 2500, "usd")
    assert invoice["id"].startswith("in_")
    assert body["upcoming"]["total"] == 2500  # the next month's, as Stripe previews it


def test_roles_and_another_tenant(
    members: dict[str, Any], tenant: Tenant, other_tenant: Tenant
) -> None:
    for role in (Role.MEMBER, Role.VIEWER):
        client = _client(members[role])
        assert client.post(f"{T}/checkout", {"plan": "starter"}, format="json").status_code == 403
        assert client.post(f"{T}/portal").status_code == 403
        assert client.get(f"{T}/invoices").status_code == 403
    mallory = _client(get_user_model().objects.get(email="mallory@example.test"))
    for answer in (mallory.post(f"{T}/checkout", {"plan": "starter"}, format="json"),
                   mallory.post(f"{T}/portal"), mallory.get(f"{T}/invoices")):  # fmt: skip
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
