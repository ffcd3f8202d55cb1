"""Billing's configuration, read from the environment when used (tests change it per test).

Billing is **off** without `STRIPE_SECRET_KEY`: plans are assigned by operators, as before, and
the billing endpoints answer `409 billing_disabled`. With a key (Stripe's test mode, or
`localstripe` in the tests: `STRIPE_API_BASE`), every call goes through the real `stripe`
library."""

from __future__ import annotations

from dataclasses import dataclass

from vectorplane import config


@dataclass(frozen=True)
class BillingSettings:
    secret_key: str
    webhook_secret: str
    api_base: str  # "" : Stripe's own (https://api.stripe.com)
    webhook_tolerance: int  # seconds a signed event stays acceptable
    grace_days: int  # past_due -> payment_required
    suspend_days: int  # payment_required -> suspended
    currency: str
    public_url: str  # where Checkout and the Portal send the user back

    @property
    def enabled(self) -> bool:
        return bool(self.secret_key)


def billing_settings() -> BillingSettings:
    return BillingSettings(
        secret_key=config.env_str("STRIPE_SECRET_KEY", ""),
        webhook_secret=config.env_str("STRIPE_WEBHOOK_SECRET", ""),
        api_base=config.env_str("STRIPE_API_BASE", ""),
        webhook_tolerance=config.env_int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300),
        grace_days=config.env_int("VECTORPLANE_BILLING_GRACE_DAYS", 7),
        suspend_days=config.env_int("VECTORPLANE_BILLING_SUSPEND_DAYS", 14),
        currency=config.env_str("VECTORPLANE_BILLING_CURRENCY", "usd"),
        public_url=config.public_url(),
    )
