"""The Celery application. Workers and beat: `celery -A controlplane worker|beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

app = Celery("vectorplane")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
