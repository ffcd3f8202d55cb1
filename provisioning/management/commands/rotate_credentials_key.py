"""`manage.py rotate_credentials_key`: re-encrypt every cluster's credentials under the primary
key (`VECTORPLANE_CREDENTIALS_KEY`), after which `VECTORPLANE_CREDENTIALS_OLD_KEYS` can go."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from provisioning.models import Cluster
from vectorplane import crypto


class Command(BaseCommand):
    help = "Re-encrypt dedicated clusters' credentials under the current primary key."

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        with transaction.atomic():
            for cluster in Cluster.objects.unscoped().select_for_update().only(
                "id", "credentials_encrypted"
            ):
                rotated = crypto.reencrypt(cluster.credentials_encrypted)
                Cluster.objects.unscoped().filter(pk=cluster.pk).update(
                    credentials_encrypted=rotated
                )
                count += 1
        self.stdout.write(f"re-encrypted the credentials of {count} clusters")
