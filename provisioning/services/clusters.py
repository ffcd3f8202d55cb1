"""Dedicated clusters: the lifecycle services (called by the API and the admin). Each checks
the caller and the plan, writes the row (the desired state) with its audit event, and queues
the Celery task that does the work once the row commits (`provisioning.tasks`, which runs the
steps of `provisioning.steps`).

Every status change goes through `steps.cluster_set_status` (the row and its `ClusterEvent` in
one transaction).

Imports: the tasks (to queue them), `steps` (the status helper), `validation`, the models;
tenants' public guards.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from typing import Any, Literal

from django.db import transaction
from django.utils import timezone
from kombu.exceptions import KombuError

from controlplane.errors import ApplicationError, ConflictError
from tenants.actors import Actor
from tenants.models import Engine, Role, Tenant, Tier
from tenants.plans import require_engine_allowed
from tenants.scoping import tenant_scope
from tenants.selectors import tenant_effective_limits
from tenants.services import audit_record, tenant_guard, tenant_lock
from vectorplane import config, crypto

from .. import steps, tasks
from ..models import CLUSTER_SIZES, Cluster, ClusterStatus, Index, IndexStatus
from ..validation import check_name

logger = logging.getLogger(__name__)

TaskName = Literal["cluster_apply", "cluster_destroy"]


def _generate_credentials(engine: str) -> dict[str, str]:
    if engine == Engine.PGVECTOR:
        return {
            "admin_user": config.EMBEDDED_DB_USER,
            "admin_password": secrets.token_urlsafe(24),
            "gateway_user": config.GATEWAY_DB_USER,
            "gateway_password": secrets.token_urlsafe(24),
        }
    return {"api_key": secrets.token_urlsafe(32)}


def _public(cluster: Cluster) -> dict[str, Any]:
    return {"engine": cluster.engine, "size": cluster.size, "replicas": cluster.replicas}


def _check_plan(tenant: Tenant, *, engine: str, size: str, replicas: int) -> dict[str, Any]:
    limits = tenant_effective_limits(tenant=tenant).limits
    plan = tenant.plan
    if Tier.DEDICATED not in limits["allowed_tiers"] or plan.max_clusters == 0:
        raise ApplicationError(
            "plan_limit",
            "Your plan does not include dedicated clusters.",
            status=403,
            details={"plan": plan.slug},
        )
    require_engine_allowed(limits=limits, engine=engine)
    if size not in CLUSTER_SIZES:
        raise ApplicationError(
            "validation_error",
            f"Unknown cluster size {size!r}.",
            details={"size": size, "sizes": list(CLUSTER_SIZES)},
        )
    if size not in plan.allowed_cluster_sizes:
        raise ApplicationError(
            "plan_limit",
            f"Your plan does not include the {size} size.",
            status=403,
            details={"size": size, "allowed_sizes": list(plan.allowed_cluster_sizes)},
        )
    if not 1 <= replicas <= plan.max_cluster_replicas:
        raise ApplicationError(
            "plan_limit",
            f"Your plan allows 1 to {plan.max_cluster_replicas} replicas.",
            status=403,
            details={"replicas": replicas, "max_replicas": plan.max_cluster_replicas},
        )
    if engine == Engine.PGVECTOR and replicas != 1:
        raise ApplicationError(
            "unsupported_combination",
            "pgvector clusters run one node in this version (replication is planned).",
            details={"engine": engine, "replicas": replicas},
        )
    return limits


def _enqueue(task_name: TaskName, cluster_id: uuid.UUID) -> None:
    """Queue the task once the row commits. The row is the truth: if the broker cannot take
    the message (down, unreachable), the change is still acknowledged — `clusters_reconcile`
    (beat) finds the cluster in its pending/updating/deleting state and runs the task — so the
    request answers as usual instead of a 500 for a change that was made."""
    task = getattr(tasks, task_name)

    def send() -> None:
        try:
            task.delay(str(cluster_id))
        except (KombuError, OSError) as exc:
            logger.warning(
                "cluster %s: could not queue %s (%s); the reconcile task will run it",
                cluster_id, task_name, exc,
            )  # fmt: skip

    transaction.on_commit(send)


def cluster_create(
    *,
    actor: Actor,
    tenant: Tenant,
    name: str,
    engine: str,
    size: str,
    replicas: int = 1,
) -> Cluster:
    tenant_guard(actor=actor, tenant=tenant, minimum_role=Role.ADMIN)
    check_name(name, "cluster")
    if engine not in Engine.values:
        raise ApplicationError("validation_error", "Unknown engine.", details={"engine": engine})
    with transaction.atomic(), tenant_scope(tenant.id):
        tenant = tenant_lock(tenant)
        _check_plan(tenant, engine=engine, size=size, replicas=replicas)
        live = Cluster.objects.exclude(status=ClusterStatus.DELETED)
        if live.filter(name=name).exists():
            raise ConflictError(
                "cluster_exists", f"A cluster named {name!r} exists.", details={"name": name}
            )
        if live.count() >= tenant.plan.max_clusters:
            raise ApplicationError(
                "quota_exceeded",
                f"Your plan allows {tenant.plan.max_clusters} dedicated clusters.",
                status=403,
                details={"limit": "max_clusters", "max": tenant.plan.max_clusters},
            )
        cluster = Cluster(
            tenant=tenant,
            name=name,
            engine=engine,
            driver=config.cluster_driver(),
            size=size,
            replicas=replicas,
            credentials_encrypted=crypto.encrypt_json(_generate_credentials(engine)),
        )
        cluster.stack_name = f"{tenant.slug}-{name}-{cluster.id.hex[:8]}"
        cluster.save()
        steps.record_event(cluster, from_status="", at=cluster.created_at)
        audit_record(
            actor=actor,
            action="cluster.created",
            tenant=tenant,
            target_type="cluster",
            target_id=cluster.id,
            target_label=cluster.name,
            details={**_public(cluster), "driver": cluster.driver},
        )
        _enqueue("cluster_apply", cluster.id)
    return cluster


def cluster_resize(
    *, actor: Actor, tenant: Tenant, cluster: Cluster, size: str | None, replicas: int | None
) -> Cluster:
    with transaction.atomic(), tenant_scope(tenant.id):
        tenant = tenant_guard(actor=actor, tenant=tenant, minimum_role=Role.ADMIN, lock=True)
        cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
        if cluster.status in (ClusterStatus.DELETING, ClusterStatus.DELETED):
            raise ConflictError(
                "cluster_deleting", "The cluster is being deleted.", details={"name": cluster.name}
            )
        new_size = size if size is not None else cluster.size
        new_replicas = replicas if replicas is not None else cluster.replicas
        _check_plan(tenant, engine=cluster.engine, size=new_size, replicas=new_replicas)
        if (new_size, new_replicas) == (cluster.size, cluster.replicas):
            return cluster
        before = _public(cluster)
        cluster.size, cluster.replicas = new_size, new_replicas
        cluster.generation += 1
        cluster.save(update_fields=["size", "replicas", "generation", "updated_at"])
        if cluster.status in (ClusterStatus.READY, ClusterStatus.FAILED):
            steps.cluster_set_status(cluster, ClusterStatus.UPDATING, message="")
        # pending/provisioning/updating: the running task sees generation > observed and goes on
        # (its `ready` event then names the spec it applied, and the next apply's the new one).
        audit_record(
            actor=actor,
            action="cluster.resized",
            tenant=tenant,
            target_type="cluster",
            target_id=cluster.id,
            target_label=cluster.name,
            details={"from": before, "to": _public(cluster)},
        )
        _enqueue("cluster_apply", cluster.id)
    return cluster


def cluster_delete(*, actor: Actor, tenant: Tenant, cluster: Cluster) -> Cluster:
    tenant_guard(actor=actor, tenant=tenant, minimum_role=Role.ADMIN, require_active=False)
    with transaction.atomic(), tenant_scope(tenant.id):
        cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
        if cluster.status in (ClusterStatus.DELETING, ClusterStatus.DELETED):
            return cluster
        protected = list(
            Index.objects.filter(cluster=cluster, deletion_protection=True)
            .exclude(status=IndexStatus.DELETED)
            .values_list("name", flat=True)
        )
        if protected:
            raise ApplicationError(
                "deletion_protected",
                "Indexes on this cluster have deletion protection; disable it first.",
                status=403,
                details={"indexes": protected},
            )
        Index.objects.filter(cluster=cluster).exclude(status=IndexStatus.DELETED).update(
            status=IndexStatus.DELETING, updated_at=timezone.now()
        )
        steps.cluster_set_status(cluster, ClusterStatus.DELETING, message="")
        audit_record(
            actor=actor,
            action="cluster.deleted",
            tenant=tenant,
            target_type="cluster",
            target_id=cluster.id,
            target_label=cluster.name,
        )
        _enqueue("cluster_destroy", cluster.id)
    return cluster


def cluster_retry(*, actor: Actor, cluster: Cluster) -> Cluster:
    """Operator action (the admin): run a failed cluster's last step again."""
    with transaction.atomic(), tenant_scope(cluster.tenant_id):
        cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
        if cluster.status != ClusterStatus.FAILED:
            return cluster
        cluster.attempts = 0
        cluster.save(update_fields=["attempts", "updated_at"])
        audit_record(
            actor=actor,
            action="cluster.retried",
            tenant=cluster.tenant,
            target_type="cluster",
            target_id=cluster.id,
            target_label=cluster.name,
        )
        _enqueue("cluster_apply", cluster.id)
    return cluster
