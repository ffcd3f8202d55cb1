"""`manage.py billing_catalogue`: make Stripe's meters, products and prices from the plan table
(`billing.catalogue`); run it again after a plan's price or a rate changes. Idempotent."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from billing.catalogue import catalogue_sync


class Command(BaseCommand):
    help = "Create or update the Stripe catalogue (meters, products, prices) from the plans."

    def handle(self, *args: Any, **options: Any) -> None:
        report = catalogue_sync()
        for label, keys in (
            ("created", report.created),
            ("replaced", report.replaced),
            ("updated", report.updated),
            ("unchanged", report.unchanged),
        ):
            self.stdout.write(f"{label} ({len(keys)}): {', '.join(keys) or '-'}")
