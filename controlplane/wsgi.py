"""WSGI entry point, served by granian in `make run` (`controlplane.wsgi:application`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

application = get_wsgi_application()

# Imported now, not on a tenant's first Qdrant index (qdrant-client takes ~1 s to import).
import provisioning.storage.qdrant_tier  # noqa: E402, F401
