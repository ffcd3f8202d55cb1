"""Celery tasks of the tenants app. Each states its retry policy."""

from __future__ import annotations

import logging

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task(
    name="tenants.tasks.api_keys_revoke_expired_grace",
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=5,
)
def api_keys_revoke_expired_grace() -> int:
    """Revoke rotated keys whose grace period ended. Idempotent (guards on revoked_at), so it
    is safe to retry and to run from beat every minute."""
    count = services.api_keys_revoke_expired_grace()
    if count:
        logger.info("revoked %d rotated API keys after their grace period", count)
    return count
