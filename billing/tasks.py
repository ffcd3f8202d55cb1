"""Billing's Celery tasks, registered by importing the modules that define them."""

from . import alerts, metering, payment  # noqa: F401 - their @shared_task functions
