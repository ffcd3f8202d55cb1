"""The Pulumi program of one dedicated cluster (one stack per cluster).

`cluster_program(spec, gateway_selector=...)` returns the inline program the `kubernetes` driver
hands to the Automation API; the same `build_cluster` could back a `__main__.py` for the Pulumi
CLI. The program declares the tenant namespace (`TenantNamespace`) and the engine
(`PgvectorCluster` or `QdrantCluster`) and exports what the driver reads back:

| output          | meaning                                                         |
|-----------------|-----------------------------------------------------------------|
| `engine`        | `pgvector` or `qdrant`                                          |
| `host`, `port`  | the client Service, `<svc>.<namespace>.svc.cluster.local`       |
| `database`      | pgvector: the database the gateway connects to (else `""`)      |
| `url`           | qdrant: the REST URL (else `""`)                                |
| `namespace`     | the tenant namespace                                            |
| `workload_kind` | `StatefulSet`, or `Cluster` (CloudNativePG)                     |
| `workload_name` | the object whose readiness the driver waits for                 |
| `replicas`      | how many ready replicas (instances) mean ready                  |

No credential is ever exported: they live only in the Secrets, as Pulumi secrets.

`spec.options` understood here (others are ignored, they may be another driver's):
`pg_operator` (`"statefulset"` default, or `"cloudnativepg"`), `anti_affinity` (`"preferred"`
default, or `"required"`), `database` (pgvector, default `vectorplane_data`, as the local
driver and the shared tier), `storage_class`, and `tenant_quota` (the tenant-wide
ResourceQuota `hard` map; see `default_quota` for what is used without it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components import (
    AntiAffinityMode,
    EngineArgs,
    GatewaySelector,
    PgvectorArgs,
    PgvectorCluster,
    QdrantCluster,
    TenantNamespace,
    TenantNamespaceArgs,
)
from infra.quantities import (
    QuantityError,
    byte_count,
    cpu_millis,
    format_bytes,
    format_cpu,
    parse_quantity,
)
from vectorplane.contract.clusters import ClusterSpec, Size

PROJECT_NAME = "vectorplane-clusters"

# Pinned, overridable per key through `images=`. pgvector/pgvector is the official image with
# the extension built in; the CloudNativePG operand must be one of its own images (the
# `standard` flavour carries pgvector).
DEFAULT_IMAGES: Mapping[str, str] = {
    "pgvector": "pgvector/pgvector:0.8.1-pg17",
    "qdrant": "qdrant/qdrant:v1.19.0",
    "cnpg": "ghcr.io/cloudnative-pg/postgresql:17-standard-trixie",
}
OUTPUT_KEYS = (
    "engine",
    "host",
    "port",
    "database",
    "url",
    "namespace",
    "workload_kind",
    "workload_name",
    "replicas",
)
MAX_REPLICAS = 15
DEFAULT_DATABASE = "vectorplane_data"

_HEX_ID = re.compile(r"^[0-9a-f]{12,32}$")
_STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_QUOTA_KEYS = {
    "requests.cpu",
    "limits.cpu",
    "requests.memory",
    "limits.memory",
    "requests.storage",
    "persistentvolumeclaims",
    "pods",
    "services",
    "secrets",
    "configmaps",
}
_CREDENTIALS = {
    "pgvector": ("admin_user", "admin_password", "gateway_user", "gateway_password"),
    "qdrant": ("api_key",),
}


class SpecError(ValueError):
    """The spec cannot be turned into Kubernetes objects (a permanent error for the driver)."""


def validate_spec(spec: ClusterSpec) -> None:
    """Refuse what Kubernetes (or the engine) would refuse, before anything is created."""
    if spec.engine not in _CREDENTIALS:
        raise SpecError(f"unknown engine {spec.engine!r}")
    for label, value in (("cluster_id", spec.cluster_id), ("tenant_id", spec.tenant_id)):
        if not _HEX_ID.match(value):
            raise SpecError(f"{label} must be lowercase hex (a UUID's), got {value!r}")
    check_stack_name(spec.stack_name)
    _validate_size(spec.size)
    for key in _CREDENTIALS[spec.engine]:
        if not spec.credentials.get(key):
            raise SpecError(f"credentials lack {key}")
    if spec.engine == "pgvector":
        for key in ("admin_user", "gateway_user"):
            if not _ROLE.match(spec.credentials[key]):
                raise SpecError(f"{key} must be a plain lowercase PostgreSQL role name")
        if spec.credentials["admin_user"] == spec.credentials["gateway_user"]:
            raise SpecError("admin_user and gateway_user must differ")
        if not _ROLE.match(str(spec.options.get("database", DEFAULT_DATABASE))):
            raise SpecError("options.database must be a plain lowercase identifier")
        if spec.options.get("pg_operator", "statefulset") not in {"statefulset", "cloudnativepg"}:
            raise SpecError("options.pg_operator must be 'statefulset' or 'cloudnativepg'")
    elif "pg_operator" in spec.options:
        raise SpecError("options.pg_operator applies to pgvector clusters only")
    if spec.options.get("anti_affinity", "preferred") not in {"preferred", "required"}:
        raise SpecError("options.anti_affinity must be 'preferred' or 'required'")
    storage_class = spec.options.get("storage_class")
    if storage_class is not None and not _DNS_SUBDOMAIN.match(str(storage_class)):
        raise SpecError(f"options.storage_class {storage_class!r} is not a valid name")
    quota = spec.options.get("tenant_quota")
    if quota is not None:
        _validate_quota(quota)


def check_stack_name(name: str) -> None:
    """A Pulumi stack name, also used as a folder name by the driver (no `/`, no `..`)."""
    if not _STACK_NAME.match(name) or ".." in name:
        raise SpecError(f"stack name {name!r} is not a valid Pulumi stack name")


def _validate_size(size: Size) -> None:
    try:
        cpu_millis(size.cpu)
        byte_count(size.memory)
        byte_count(size.storage)
    except QuantityError as exc:
        raise SpecError(f"size {size.name!r}: {exc}") from exc
    if not isinstance(size.replicas, int) or not 1 <= size.replicas <= MAX_REPLICAS:
        raise SpecError(f"replicas must be between 1 and {MAX_REPLICAS}, got {size.replicas!r}")


def _validate_quota(quota: object) -> None:
    if not isinstance(quota, Mapping):
        raise SpecError("options.tenant_quota must be a mapping of ResourceQuota keys")
    for key, value in quota.items():
        if key not in _QUOTA_KEYS:
            raise SpecError(f"options.tenant_quota: unsupported key {key!r}")
        try:
            parse_quantity(str(value))
        except QuantityError as exc:
            raise SpecError(f"options.tenant_quota[{key!r}]: {exc}") from exc


def default_quota(size: Size) -> dict[str, str]:
    """The tenant-wide quota when the control plane passes none: this cluster's footprint with
    room for one extra pod (a CloudNativePG join job, a pod being replaced), its volumes, and
    nothing else. A tenant with several dedicated clusters needs `options["tenant_quota"]` (the
    same in each of its stacks), since the namespace and its quota are shared."""
    pods = size.replicas + 1
    return {
        "requests.cpu": format_cpu(cpu_millis(size.cpu) * pods),
        "limits.cpu": format_cpu(cpu_millis(size.cpu) * pods),
        "requests.memory": format_bytes(byte_count(size.memory) * pods),
        "limits.memory": format_bytes(byte_count(size.memory) * pods),
        "requests.storage": format_bytes(byte_count(size.storage) * size.replicas),
        "persistentvolumeclaims": str(size.replicas),
        "pods": str(pods),
    }


def build_cluster(
    spec: ClusterSpec,
    *,
    gateway_selector: Mapping[str, Mapping[str, str]],
    images: Mapping[str, str] | None = None,
    api_server_cidrs: Sequence[str] = (),
    cnpg_operator_namespace: str = "cnpg-system",
) -> dict[str, Any]:
    """Declare the cluster's resources; return the stack outputs (see the module docstring)."""
    validate_spec(spec)
    gateway = GatewaySelector.from_dict(gateway_selector)
    chosen = _images(images)
    options = spec.options
    # One provider for the whole stack: `kubernetes:context` from the stack config (the
    # driver sets it), KUBECONFIG from the environment. Upsert adopts an object that already
    # exists (the tenant's shared namespace objects, or a resource whose creation a killed
    # worker never recorded), and patch-force makes this stack's values win field conflicts.
    provider = k8s.Provider(
        "kubernetes",
        context=pulumi.Config("kubernetes").get("context"),
        upsert_existing_objects=True,
        enable_patch_force=True,
    )
    providers = pulumi.ResourceOptions(providers=[provider])

    tenant = TenantNamespace(
        spec.namespace,
        TenantNamespaceArgs(
            namespace=spec.namespace,
            tenant_id=spec.tenant_id,
            tenant_slug=spec.tenant_slug,
            quota=dict(options.get("tenant_quota") or default_quota(spec.size)),
            gateway=gateway,
        ),
        opts=providers,
    )
    anti: AntiAffinityMode = "preferred"
    if options.get("anti_affinity") == "required":
        anti = "required"
    common: dict[str, Any] = {
        "resource_name": spec.resource_name,
        "namespace": tenant.namespace_name,
        "dns_namespace": spec.namespace,
        "tenant_id": spec.tenant_id,
        "cluster_id": spec.cluster_id,
        "size": spec.size,
        "credentials": dict(spec.credentials),
        "anti_affinity": anti,
        "storage_class": options.get("storage_class"),
    }
    outputs: dict[str, Any] = {
        "engine": spec.engine,
        "namespace": tenant.namespace_name,
        "replicas": spec.size.replicas,
    }
    if spec.engine == "pgvector":
        operator = options.get("pg_operator", "statefulset")
        pg = PgvectorCluster(
            spec.resource_name,
            PgvectorArgs(
                **common,
                image=chosen["cnpg" if operator == "cloudnativepg" else "pgvector"],
                database=str(options.get("database", DEFAULT_DATABASE)),
                operator=operator,
                cnpg_operator_namespace=cnpg_operator_namespace,
                api_server_cidrs=tuple(api_server_cidrs),
            ),
            opts=providers,
        )
        outputs.update(
            host=pg.service_host,
            port=pg.port,
            database=pg.database,
            url="",
            workload_kind=pg.workload_kind,
            workload_name=pg.workload_name,
        )
    else:
        qdrant = QdrantCluster(
            spec.resource_name, EngineArgs(**common, image=chosen["qdrant"]), opts=providers
        )
        outputs.update(
            host=qdrant.service_host,
            port=qdrant.port,
            database="",
            url=qdrant.url,
            workload_kind=qdrant.workload_kind,
            workload_name=qdrant.workload_name,
        )
    return outputs


