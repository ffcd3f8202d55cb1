"""Spend alerts: one e-mail a period once the upcoming invoice (Stripe's preview, from
localstripe) passes the threshold, to the billing e-mail or else the owners; none below it,
none without a threshold, none twice."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient

from billing import alerts, services
from billing.client import stripe_client
from billing.tests.conftest import LocalStripe
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscribed(tenant: Tenant, stripe_env: LocalStripe) -> Tenant:
    """The tenant with a localstripe subscription of 25.00 USD a month."""
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
    account.current_period_start = datetime(2026, 12, 1, tzinfo=UTC)
    account.save()
    return tenant


def test_an_alert_goes_out_once_a_period_past_the_threshold(
    owner: Any, subscribed: Tenant, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    account = services.account_for(subscribed)
    account.spend_alert_cents = 3000  # 30.00 > the 25.00 upcoming: no alert
    account.save()
    assert alerts.spend_alerts_check() == {"checked": 1, "alerted": 0, "failed": 0}
    assert mail.outbox == []
    account.spend_alert_cents = 2000
    account.save()
    assert alerts.spend_alerts_check()["alerted"] == 1
    (message,) = mail.outbox
    assert message.to == ["owner@example.test"]  # no billing e-mail: the owners
    assert "25.00 USD" in message.body and "20.00 USD" in message.body
    assert "/console/t/acme/billing" in message.body
    assert alerts.spend_alerts_check()["alerted"] == 0  # once a period
    client = APIClient()
    client.force_authenticate(owner)
    assert client.get("/api/v1/tenants/acme/billing").json()["spend_alert_crossed"] is True
    # A new period: the alert may go out again, to the billing e-mail now.
    account.refresh_from_db()
    account.current_period_start = datetime(2027, 1, 1, tzinfo=UTC)
    account.billing_email = "ap@acme.test"
    account.save()
    assert alerts.spend_alerts_check()["alerted"] == 1
    assert mail.outbox[-1].to == ["ap@acme.test"]


def test_no_threshold_or_billing_off_checks_nothing(
    subscribed: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert alerts.spend_alerts_check() == {"checked": 0, "alerted": 0, "failed": 0}
    account = services.account_for(subscribed)
    account.spend_alert_cents = 1
    account.save()
    monkeypatch.delenv("STRIPE_SECRET_KEY")
    assert alerts.spend_alerts_check() == {"checked": 0, "alerted": 0, "failed": 0}
