"""Billing's Celery tasks, registered by importing the modules that define them."""

from . import alerts, metering  # noqa: F401 - spend_alerts_check; meter_events_send, meter_reconcile