def _images(images: Mapping[str, str] | None) -> dict[str, str]:
    chosen = dict(DEFAULT_IMAGES)
    for key, image in (images or {}).items():
        if key not in DEFAULT_IMAGES:
            raise SpecError(f"unknown image key {key!r} (expected one of {sorted(DEFAULT_IMAGES)})")
        if not image or any(char.isspace() for char in image):
            raise SpecError(f"image for {key!r} must be a non-empty reference")
        chosen[key] = image
    return chosen


def cluster_program(
    spec: ClusterSpec,
    *,
    gateway_selector: Mapping[str, Mapping[str, str]],
    images: Mapping[str, str] | None = None,
    api_server_cidrs: Sequence[str] = (),
    cnpg_operator_namespace: str = "cnpg-system",
) -> Callable[[], None]:
    """The inline Pulumi program for `spec`. The spec and selector are checked now, so a bad
    spec fails before a stack is touched rather than inside `pulumi up`."""
    validate_spec(spec)
    try:
        GatewaySelector.from_dict(gateway_selector)
    except ValueError as exc:
        raise SpecError(f"gateway selector: {exc}") from exc
    _images(images)
    if (
        spec.engine == "pgvector"
        and spec.options.get("pg_operator") == "cloudnativepg"
        and not api_server_cidrs
    ):
        raise SpecError("pg_operator=cloudnativepg needs the Kubernetes API server CIDRs")

    def program() -> None:
        outputs = build_cluster(
            spec,
            gateway_selector=gateway_selector,
            images=images,
            api_server_cidrs=api_server_cidrs,
            cnpg_operator_namespace=cnpg_operator_namespace,
        )
        for key in OUTPUT_KEYS:
            pulumi.export(key, outputs[key])

    return program
