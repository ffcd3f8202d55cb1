from django.urls import path

from .apis import account

T = "tenants/<slug:tenant_slug>"

urlpatterns = [
    path(f"{T}/billing", account.BillingAccountApi.as_view(), name="billing"),
]
