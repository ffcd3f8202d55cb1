"""Billing's records: the tenant's Stripe customer and subscription, the catalogue (each paid
plan's Stripe product and prices, each meter), every webhook event by its id (processed exactly
once), and every meter event by its deterministic identifier (sent exactly once)."""

from __future__ import annotations

from typing import ClassVar

from django.db import models

from tenants.models import Plan, Tenant
from tenants.scoping import TenantScopedManager


class Meter(models.TextChoices):
    """What is billed by usage, each a Stripe Billing Meter (`event_name` = `vectorplane_<slug>`,
    summed per customer)."""

    READ_UNITS = "read_units", "Read units"
    WRITE_UNITS = "write_units", "Write units"
    STORAGE_GB_HOURS = "storage_gb_hours", "Storage (GB-hours)"
    CLUSTER_HOURS = "cluster_hours", "Dedicated cluster size-hours"


class BillingAccount(models.Model):
    """One per tenant, made when billing first needs it: its Stripe customer, its billing
    contact, its subscription as Stripe last described it, and its spend alert."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="billing")
    stripe_customer_id = models.CharField(max_length=255, blank=True, db_index=True)
    billing_email = models.EmailField(blank=True)
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    address_city = models.CharField(max_length=100, blank=True)
    address_postal_code = models.CharField(max_length=20, blank=True)
    address_state = models.CharField(max_length=100, blank=True)
    address_country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2.")
    stripe_subscription_id = models.CharField(max_length=255, blank=True, db_index=True)
    subscription_status = models.CharField(max_length=32, blank=True)
    subscription_plan = models.CharField(max_length=40, blank=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    # The Stripe-side time of the subscription state last applied (an event's `created`): an
    # older event arriving later never overwrites a newer state.
    subscription_event_at = models.BigIntegerField(default=0)
    # The same for payments (`invoice.paid` / `invoice.payment_failed`, by the event's
    # `created`) and for the customer's contact (`customer.updated`).
    payment_event_at = models.BigIntegerField(default=0)
    customer_event_at = models.BigIntegerField(default=0)
    # The invoices whose payment failed and that are not paid (or voided) since: the tenant is
    # current again once none is left.
    unpaid_invoices = models.JSONField(default=list, blank=True)
    # The latest invoice Stripe finalized, paid or failed to collect (the console shows it).
    latest_invoice_id = models.CharField(max_length=255, blank=True)
    latest_invoice_status = models.CharField(max_length=32, blank=True)
    latest_invoice_amount_due = models.BigIntegerField(default=0)
    latest_invoice_currency = models.CharField(max_length=3, blank=True)
    latest_invoice_url = models.URLField(max_length=500, blank=True)
    latest_invoice_at = models.BigIntegerField(default=0)
    spend_alert_cents = models.PositiveBigIntegerField(null=True, blank=True)
    spend_alert_sent_for = models.DateTimeField(
        null=True, blank=True, help_text="The period start an alert was sent for (one per period)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager["BillingAccount"]()

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.stripe_customer_id or 'no customer'}"


class CatalogueEntry(models.Model):
    """A Stripe object the catalogue command made from the plan table (lookup keys make it
    idempotent): a plan's product and base price, a meter and its metered price per plan."""

    kind = models.CharField(max_length=20)  # product | base_price | meter | metered_price
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, null=True, blank=True)
    meter = models.CharField(max_length=32, choices=Meter.choices, blank=True)
    lookup_key = models.CharField(max_length=200, unique=True)
    stripe_id = models.CharField(max_length=255)
    unit_amount_decimal = models.CharField(max_length=40, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.lookup_key} = {self.stripe_id}"


class WebhookEvent(models.Model):
    """A Stripe event as received, stored by its id before it is processed: a redelivery finds
    the row and is acknowledged without effect (exactly once)."""

    id = models.CharField(max_length=255, primary_key=True)
    type = models.CharField(max_length=100)
    created = models.BigIntegerField(help_text="The event's own `created` (Unix seconds).")
    livemode = models.BooleanField(default=False)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    deliveries = models.PositiveIntegerField(default=1)
    tenant = models.ForeignKey(Tenant, on_delete=models.SET_NULL, null=True, blank=True)
    outcome = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ("-created", "id")

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class MeterEventRecord(models.Model):
    """One meter event for one tenant, meter and hour: its `identifier` (tenant, meter, hour)
    is what Stripe deduplicates on, so a resend after a timeout or a killed worker never
    bills twice. `sent_at` is set once Stripe acknowledged it."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False)
    meter = models.CharField(max_length=32, choices=Meter.choices)
    hour = models.DateTimeField()
    value = models.DecimalField(max_digits=24, decimal_places=6)
    identifier = models.CharField(max_length=200, unique=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedManager["MeterEventRecord"]()

    class Meta:
        ordering = ("-hour", "meter")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["tenant", "meter", "hour"], name="billing_meter_event_unique_hour"
            )
        ]
        indexes: ClassVar = [
            models.Index(fields=["sent_at", "next_attempt_at"], name="billing_meter_event_due")
        ]

    def __str__(self) -> str:
        return self.identifier


def meter_event_identifier(tenant_id: object, meter: str, hour_epoch: int) -> str:
    """The deterministic identifier of (tenant, meter, hour): the same on every retry."""
    return f"vp:{tenant_id}:{meter}:{hour_epoch}"
