"""Stripe's webhooks: signed with the `stripe` library's own signing helper and verified by
its `construct_event` (unsigned, forged, tampered and stale events change nothing), every event
processed exactly once (redelivered, and delivered twice at once), out-of-order delivery decided
by the objects' own times and ids, each event type's effect, and an event never reaching a
tenant other than its customer's."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from billing import payment
from billing.models import BillingAccount, CatalogueEntry, WebhookEvent
from billing.tests.conftest import WEBHOOK_URL, signature_for, stripe_event
from tenants.models import AuditEvent, PaymentState, Plan, Tenant, TenantStatus
from tenants.scoping import tenant_scope

pytestmark = pytest.mark.django_db

CUSTOMER = "cus_acme"
NOW = int(time.time())


def _post(event: dict[str, Any], *, signature: str | None = None, body: str | None = None,
          client: Client | None = None) -> Any:  # fmt: skip
    payload = body if body is not None else json.dumps(event)
    headers = {} if signature == "" else {"Stripe-Signature": signature or signature_for(payload)}
    return (client or Client()).post(WEBHOOK_URL, payload, content_type="application/json",
                                      headers=headers)  # fmt: skip


@pytest.fixture(autouse=True)
def notices_sent(django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's transaction never commits: run each request's on-commit work (the notices)
    as its commit would."""
    import django.test.client as test_client

    real = test_client.Client.post

    def post(self: Client, *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return real(self, *args, **kwargs)

    monkeypatch.setattr(test_client.Client, "post", post)


@pytest.fixture
def customer(tenant: Tenant, webhook_env: str) -> BillingAccount:
    with tenant_scope(tenant.id):
        account, _ = BillingAccount.objects.get_or_create(tenant=tenant)
        account.stripe_customer_id = CUSTOMER
        account.billing_email = "billing@acme.test"
        account.save()
    for slug in ("starter", "pro"):
        CatalogueEntry.objects.update_or_create(
            lookup_key=f"vp_{slug}_base",
            defaults={"kind": "base_price", "stripe_id": f"price_{slug}_base",
                      "plan": Plan.objects.get(slug=slug)},
        )  # fmt: skip
    return account


def _subscription(status: str, plan: str, *, sub_id: str = "sub_1") -> dict[str, Any]:
    return {
        "id": sub_id, "object": "subscription", "customer": CUSTOMER, "status": status,
        "metadata": {"plan": plan},
        "items": {"object": "list", "data": [{
            "id": f"si_{plan}", "object": "subscription_item",
            "current_period_start": NOW - 86400, "current_period_end": NOW + 29 * 86400,
            "price": {"id": f"price_{plan}_base", "object": "price",
                      "lookup_key": f"vp_{plan}_base"},
        }]},
    }  # fmt: skip


def _invoice(invoice_id: str, status: str = "open") -> dict[str, Any]:
    return {"id": invoice_id, "object": "invoice", "customer": CUSTOMER, "status": status,
            "amount_due": 4900, "currency": "usd",
            "hosted_invoice_url": f"https://invoice.stripe.com/i/{invoice_id}"}  # fmt: skip


def _account(tenant: Tenant) -> BillingAccount:
    with tenant_scope(tenant.id):
        return BillingAccount.objects.get(tenant=tenant)


def _fresh(tenant: Tenant) -> Tenant:
    return Tenant.objects.select_related("plan").get(pk=tenant.pk)


# --------------------------------------------------------------------------- signatures
@pytest.mark.parametrize("case", ["unsigned", "wrong_secret", "tampered", "stale", "garbage"])
def test_an_event_that_does_not_verify_changes_nothing(
    customer: BillingAccount, tenant: Tenant, case: str
) -> None:
    event = stripe_event("customer.subscription.updated", _subscription("active", "pro"),
                         created=NOW)  # fmt: skip
    payload = json.dumps(event)
    signature = {
        "unsigned": "",
        "wrong_secret": signature_for(payload, secret="whsec_someone_else"),
        "tampered": signature_for(payload.replace('"pro"', '"starter"')),
        "stale": signature_for(payload, timestamp=int(time.time()) - 301),  # tolerance: 300 s
        "garbage": "t=abc,v1=zz",
    }[case]
    response = _post(event, signature=signature, body=payload)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()
    assert _fresh(tenant).plan.slug == "free"


def test_a_signed_event_within_the_tolerance_is_applied(
    customer: BillingAccount, tenant: Tenant
) -> None:
    event = stripe_event("customer.subscription.updated", _subscription("active", "pro"),
                         created=NOW)  # fmt: skip
    payload = json.dumps(event)
    response = _post(event, body=payload,
                     signature=signature_for(payload, timestamp=int(time.time()) - 250))
    assert response.status_code == 200, response.content
    assert response.json()["duplicate"] is False
    assert _fresh(tenant).plan.slug == "pro"


def test_a_signed_body_that_is_not_an_event_is_refused(customer: BillingAccount) -> None:
    for body in ("not json", json.dumps({"id": "evt_x"}), json.dumps([1, 2])):
        response = _post({}, body=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "invalid_payload"
    assert not WebhookEvent.objects.exists()


def test_webhooks_are_off_without_billing(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    event = stripe_event("invoice.paid", _invoice("in_1", "paid"), created=NOW)
    response = _post(event)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "billing_disabled"


# --------------------------------------------------------------------------- exactly once
def test_a_redelivered_event_is_acknowledged_and_ignored(
    customer: BillingAccount, tenant: Tenant
) -> None:
    event = stripe_event("customer.subscription.updated", _subscription("active", "pro"),
                         created=NOW)  # fmt: skip
    first = _post(event)
    assert first.status_code == 200 and first.json()["duplicate"] is False
    # An operator moves the plan back; a redelivery of the old event must not undo that.
    from tenants import services as tenant_services
    from tenants.actors import Actor

    tenant_services.tenant_change_plan(actor=Actor.system(), tenant=tenant, plan_slug="starter")
    again = _post(event)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["outcome"] == first.json()["outcome"]
    assert _fresh(tenant).plan.slug == "starter"
    stored = WebhookEvent.objects.get()
    assert stored.deliveries == 2 and stored.processed_at is not None
    assert stored.tenant_id == tenant.id and stored.type == "customer.subscription.updated"


@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_twice_at_once_is_processed_once(
    customer: BillingAccount, tenant: Tenant
) -> None:
    event = stripe_event("invoice.payment_failed", _invoice("in_race"), created=NOW)
    payload = json.dumps(event)
    signature = signature_for(payload)
    barrier = threading.Barrier(4)
    answers: list[Any] = []

    def deliver() -> None:
        from django.db import connection

        try:
            barrier.wait()
            answers.append(_post(event, body=payload, signature=signature))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [a.status_code for a in answers] == [200] * 4
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True, True]
    assert WebhookEvent.objects.get().deliveries == 4
    changes = AuditEvent.objects.unscoped().filter(
        tenant=tenant, action="tenant.payment_state_changed"
    )
    assert changes.count() == 1
    assert len(mail.outbox) == 1  # one notice


# --------------------------------------------------------------------------- ordering
def test_an_older_subscription_state_arriving_later_changes_nothing(
    customer: BillingAccount, tenant: Tenant
) -> None:
    newer = stripe_event("customer.subscription.updated", _subscription("active", "pro"),
                         created=NOW, event_id="evt_new")  # fmt: skip
    older = stripe_event("customer.subscription.updated", _subscription("active", "starter"),
                         created=NOW - 60, event_id="evt_old")  # fmt: skip
    assert _post(newer).status_code == 200
    late = _post(older)
    assert late.status_code == 200 and late.json()["outcome"].startswith("stale")
    assert _fresh(tenant).plan.slug == "pro"
    account = _account(tenant)
    assert account.subscription_plan == "pro" and account.subscription_event_at == NOW
    assert account.current_period_end is not None


def test_cancellation_is_final_and_a_replaced_subscription_cannot_cancel_the_new_one(
    customer: BillingAccount, tenant: Tenant
) -> None:
    assert _post(stripe_event("customer.subscription.created",
                              _subscription("active", "starter", sub_id="sub_old"),
                              created=NOW - 100)).status_code == 200  # fmt: skip
    assert _post(stripe_event("customer.subscription.created",
                              _subscription("active", "pro", sub_id="sub_new"),
                              created=NOW - 50)).status_code == 200  # fmt: skip
    assert _fresh(tenant).plan.slug == "pro"
    # The old subscription's deletion (newer by time) is not the tenant's subscription any more.
    gone = _post(stripe_event("customer.subscription.deleted",
                              _subscription("canceled", "starter", sub_id="sub_old"),
                              created=NOW - 10))  # fmt: skip
    assert "not the tenant's subscription" in gone.json()["outcome"]
    assert _fresh(tenant).plan.slug == "pro"
    # The current one's deletion takes the tenant back to free ...
    deleted = _post(stripe_event("customer.subscription.deleted",
                                 _subscription("canceled", "pro", sub_id="sub_new"),
                                 created=NOW))  # fmt: skip
    assert "pro -> free" in deleted.json()["outcome"]
    assert _fresh(tenant).plan.slug == "free"
    # ... and an update of it with the same second's timestamp cannot revive it.
    revived = _post(stripe_event("customer.subscription.updated",
                                 _subscription("active", "pro", sub_id="sub_new"),
                                 created=NOW, event_id="evt_same_second"))  # fmt: skip
    assert "cancelled already" in revived.json()["outcome"]
    assert _fresh(tenant).plan.slug == "free"


def test_a_payment_failure_older_than_the_payment_is_ignored(
    customer: BillingAccount, tenant: Tenant
) -> None:
    paid = stripe_event("invoice.paid", _invoice("in_1", "paid"), created=NOW)
    failed = stripe_event("invoice.payment_failed", _invoice("in_1"), created=NOW - 30)
    assert _post(paid).status_code == 200
    late = _post(failed)
    assert late.json()["outcome"].startswith("stale")
    assert _fresh(tenant).payment_state == PaymentState.CURRENT
    assert len(mail.outbox) == 0


# --------------------------------------------------------------------------- effects
def test_checkout_completion_applies_the_paid_plan_once(
    customer: BillingAccount, tenant: Tenant
) -> None:
    session = {"id": "cs_1", "object": "checkout.session", "mode": "subscription",
               "customer": CUSTOMER, "subscription": "sub_9", "payment_status": "paid",
               "client_reference_id": str(tenant.id),
               "metadata": {"tenant_id": str(tenant.id), "plan": "starter"}}  # fmt: skip
    done = _post(stripe_event("checkout.session.completed", session, created=NOW))
    assert "free -> starter" in done.json()["outcome"]
    assert _fresh(tenant).plan.slug == "starter"
    assert _account(tenant).stripe_subscription_id == "sub_9"
    audit = AuditEvent.objects.unscoped().get(tenant=tenant, action="tenant.plan_changed")
    assert audit.actor_label == "system" and audit.details["plan"] == {"from": "free",
                                                                       "to": "starter"}
    # The subscription's own event afterwards agrees: nothing more changes.
    created = _post(stripe_event("customer.subscription.created",
                                 _subscription("active", "starter", sub_id="sub_9"),
                                 created=NOW))  # fmt: skip
    assert "unchanged" in created.json()["outcome"]
    # An unpaid checkout (an async payment method) does not change the plan.
    unpaid = dict(session, id="cs_2", subscription="sub_10", payment_status="unpaid",
                  metadata={"tenant_id": str(tenant.id), "plan": "pro"})  # fmt: skip
    assert "plan" not in _post(stripe_event("checkout.session.completed", unpaid,
                                            created=NOW + 1)).json()["outcome"]  # fmt: skip
    assert _fresh(tenant).plan.slug == "starter"


def test_a_subscription_not_yet_paid_keeps_the_plan(
    customer: BillingAccount, tenant: Tenant
) -> None:
    _post(stripe_event("customer.subscription.created", _subscription("incomplete", "pro"),
                       created=NOW))  # fmt: skip
    assert _fresh(tenant).plan.slug == "free"
    assert _account(tenant).subscription_status == "incomplete"
    _post(stripe_event("customer.subscription.updated", _subscription("active", "pro"),
                       created=NOW + 5))  # fmt: skip
    assert _fresh(tenant).plan.slug == "pro"


def test_failed_payment_then_grace_then_refused_then_suspended_then_paid(
    customer: BillingAccount, tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    def advance(at: Any) -> dict[str, int]:
        with django_capture_on_commit_callbacks(execute=True):
            return payment.payment_states_advance(at.isoformat())

    failed = _post(stripe_event("invoice.payment_failed", _invoice("in_7"), created=NOW))
    assert failed.json()["outcome"] == "invoice in_7 failed: past_due"
    tenant = _fresh(tenant)
    assert tenant.payment_state == PaymentState.PAST_DUE
    (notice,) = mail.outbox
    assert notice.to == ["billing@acme.test"] and "7 days" in notice.body
    # Another invoice's failure in the grace period does not restart it.
    _post(stripe_event("invoice.payment_failed", _invoice("in_8"), created=NOW + 1))
    assert _fresh(tenant).payment_state_since == tenant.payment_state_since
    since = tenant.payment_state_since
    assert since is not None

    # Within the grace: nothing moves.
    assert advance(since + timedelta(days=6))[
        PaymentState.PAYMENT_REQUIRED] == 0  # fmt: skip
    assert _fresh(tenant).payment_state == PaymentState.PAST_DUE
    # Past it: writes refused.
    moved = advance(since + timedelta(days=7, seconds=1))
    assert moved[PaymentState.PAYMENT_REQUIRED] == 1
    tenant = _fresh(tenant)
    assert tenant.payment_state == PaymentState.PAYMENT_REQUIRED
    assert "402" in mail.outbox[-1].body
    refused_since = tenant.payment_state_since
    assert refused_since is not None
    # A second period later: suspended.
    assert advance(refused_since + timedelta(days=13))["suspended"] == 0
    assert advance(refused_since + timedelta(days=14, seconds=1))["suspended"] == 1
    tenant = _fresh(tenant)
    assert tenant.status == TenantStatus.SUSPENDED and tenant.status_reason.startswith("billing:")

    assert "suspended" in mail.outbox[-1].subject
    # Paying one of the two failed invoices lifts nothing.
    other = _post(stripe_event("invoice.paid", _invoice("in_7", "paid"), created=NOW + 2))
    assert "in_8 still unpaid" in other.json()["outcome"]
    assert _fresh(tenant).status == TenantStatus.SUSPENDED
    # Paying the other lifts both.
    paid = _post(stripe_event("invoice.paid", _invoice("in_8", "paid"), created=NOW + 3))
    assert "lifted payment_required, suspended" in paid.json()["outcome"]
    tenant = _fresh(tenant)
    assert tenant.payment_state == PaymentState.CURRENT and tenant.status == TenantStatus.ACTIVE
    actions = list(AuditEvent.objects.unscoped().filter(tenant=tenant).order_by("created_at")
                   .values_list("action", flat=True))  # fmt: skip
    assert actions[-5:] == [
        "tenant.payment_state_changed", "tenant.payment_state_changed", "tenant.suspended",
        "tenant.payment_state_changed", "tenant.reactivated",
    ]  # fmt: skip
    account = _account(tenant)
    assert account.latest_invoice_id == "in_8" and account.latest_invoice_status == "paid"
    assert account.unpaid_invoices == []
    assert "paid up" in mail.outbox[-1].subject and len(mail.outbox) == 4


def test_an_operators_suspension_is_not_lifted_by_a_payment(
    customer: BillingAccount, tenant: Tenant
) -> None:
    from tenants import services as tenant_services
    from tenants.actors import Actor

    _post(stripe_event("invoice.payment_failed", _invoice("in_1"), created=NOW))
    tenant_services.tenant_suspend(actor=Actor.system(), tenant=tenant, reason="abuse report")
    _post(stripe_event("invoice.paid", _invoice("in_1", "paid"), created=NOW + 1))
    tenant = _fresh(tenant)
    assert tenant.payment_state == PaymentState.CURRENT
    assert tenant.status == TenantStatus.SUSPENDED and tenant.status_reason == "abuse report"


def test_voiding_the_failed_invoice_lifts_the_state(
    customer: BillingAccount, tenant: Tenant
) -> None:
    _post(stripe_event("invoice.payment_failed", _invoice("in_1"), created=NOW))
    voided = _post(stripe_event("invoice.voided", _invoice("in_1", "void"), created=NOW + 1))
    assert "lifted past_due" in voided.json()["outcome"]
    assert _fresh(tenant).payment_state == PaymentState.CURRENT


def test_a_finalized_invoice_is_recorded(
    customer: BillingAccount, tenant: Tenant, members: dict[str, Any]
) -> None:
    _post(stripe_event("invoice.finalized", _invoice("in_5"), created=NOW))
    account = _account(tenant)
    assert (account.latest_invoice_id, account.latest_invoice_amount_due) == ("in_5", 4900)
    assert account.latest_invoice_url.endswith("/in_5")
    from rest_framework.test import APIClient

    viewer = APIClient()
    viewer.force_authenticate(members["viewer"])
    body = viewer.get("/api/v1/tenants/acme/billing").json()
    assert body["latest_invoice"] == {"id": "in_5", "status": "open", "amount_due": 4900,
                                      "currency": "usd",
                                      "hosted_invoice_url": "https://invoice.stripe.com/i/in_5"}
    assert body["unpaid_invoices"] == []
    # An older invoice's finalization does not replace it.
    _post(stripe_event("invoice.finalized", _invoice("in_4"), created=NOW - 100))
    assert _account(tenant).latest_invoice_id == "in_5"


def test_the_customers_contact_follows_stripe_in_its_own_order(
    customer: BillingAccount, tenant: Tenant
) -> None:
    obj = {"id": CUSTOMER, "object": "customer", "email": "ap@acme.test",
           "address": {"line1": "1 Main St", "city": "Oslo", "country": "NO",
                       "postal_code": "0150", "line2": None, "state": None}}  # fmt: skip
    done = _post(stripe_event("customer.updated", obj, created=NOW))
    assert done.json()["outcome"].startswith("contact: address_city")
    account = _account(tenant)
    assert (account.billing_email, account.address_country) == ("ap@acme.test", "NO")
    older = dict(obj, email="old@acme.test")
    assert _post(stripe_event("customer.updated", older, created=NOW - 5)).json()[
        "outcome"].startswith("stale")  # fmt: skip
    assert _account(tenant).billing_email == "ap@acme.test"


# --------------------------------------------------------------------------- isolation
def test_an_event_reaches_only_its_customers_tenant(
    customer: BillingAccount, tenant: Tenant, other_tenant: Tenant
) -> None:
    # The customer decides the tenant, whatever the metadata claims.
    sub = _subscription("active", "pro") | {"metadata": {"tenant_id": str(other_tenant.id),
                                                         "plan": "pro"}}  # fmt: skip
    _post(stripe_event("customer.subscription.updated", sub, created=NOW))
    assert _fresh(tenant).plan.slug == "pro"
    assert _fresh(other_tenant).plan.slug == "free"
    # An unknown customer reaches nobody: stored, acknowledged, nothing changed.
    stranger = _invoice("in_x") | {"customer": "cus_nobody"}
    answer = _post(stripe_event("invoice.payment_failed", stranger, created=NOW))
    assert answer.status_code == 200 and answer.json()["outcome"].startswith("ignored")
    assert _fresh(other_tenant).payment_state == PaymentState.CURRENT
    assert _fresh(tenant).payment_state == PaymentState.CURRENT
    assert WebhookEvent.objects.get(pk=answer.json()["id"]).tenant_id is None


def test_an_event_type_billing_does_not_act_on_is_stored_and_acknowledged(
    customer: BillingAccount,
) -> None:
    answer = _post(stripe_event("charge.refunded", {"id": "ch_1", "object": "charge",
                                                    "customer": CUSTOMER}, created=NOW))
    assert answer.status_code == 200 and answer.json()["outcome"].startswith("ignored")
    assert WebhookEvent.objects.get().processed_at is not None
    assert timezone.now() - WebhookEvent.objects.get().received_at < timedelta(minutes=1)
