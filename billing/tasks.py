"""Billing's Celery tasks, imported here so that workers register them."""

from billing import metering  # noqa: F401
