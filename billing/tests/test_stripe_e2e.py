"""Billing end to end with a real stateful Stripe server: localstripe holds the customer, the
plan's price, the card, the subscription and its invoices, and itself delivers its signed
webhooks to the control plane running as a live HTTP server — the plan follows the paid
subscription, a declined invoice makes the tenant past due, and paying it makes it current.
Nothing here is delivered by the test: every event is one localstripe made and signed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe

from billing import services
from billing.client import stripe_client
from billing.models import BillingAccount, CatalogueEntry, WebhookEvent
from billing.tests.conftest import WEBHOOK_SECRET, WEBHOOK_URL, LocalStripe
from tenants.models import PaymentState, Plan, Tenant
from tenants.scoping import tenant_scope

pytestmark = pytest.mark.django_db(transaction=True)

# localstripe's test cards: one that pays, one whose payments need 3-D Secure.
GOOD_CARD, THREE_D_SECURE_CARD = "4242424242424242", "4000002500003155"


def _eventually(predicate: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            got = list(WebhookEvent.objects.values_list("type", "outcome"))
            raise AssertionError(f"{what} within {seconds} s; events: {got}")
        time.sleep(0.2)


def _card(client: stripe.StripeClient, customer: str, number: str) -> str:
    card: Any = {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    method = client.v1.payment_methods.create(params={"type": "card", "card": card})
    client.v1.payment_methods.attach(method.id, params={"customer": customer})
    client.v1.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": method.id}}
    )
    return method.id


def test_localstripe_webhooks_drive_the_plan_and_the_payment_state(
    tenant: Tenant, stripe_env: LocalStripe, live_server: Any
) -> None:
    registered = httpx.post(
        f"{stripe_env.url}/_config/webhooks/vectorplane",
        data={"url": f"{live_server.url}{WEBHOOK_URL}", "secret": WEBHOOK_SECRET},
    )  # fmt: skip
    assert registered.status_code == 200, registered.text
    client = stripe_client()
    account = services.customer_ensure(tenant=tenant)
    customer = account.stripe_customer_id
    product = client.v1.products.create(params={"name": "Vectorplane starter"})
    price = client.v1.plans.create(params={
        "amount": 2500, "currency": "usd", "interval": "month", "product": product.id,
    })  # fmt: skip
    CatalogueEntry.objects.update_or_create(
        lookup_key="vp_starter_base",
        defaults={"kind": "base_price", "stripe_id": price.id,
                  "plan": Plan.objects.get(slug="starter")},
    )  # fmt: skip
    _card(client, customer, GOOD_CARD)

    # What Checkout would make: a subscription to the plan's price, paid at once.
    subscription = client.v1.subscriptions.create(params={
        "customer": customer, "items": [{"plan": price.id}],
        "metadata": {"tenant_id": str(tenant.id), "plan": "starter"},
    })  # fmt: skip
    assert subscription.status == "active"

    def plan_is_starter() -> bool:
        return Tenant.objects.get(pk=tenant.pk).plan.slug == "starter"

    _eventually(plan_is_starter, "the plan follows the subscription")
    with tenant_scope(tenant.id):
        stored = BillingAccount.objects.get(tenant=tenant)
    assert stored.stripe_subscription_id == subscription.id
    assert stored.subscription_status == "active" and stored.current_period_end is not None
    _eventually(lambda: WebhookEvent.objects.filter(type="invoice.payment_succeeded").exists(),
                "the first invoice's payment arrives")  # fmt: skip
    # It arrived beside the subscription's event (both lock the tenant): applied, not lost.
    paid = WebhookEvent.objects.get(type="invoice.payment_succeeded")
    assert paid.tenant_id == tenant.id and "tenant current" in paid.outcome, paid.outcome

    # A later invoice whose payment the customer fails to authenticate (3-D Secure): past due ...
    _card(client, customer, THREE_D_SECURE_CARD)
    client.v1.invoice_items.create(params={"customer": customer, "amount": 900,
                                           "currency": "usd"})  # fmt: skip
    invoice = client.v1.invoices.create(params={"customer": customer})
    attempt = client.v1.invoices.pay(invoice.id)
    assert attempt.status == "open"
    intent = client.v1.payment_intents.retrieve(str(attempt.to_dict()["payment_intent"]))
    assert intent.status == "requires_action"
    failed = httpx.post(
        f"{stripe_env.url}/v1/payment_intents/{intent.id}/_authenticate",
        data={"key": "pk_test_vectorplane", "client_secret": intent.client_secret,
              "success": "false"},  # what Stripe.js sends when the customer fails it
    )  # fmt: skip
    assert failed.status_code == 200, failed.text
    _eventually(lambda: Tenant.objects.get(pk=tenant.pk).payment_state == PaymentState.PAST_DUE,
                "a declined invoice makes the tenant past due")  # fmt: skip
    # ... and paying it with a good card: current.
    _card(client, customer, GOOD_CARD)
    assert client.v1.invoices.pay(invoice.id).status == "paid"
    _eventually(lambda: Tenant.objects.get(pk=tenant.pk).payment_state == PaymentState.CURRENT,
                "paying the invoice makes the tenant current")  # fmt: skip
    with tenant_scope(tenant.id):
        assert BillingAccount.objects.get(tenant=tenant).unpaid_invoices == []
    # Every event was localstripe's, verified, and processed once.
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    assert set(WebhookEvent.objects.values_list("deliveries", flat=True)) == {1}
