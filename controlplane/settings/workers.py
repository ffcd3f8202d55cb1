"""Celery settings: broker is `REDIS_URL` or the embedded Redis."""

from datetime import timedelta

from vectorplane import config

CELERY_BROKER_URL = config.env_str("CELERY_BROKER_URL", config.redis_url())
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "revoke-rotated-api-keys": {
        "task": "tenants.tasks.api_keys_revoke_expired_grace",
        "schedule": timedelta(seconds=config.env_int("VECTORPLANE_KEY_SWEEP_SECONDS", 60)),
    },
    "reconcile-clusters": {
        "task": "provisioning.tasks.clusters_reconcile",
        "schedule": timedelta(seconds=config.env_int("VECTORPLANE_RECONCILE_SECONDS", 15)),
    },
    # Idempotent per index-hour: sampling more often than hourly only refreshes the hour's row.
    "billing-spend-alerts": {
        "task": "billing.alerts.spend_alerts_check",
        "schedule": timedelta(hours=1),
    },
    # Fresh statistics for index tables after large writes (the gateway runs no maintenance).
    "analyze-index-tables": {
        "task": "provisioning.tasks.indexes_analyze",
        "schedule": timedelta(seconds=config.env_int("VECTORPLANE_ANALYZE_SECONDS", 15)),
    },
    "sample-stored-vectors": {
        "task": "provisioning.tasks.stored_vectors_sample",
        "schedule": timedelta(seconds=config.env_int("VECTORPLANE_STORED_SAMPLE_SECONDS", 900)),
    },
    # Usage of the closed hours to Stripe meter events (identifiers make a rerun harmless).
    "billing-meter-events": {
        "task": "billing.metering.meter_events_send",
        "schedule": timedelta(seconds=config.env_int("VECTORPLANE_METER_SEND_SECONDS", 3600)),
    },
    # Past the grace: writes refused; past the second period: suspended (billing/payment.py).
    "billing-payment-states": {
        "task": "billing.payment.payment_states_advance",
        "schedule": timedelta(seconds=config.env_int("VECTORPLANE_PAYMENT_STATE_SECONDS", 900)),
    },
    # Indexes with a target recall, evaluated again when their last evaluation is old.
    "reevaluate-indexes": {
        "task": "provisioning.reevaluation.indexes_reevaluate",
        "schedule": timedelta(seconds=config.env_int("VECTORPLANE_REEVALUATE_CHECK_SECONDS",
                                                     3600)),
    },
    "billing-meter-reconcile": {
        "task": "billing.metering.meter_reconcile",
        "schedule": timedelta(seconds=config.env_int("VECTORPLANE_METER_RECONCILE_SECONDS",
                                                     86400)),
    },
}
