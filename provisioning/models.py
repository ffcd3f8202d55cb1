"""Indexes (and, with the dedicated tier, clusters). A row is the desired state; an index's
storage is created by `services.indexes.index_create` once its row committed (`initializing`,
then `ready`, within the request)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.db import models
from django.db.models import Q

from tenants.models import Engine, Tenant, Tier
from tenants.scoping import TenantScopedManager
from vectorplane.contract import clusters, locations


class Metric(models.TextChoices):
    COSINE = "cosine", "Cosine"
    EUCLIDEAN = "euclidean", "Euclidean"
    DOTPRODUCT = "dotproduct", "Dot product"


class VectorType(models.TextChoices):
    # pgvector's HNSW indexes `vector` up to 2,000 dimensions and `halfvec` (16-bit floats)
    # up to 4,000: an index takes `vector` when it fits, `halfvec` above.
    VECTOR = "vector", "vector (32-bit floats, up to 2,000 dimensions)"
    HALFVEC = "halfvec", "halfvec (16-bit floats, 2,001-4,000 dimensions)"


class IndexStatus(models.TextChoices):
    INITIALIZING = "initializing", "Initializing"
    READY = "ready", "Ready"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"
    FAILED = "failed", "Failed"


class ClusterStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROVISIONING = "provisioning", "Provisioning"
    READY = "ready", "Ready"
    UPDATING = "updating", "Updating"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"
    FAILED = "failed", "Failed"


# The state machine: from -> the states a cluster may move to. Every move is a compare-and-set
# on the row (steps.transition), so two workers cannot both take the same step.
CLUSTER_TRANSITIONS: dict[str, frozenset[str]] = {
    ClusterStatus.PENDING: frozenset({"provisioning", "deleting", "failed"}),
    ClusterStatus.PROVISIONING: frozenset({"ready", "failed", "deleting", "provisioning"}),
    ClusterStatus.READY: frozenset({"updating", "deleting", "provisioning"}),
    ClusterStatus.UPDATING: frozenset({"ready", "failed", "deleting", "updating"}),
    ClusterStatus.FAILED: frozenset({"provisioning", "updating", "deleting"}),
    ClusterStatus.DELETING: frozenset({"deleted", "deleting"}),
    ClusterStatus.DELETED: frozenset(),
}


class ClusterDriver(models.TextChoices):
    LOCAL = "local", "Local processes (embedded)"
    KUBERNETES = "kubernetes", "Kubernetes (Pulumi)"


# The catalogue of sizes is the kernel's (vectorplane.contract.clusters); re-exported here for
# the apps that validate against it.
CLUSTER_SIZES = clusters.CLUSTER_SIZES


class Cluster(models.Model):
    """A tenant's dedicated cluster: the desired spec (engine, size, replicas, generation) and
    the observed status, moved by Celery tasks through `CLUSTER_TRANSITIONS`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="clusters", db_index=False
    )
    name = models.CharField(max_length=45)
    engine = models.CharField(max_length=16, choices=Engine.choices)
    driver = models.CharField(max_length=16, choices=ClusterDriver.choices)
    size = models.CharField(max_length=16)
    replicas = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(
        max_length=16, choices=ClusterStatus.choices, default=ClusterStatus.PENDING
    )
    status_message = models.CharField(max_length=1000, blank=True)
    # Bumped by every change of the desired spec; a task that finishes sets observed to the
    # generation it applied, so a resize that lands mid-provision is applied afterwards.
    generation = models.PositiveIntegerField(default=1)
    observed_generation = models.PositiveIntegerField(default=0)
    endpoint = models.JSONField(default=dict, blank=True)
    credentials_encrypted = models.TextField(
        help_text="Fernet token (vectorplane.crypto); never shown in the API or admin."
    )
    stack_name = models.CharField(max_length=100)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed attempts in a row.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedManager["Cluster"]()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=~Q(status="deleted"),
                name="provisioning_cluster_unique_live_name",
            )
        ]
        indexes: ClassVar = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="provisioning_cluster_list"),
            models.Index(fields=["status", "updated_at"], name="provisioning_cluster_status"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.engine}, {self.status})"


