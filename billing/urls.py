from django.urls import path

from .apis import account, checkout, usage, webhook

T = "tenants/<slug:tenant_slug>"

urlpatterns = [
    path("billing/stripe/webhook", webhook.StripeWebhookApi.as_view(), name="stripe-webhook"),
    path(f"{T}/billing", account.BillingAccountApi.as_view(), name="billing"),
    path(f"{T}/billing/checkout", checkout.BillingCheckoutApi.as_view(), name="billing-checkout"),
    path(f"{T}/billing/portal", checkout.BillingPortalApi.as_view(), name="billing-portal"),
    path(f"{T}/billing/usage", usage.BillingUsageApi.as_view(), name="billing-usage"),
    path(f"{T}/billing/invoices", checkout.BillingInvoicesApi.as_view(), name="billing-invoices"),
]
