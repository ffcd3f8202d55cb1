from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing (Stripe)"
    default_auto_field = "django.db.models.BigAutoField"