class Index(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="indexes", db_index=False
    )
    name = models.CharField(max_length=45)
    dimension = models.PositiveIntegerField()
    metric = models.CharField(max_length=16, choices=Metric.choices, default=Metric.COSINE)
    engine = models.CharField(max_length=16, choices=Engine.choices, default=Engine.PGVECTOR)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.SHARED)
    cluster = models.ForeignKey(
        Cluster,
        on_delete=models.PROTECT,
        related_name="indexes",
        null=True,
        blank=True,
        help_text="The dedicated cluster holding the index (empty: the shared tier).",
    )
    vector_type = models.CharField(max_length=16, choices=VectorType.choices)
    hnsw_m = models.PositiveSmallIntegerField(default=16)
    hnsw_ef_construction = models.PositiveSmallIntegerField(default=64)
    ef_search = models.PositiveSmallIntegerField(default=100)
    target_recall = models.FloatField(
        null=True,
        blank=True,
        help_text="When set (0.5-0.999), each succeeded evaluation sets `ef_search` to the "
        "smallest evaluated value whose measured recall meets it.",
    )
    text_field = models.BooleanField(
        default=False, help_text="Records carry a text field indexed for full-text (hybrid) search."
    )
    deletion_protection = models.BooleanField(default=False)
    tags = models.JSONField(default=dict, blank=True)
    cloud = models.CharField(
        max_length=8,
        choices=[(cloud, cloud) for cloud in locations.CLOUDS],
        default=locations.DEFAULT_CLOUD,
        help_text="Pinecone's `cloud` label, answered back as created (a label, not placement).",
    )
    region = models.CharField(
        max_length=locations.REGION_MAX_LENGTH,
        default=locations.DEFAULT_REGION,
        help_text="Pinecone's `region` label, answered back as created (a label, not placement).",
    )
    status = models.CharField(
        max_length=16, choices=IndexStatus.choices, default=IndexStatus.INITIALIZING
    )
    schema_name = models.CharField(max_length=63)
    table_name = models.CharField(max_length=63)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedManager["Index"]()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=~Q(status="deleted"),
                name="provisioning_index_unique_live_name",
            ),
            models.CheckConstraint(
                condition=Q(cloud__in=locations.CLOUDS), name="provisioning_index_cloud_valid"
            ),
            models.CheckConstraint(
                condition=Q(region__regex=locations.REGION_PATTERN),
                name="provisioning_index_region_valid",
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="provisioning_index_list")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.tenant_id})"


class UsageRecord(models.Model):
    """Hourly usage per index, written by the gateway (counted in memory, flushed in batches
    with `INSERT ... ON CONFLICT DO UPDATE SET x = x + EXCLUDED.x`)."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="usage_records", db_index=False
    )
    index_id = models.UUIDField(help_text="Kept after the index is deleted.")
    index_name = models.CharField(max_length=45)
    hour = models.DateTimeField()
    requests = models.BigIntegerField(default=0)
    read_units = models.BigIntegerField(default=0)
    write_units = models.BigIntegerField(default=0)
    queries = models.BigIntegerField(default=0)
    vectors_written = models.BigIntegerField(default=0)
    vectors_deleted = models.BigIntegerField(default=0)

    objects = TenantScopedManager["UsageRecord"]()

    class Meta:
        ordering = ("-hour", "-id")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["index_id", "hour"], name="provisioning_usagerecord_unique_hour"
            )
        ]
        indexes: ClassVar = [
            models.Index(fields=["tenant", "-hour"], name="provisioning_usage_tenant_hour")
        ]

    def __str__(self) -> str:
        return f"{self.index_name} @ {self.hour:%Y-%m-%d %H}:00"


class LatencyRecord(models.Model):
    """Per index and hour, how many answered requests took each latency bucket's time
    (`vectorplane.contract.latency`): written by the gateway with its usage (same flush, same
    `+ EXCLUDED` upsert), read back as p50/p95/p99."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="latency_records", db_index=False
    )
    index_id = models.UUIDField(help_text="Kept after the index is deleted.")
    index_name = models.CharField(max_length=45)
    hour = models.DateTimeField()
    bucket = models.SmallIntegerField(help_text="Index into contract.latency.BOUNDS_MS.")
    requests = models.BigIntegerField(default=0)

    objects = TenantScopedManager["LatencyRecord"]()

    class Meta:
        ordering = ("-hour", "bucket")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["index_id", "hour", "bucket"], name="provisioning_latency_unique"
            )
        ]
        indexes: ClassVar = [
            models.Index(fields=["tenant", "index_id", "-hour"], name="provisioning_latency_idx")
        ]

    def __str__(self) -> str:
        return f"{self.index_name} {self.hour:%Y-%m-%d %H}h bucket {self.bucket}: {self.requests}"


class ErrorRecord(models.Model):
    """Per tenant and hour, how many gateway requests were refused with each error `code`
    (the stable codes of docs/ERRORS.md) and status: counted by the gateway for requests whose
    key it authenticated (a request with no valid key has no tenant to count it for), flushed
    with its usage (same transaction, same `+ EXCLUDED` upsert). `index_name` is the index the
    request reached, or "" when it failed before one was resolved (an unknown index, a scope
    refused, the rate limit)."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="error_records", db_index=False
    )
    index_name = models.CharField(max_length=45, blank=True, default="")
    hour = models.DateTimeField()
    code = models.CharField(max_length=64)
    status = models.SmallIntegerField()
    requests = models.BigIntegerField(default=0)

    objects = TenantScopedManager["ErrorRecord"]()

    class Meta:
        ordering = ("-hour", "code")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["tenant", "hour", "index_name", "code", "status"],
                name="provisioning_error_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.status}) {self.hour:%Y-%m-%d %H}h: {self.requests}"


class StoredVectorsRecord(models.Model):
    """Vectors stored per index, sampled once an hour (`provisioning.tasks.
    stored_vectors_sample`; a second sample in the same hour replaces the first): the
    console's stored-vectors chart, and the storage that billing turns into GB-hours (one row is
    one index-hour; `dimension` with `vectors` gives its size)."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="stored_vectors_records", db_index=False
    )
    index_id = models.UUIDField(help_text="Kept after the index is deleted.")
    index_name = models.CharField(max_length=45)
    hour = models.DateTimeField()
    vectors = models.BigIntegerField()
    dimension = models.IntegerField()
    sampled_at = models.DateTimeField()

    objects = TenantScopedManager["StoredVectorsRecord"]()

    class Meta:
        ordering = ("-hour", "index_name")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["index_id", "hour"], name="provisioning_stored_vectors_unique"
            )
        ]
        indexes: ClassVar = [
            models.Index(fields=["tenant", "-hour"], name="provisioning_stored_hour")
        ]

    def __str__(self) -> str:
        return f"{self.index_name} @ {self.hour:%Y-%m-%d %H}:00: {self.vectors}"


