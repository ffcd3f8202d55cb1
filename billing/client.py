"""The one `stripe.StripeClient` billing talks to Stripe with (the real library, its own HTTP
client), built from `settings.billing_settings()`: Stripe's API, or `STRIPE_API_BASE` (the
tests' localstripe). Calls carry idempotency keys where a retry could repeat an effect."""

from __future__ import annotations

import stripe

from controlplane.errors import ConflictError

from .settings import BillingSettings, billing_settings

# The API version our requests and webhook handling follow: the library's own.
API_VERSION: str = stripe.api_version


# Tests set it to record the requests the library sends (billing/tests/conftest.py); None: the
# library's default HTTP client.
HTTP_CLIENT: stripe.HTTPClient | None = None


def stripe_client(settings: BillingSettings | None = None) -> stripe.StripeClient:
    settings = settings or billing_settings()
    if not settings.enabled:
        raise ConflictError(
            "billing_disabled",
            "Billing is not configured on this platform (no STRIPE_SECRET_KEY): plans are "
            "assigned by the platform's operators.",
        )
    if settings.api_base:  # every host at one address (localstripe, or a proxy)
        base = settings.api_base
        return stripe.StripeClient(
            settings.secret_key,
            base_addresses={"api": base, "files": base, "connect": base, "meter_events": base},
            stripe_version=API_VERSION,
            max_network_retries=2,
            http_client=HTTP_CLIENT,
        )
    return stripe.StripeClient(
        settings.secret_key, stripe_version=API_VERSION, max_network_retries=2,
        http_client=HTTP_CLIENT,
    )  # fmt: skip
