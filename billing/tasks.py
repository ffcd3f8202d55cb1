"""Billing's Celery tasks, registered by importing the modules that define them."""

from . import alerts  # noqa: F401 - spend_alerts_check