class ClusterEvent(models.Model):
    """One move of a cluster's state machine, written in the same transaction as the status
    change (`steps.cluster_set_status`, the one place a status is set): from → to, with the
    spec the move is about (`generation`, `size`, `replicas`: for a `ready` event, the spec the
    cluster now runs) and the message (the error, for `failed`). Never updated or deleted: the
    history billing reads size-hours from (a cluster runs the size of its last event from
    `ready`/`updating` until the next event)."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="cluster_events", db_index=False
    )
    cluster = models.ForeignKey(
        Cluster, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    from_status = models.CharField(
        max_length=16, choices=ClusterStatus.choices, blank=True,
        help_text="Empty for the first event (the cluster's creation).",
    )  # fmt: skip
    to_status = models.CharField(max_length=16, choices=ClusterStatus.choices)
    generation = models.PositiveIntegerField()
    size = models.CharField(max_length=16)
    replicas = models.PositiveSmallIntegerField()
    message = models.CharField(max_length=1000, blank=True)
    at = models.DateTimeField()

    objects = TenantScopedManager["ClusterEvent"]()

    class Meta:
        ordering = ("-at", "-id")
        indexes: ClassVar = [
            models.Index(fields=["cluster", "-at", "-id"], name="provisioning_clusterevent_list"),
            models.Index(fields=["tenant", "at"], name="provisioning_clusterevent_time"),
        ]

    def __str__(self) -> str:
        return f"{self.cluster_id}: {self.from_status or '-'} → {self.to_status} @ {self.at}"


class UsageJournal(models.Model):
    """How far the usage of one gateway process's journal (gateway/metering.py) has been
    applied to the usage tables: the byte offset, upserted by the gateway in the same
    transaction as the counts it covers, so that a replay of the journal after a crash counts
    each line exactly once. One row per live (or not yet replayed) journal, across tenants (a
    journal holds every tenant's requests to that process): not tenant-scoped, and read by no
    tenant-facing view. The gateway deletes the row after the journal file itself."""

    journal_id = models.UUIDField(primary_key=True)
    applied_offset = models.BigIntegerField(default=0)
    host = models.CharField(max_length=255, blank=True, default="")
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ("-updated_at",)

    def __str__(self) -> str:
        return f"journal {self.journal_id} @ {self.applied_offset} ({self.host})"


class EvaluationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class IndexEvaluation(models.Model):
    """One measurement of an index's recall and latency (`POST .../evaluate`): the parameters
    asked for, the progress of the Celery task that measures (`evaluation.evaluation_run`), and
    per ef_search value the mean recall@k against an exact scan with p50/p95 latency. With a
    target recall on the index, the ef_search the evaluation chose (`chosen_ef_search`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="index_evaluations", db_index=False
    )
    index = models.ForeignKey(
        Index, on_delete=models.CASCADE, related_name="evaluations", db_index=False
    )
    status = models.CharField(
        max_length=16, choices=EvaluationStatus.choices, default=EvaluationStatus.PENDING
    )
    progress = models.FloatField(default=0.0, help_text="0 to 1: the share of queries measured.")
    params = models.JSONField(default=dict)
    results = models.JSONField(
        default=dict,
        blank=True,
        help_text="`queries`, `exact_p50_ms`, `exact_p95_ms`, and `by_ef_search`: per value "
        "its recall, p50_ms, p95_ms.",
    )
    target_recall = models.FloatField(
        null=True, blank=True, help_text="The index's target recall when the evaluation ended."
    )
    chosen_ef_search = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The ef_search set on the index from this evaluation."
    )
    error = models.CharField(max_length=1000, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(
        auto_now=True, help_text="Its last change (every progress write): stale when old."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedManager["IndexEvaluation"]()

    class Meta:
        ordering = ("-created_at", "-id")
        indexes: ClassVar = [
            models.Index(
                fields=["index", "-created_at", "-id"], name="provisioning_evaluation_list"
            ),
            models.Index(fields=["tenant"], name="provisioning_evaluation_tenant"),
        ]

    def __str__(self) -> str:
        return f"evaluation {self.id} of {self.index_id} ({self.status})"
