"""Component resources for a tenant's dedicated cluster on Kubernetes.

Three components, each a `pulumi.ComponentResource` whose children have `parent=self`:

- `TenantNamespace`: the tenant's namespace and what every workload in it lives under — a
  ResourceQuota (CPU and memory requests and limits, storage, pods, no LoadBalancer or NodePort
  services), a LimitRange (default requests and limits for containers that state none), and
  NetworkPolicies: default-deny for ingress and egress of every pod, ingress on the engine ports
  only from the platform's gateway pods (a namespace selector AND a pod selector), egress to the
  cluster DNS only.
- `PgvectorCluster`: credentials in Secrets, and either a PostgreSQL + pgvector StatefulSet
  (headless + client Service, PodDisruptionBudget) or, with `pg_operator="cloudnativepg"`, a
  CloudNativePG `Cluster` custom resource that gets the same Secrets, storage and resources.
- `QdrantCluster`: the API key in a Secret and a Qdrant StatefulSet, distributed (Raft
  consensus over the headless Service, bootstrapped from pod 0) when it has several replicas.

Engine pods run as non-root with a read-only root filesystem, no service-account token and
every capability dropped; every container (init containers included) has requests and limits.
Readiness is not awaited by Pulumi (`pulumi.com/skipAwait`): the driver waits for it with the
Kubernetes API, under one configurable timeout, and reports it as a driver state.

A tenant namespace is shared by all the tenant's dedicated clusters, and each cluster is its own
Pulumi stack. The tenant-wide objects are therefore declared identically by every cluster stack
of the tenant, created-or-adopted (`upsert_existing_objects` on the provider the program passes
in) and never deleted with a cluster (`retain_on_delete`): destroying one cluster leaves the
namespace its siblings still run in. Only the cluster's own objects are deleted with its stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
from pulumi_kubernetes import apiextensions, apps, core, meta, networking, policy

from vectorplane.contract.clusters import Size

MANAGED_BY = "vectorplane"
LABEL_TENANT = "vectorplane.io/tenant"
LABEL_CLUSTER = "vectorplane.io/cluster"
LABEL_ENGINE = "vectorplane.io/engine"
ANNOTATION_TENANT_SLUG = "vectorplane.io/tenant-slug"
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}

PG_PORT = 5432
QDRANT_HTTP_PORT = 6333
QDRANT_GRPC_PORT = 6334
QDRANT_P2P_PORT = 6335
CNPG_STATUS_PORT = 8000
# Every engine port a gateway may reach, tenant-wide: the namespace is shared by the tenant's
# pgvector and Qdrant clusters, and the policy must read the same in every cluster's stack.
ENGINE_PORTS = (PG_PORT, QDRANT_HTTP_PORT, QDRANT_GRPC_PORT)

HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"
AntiAffinityMode = Literal["preferred", "required"]


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class GatewaySelector:
    """Which pods may open connections to tenant engines: pods matching `pod_labels` in a
    namespace matching `namespace_labels`. Both must be non-empty (an empty selector would
    match every namespace or every pod)."""

    namespace_labels: Mapping[str, str]
    pod_labels: Mapping[str, str]

    def __post_init__(self) -> None:
        if not self.namespace_labels or not self.pod_labels:
            raise ValueError("the gateway selector needs namespace labels and pod labels")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Mapping[str, str]]) -> GatewaySelector:
        """`{"namespace_labels": {...}, "pod_labels": {...}}`."""
        unknown = set(raw) - {"namespace_labels", "pod_labels"}
        if unknown:
            raise ValueError(f"unknown gateway selector keys: {sorted(unknown)}")
        return cls(
            namespace_labels=dict(raw.get("namespace_labels") or {}),
            pod_labels=dict(raw.get("pod_labels") or {}),
        )


@dataclass(frozen=True)
class LimitDefaults:
    """The LimitRange defaults for containers that set no resources of their own. Tenant-wide,
    so the same in every cluster stack of a tenant."""

    default_cpu: str = "500m"
    default_memory: str = "512Mi"
    default_request_cpu: str = "100m"
    default_request_memory: str = "128Mi"


@dataclass(frozen=True)
class TenantNamespaceArgs:
    namespace: str
    tenant_id: str
    tenant_slug: str
    quota: Mapping[str, str]
    gateway: GatewaySelector
    limits: LimitDefaults = field(default_factory=LimitDefaults)


@dataclass(frozen=True)
class EngineArgs:
    """What both engine components need: names, size, credentials, images and placement."""

    resource_name: str
    namespace: pulumi.Input[str]
    dns_namespace: str  # the same namespace as a plain string, for DNS names in commands
    tenant_id: str
    cluster_id: str
    size: Size
    credentials: Mapping[str, str]
    image: str
    anti_affinity: AntiAffinityMode = "preferred"
    storage_class: str | None = None


@dataclass(frozen=True)
class PgvectorArgs(EngineArgs):
    database: str = "vectorplane_data"
    operator: Literal["statefulset", "cloudnativepg"] = "statefulset"
    # CloudNativePG only: where its operator runs, and the API server addresses its instance
    # managers must reach through the namespace's default-deny egress.
    cnpg_operator_namespace: str = "cnpg-system"
    api_server_cidrs: Sequence[str] = ()


# --------------------------------------------------------------------------- helpers


def tenant_labels(tenant_id: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": MANAGED_BY, LABEL_TENANT: tenant_id}


def selector_labels(args: EngineArgs) -> dict[str, str]:
    """The labels a cluster's pods are selected by (immutable once the StatefulSet exists)."""
    return {"app.kubernetes.io/instance": args.resource_name, LABEL_CLUSTER: args.cluster_id}


def cluster_labels(args: EngineArgs, engine: str) -> dict[str, str]:
    return {
        **tenant_labels(args.tenant_id),
        **selector_labels(args),
        "app.kubernetes.io/name": engine,
        LABEL_ENGINE: engine,
    }


def resources(size: Size) -> core.v1.ResourceRequirementsArgs:
    """Requests equal to limits (Guaranteed QoS): a tenant's node gets what its size says."""
    return core.v1.ResourceRequirementsArgs(
        requests={"cpu": size.cpu, "memory": size.memory},
        limits={"cpu": size.cpu, "memory": size.memory},
    )


def container_security() -> core.v1.SecurityContextArgs:
    return core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=core.v1.CapabilitiesArgs(drop=["ALL"]),
    )


def pod_security(uid: int, gid: int, fs_group: int) -> core.v1.PodSecurityContextArgs:
    return core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=gid,
        fs_group=fs_group,
        fs_group_change_policy="OnRootMismatch",
        seccomp_profile=core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def anti_affinity(
    labels: Mapping[str, str], replicas: int, mode: AntiAffinityMode
) -> core.v1.AffinityArgs | None:
    """Spread replicas over nodes: required or preferred by hostname; none for one replica."""
    if replicas <= 1:
        return None
    term = core.v1.PodAffinityTermArgs(
        label_selector=meta.v1.LabelSelectorArgs(match_labels=dict(labels)),
        topology_key=HOSTNAME_TOPOLOGY,
    )
    if mode == "required":
        return core.v1.AffinityArgs(
            pod_anti_affinity=core.v1.PodAntiAffinityArgs(
                required_during_scheduling_ignored_during_execution=[term]
            )
        )
    return core.v1.AffinityArgs(
        pod_anti_affinity=core.v1.PodAntiAffinityArgs(
            preferred_during_scheduling_ignored_during_execution=[
                core.v1.WeightedPodAffinityTermArgs(weight=100, pod_affinity_term=term)
            ]
        )
    )


def secret_env(name: str, secret: pulumi.Input[str | None], key: str) -> core.v1.EnvVarArgs:
    """An environment variable read from a Secret by the kubelet: the value never appears in
    the pod spec, only the Secret's name and key."""
    return core.v1.EnvVarArgs(
        name=name,
        value_from=core.v1.EnvVarSourceArgs(
            secret_key_ref=core.v1.SecretKeySelectorArgs(name=secret, key=key)
        ),
    )


def plain_env(name: str, value: str) -> core.v1.EnvVarArgs:
    return core.v1.EnvVarArgs(name=name, value=value)


def empty_dir(name: str) -> core.v1.VolumeArgs:
    return core.v1.VolumeArgs(name=name, empty_dir=core.v1.EmptyDirVolumeSourceArgs())


def data_claim(name: str, args: EngineArgs) -> core.v1.PersistentVolumeClaimArgs:
    return core.v1.PersistentVolumeClaimArgs(
        metadata=meta.v1.ObjectMetaArgs(name=name),
        spec=core.v1.PersistentVolumeClaimSpecArgs(
            access_modes=["ReadWriteOnce"],
            storage_class_name=args.storage_class,
            resources=core.v1.VolumeResourceRequirementsArgs(
                requests={"storage": args.size.storage}
            ),
        ),
    )


def basic_auth_secret(
    name: str,
    *,
    namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    username: str,
    password: str,
    opts: pulumi.ResourceOptions,
) -> core.v1.Secret:
    """A `kubernetes.io/basic-auth` Secret (the shape CloudNativePG requires), its data passed
    as a Pulumi secret so it is encrypted in the stack state and masked in the CLI output."""
    return core.v1.Secret(
        name,
        metadata=meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(labels)),
        type="kubernetes.io/basic-auth",
        string_data=pulumi.Output.secret({"username": username, "password": password}),
        opts=opts,
    )


def headless_service(
    name: str,
    *,
    namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    ports: Sequence[tuple[str, int]],
    publish_not_ready: bool,
    opts: pulumi.ResourceOptions,
) -> core.v1.Service:
    """The StatefulSet's governing Service: per-pod DNS names, no virtual IP."""
    return core.v1.Service(
        name,
        metadata=meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(labels)),
        spec=core.v1.ServiceSpecArgs(
            type="ClusterIP",
            cluster_ip="None",
            publish_not_ready_addresses=publish_not_ready,
            selector=dict(selector),
            ports=[
                core.v1.ServicePortArgs(name=port_name, port=port, target_port=port)
                for port_name, port in ports
            ],
        ),
        opts=opts,
    )


def client_service(
    name: str,
    *,
    namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    ports: Sequence[tuple[str, int]],
    opts: pulumi.ResourceOptions,
) -> core.v1.Service:
    """What the gateway connects to: ClusterIP only, never LoadBalancer or NodePort. Pulumi
    does not wait for endpoints here (the driver waits for the pods)."""
    return core.v1.Service(
        name,
        metadata=meta.v1.ObjectMetaArgs(
            name=name, namespace=namespace, labels=dict(labels), annotations=dict(SKIP_AWAIT)
        ),
        spec=core.v1.ServiceSpecArgs(
            type="ClusterIP",
            selector=dict(selector),
            ports=[
                core.v1.ServicePortArgs(name=port_name, port=port, target_port=port)
                for port_name, port in ports
            ],
        ),
        opts=opts,
    )


def service_dns(service: core.v1.Service, namespace: pulumi.Input[str]) -> pulumi.Output[str]:
    """`<service>.<namespace>.svc.cluster.local`, from the Service's registered name."""
    return pulumi.Output.concat(service.metadata.name, ".", namespace, ".svc.cluster.local")


def engine_statefulset(
    name: str,
    args: EngineArgs,
    *,
    labels: dict[str, str],
    selector: dict[str, str],
    replicas: int,
    service_name: pulumi.Input[str],
    security: core.v1.PodSecurityContextArgs,
    containers: list[core.v1.ContainerArgs],
    volumes: list[core.v1.VolumeArgs],
    claim: str,
    opts: pulumi.ResourceOptions,
    init_containers: list[core.v1.ContainerArgs] | None = None,
) -> apps.v1.StatefulSet:
    """The StatefulSet both engines run as: ordered start behind a headless Service, rolling
    updates, claims deleted with the set but kept on scale-down, no service-account token, the
    given pod security, anti-affinity when replicated, one data claim of the cluster's size."""
    return apps.v1.StatefulSet(
        name,
        metadata=meta.v1.ObjectMetaArgs(
            name=name, namespace=args.namespace, labels=labels, annotations=dict(SKIP_AWAIT)
        ),
        spec=apps.v1.StatefulSetSpecArgs(
            replicas=replicas,
            service_name=service_name,
            pod_management_policy="OrderedReady",
            update_strategy=apps.v1.StatefulSetUpdateStrategyArgs(type="RollingUpdate"),
            persistent_volume_claim_retention_policy=(
                apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs(
                    when_deleted="Delete", when_scaled="Retain"
                )
            ),
            selector=meta.v1.LabelSelectorArgs(match_labels=selector),
            template=core.v1.PodTemplateSpecArgs(
                metadata=meta.v1.ObjectMetaArgs(labels=labels),
                spec=core.v1.PodSpecArgs(
                    automount_service_account_token=False,
                    enable_service_links=False,
                    termination_grace_period_seconds=60,
                    security_context=security,
                    affinity=anti_affinity(selector, replicas, args.anti_affinity),
                    init_containers=init_containers,
                    containers=containers,
                    volumes=volumes,
                ),
            ),
            volume_claim_templates=[data_claim(claim, args)],
        ),
        opts=opts,
    )


def disruption_budget(
    name: str,
    *,
    namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> policy.v1.PodDisruptionBudget:
    """At most one pod evicted at a time (a Raft majority of three survives a drain). With one
    replica this still lets a node drain proceed rather than block it forever."""
    return policy.v1.PodDisruptionBudget(
        name,
        metadata=meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(labels)),
        spec=policy.v1.PodDisruptionBudgetSpecArgs(
            max_unavailable=1,
            selector=meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
            unhealthy_pod_eviction_policy="AlwaysAllow",
        ),
        opts=opts,
    )


def peer_policy(
    name: str,
    *,
    namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    peers: Mapping[str, str],
    ports: Sequence[int],
    opts: pulumi.ResourceOptions,
) -> networking.v1.NetworkPolicy:
    """Traffic among one cluster's own pods (replication, Raft), and nothing else: the peer is
    a pod selector without a namespace selector, so it means this namespace only."""
    own = networking.v1.NetworkPolicyPeerArgs(
        pod_selector=meta.v1.LabelSelectorArgs(match_labels=dict(peers))
    )
    tcp = [networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port) for port in ports]
    return networking.v1.NetworkPolicy(
        name,
        metadata=meta.v1.ObjectMetaArgs(name=name, namespace=namespace, labels=dict(labels)),
        spec=networking.v1.NetworkPolicySpecArgs(
            pod_selector=meta.v1.LabelSelectorArgs(match_labels=dict(peers)),
            policy_types=["Ingress", "Egress"],
            ingress=[networking.v1.NetworkPolicyIngressRuleArgs(from_=[own], ports=tcp)],
            egress=[networking.v1.NetworkPolicyEgressRuleArgs(to=[own], ports=tcp)],
        ),
        opts=opts,
    )


# --------------------------------------------------------------------------- TenantNamespace


class TenantNamespace(pulumi.ComponentResource):
    """The tenant's namespace with its quota, default limits and network policies."""

    namespace_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: TenantNamespaceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("vectorplane:infra:TenantNamespace", name, None, opts)
        # Shared with the tenant's other cluster stacks: adopted if present, never deleted.
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        labels = tenant_labels(args.tenant_id)
        ns_name = args.namespace

        namespace = core.v1.Namespace(
            f"{ns_name}-namespace",
            metadata=meta.v1.ObjectMetaArgs(
                name=ns_name,
                labels={
                    **labels,
                    # Pod Security Admission: engine pods satisfy the restricted profile.
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
                annotations={ANNOTATION_TENANT_SLUG: args.tenant_slug},
            ),
            opts=child,
        )
        self.namespace_name = namespace.metadata.name.apply(lambda n: n or ns_name)
        in_ns = self.namespace_name

        hard = dict(args.quota)
        # Not overridable: tenant workloads never get a public or node-level entry point.
        hard["services.loadbalancers"] = "0"
        hard["services.nodeports"] = "0"
        self.quota = core.v1.ResourceQuota(
            f"{ns_name}-quota",
            metadata=meta.v1.ObjectMetaArgs(name="tenant-quota", namespace=in_ns, labels=labels),
            spec=core.v1.ResourceQuotaSpecArgs(hard=hard),
            opts=child,
        )
        self.limit_range = core.v1.LimitRange(
            f"{ns_name}-limits",
            metadata=meta.v1.ObjectMetaArgs(name="tenant-limits", namespace=in_ns, labels=labels),
            spec=core.v1.LimitRangeSpecArgs(
                limits=[
                    core.v1.LimitRangeItemArgs(
                        type="Container",
                        default={
                            "cpu": args.limits.default_cpu,
                            "memory": args.limits.default_memory,
                        },
                        default_request={
                            "cpu": args.limits.default_request_cpu,
                            "memory": args.limits.default_request_memory,
                        },
                    )
                ]
            ),
            opts=child,
        )
        every_pod = meta.v1.LabelSelectorArgs()
        self.default_deny = networking.v1.NetworkPolicy(
            f"{ns_name}-default-deny",
            metadata=meta.v1.ObjectMetaArgs(name="default-deny", namespace=in_ns, labels=labels),
            spec=networking.v1.NetworkPolicySpecArgs(
                pod_selector=every_pod, policy_types=["Ingress", "Egress"]
            ),
            opts=child,
        )
        gateway = networking.v1.NetworkPolicyPeerArgs(
            namespace_selector=meta.v1.LabelSelectorArgs(
                match_labels=dict(args.gateway.namespace_labels)
            ),
            pod_selector=meta.v1.LabelSelectorArgs(match_labels=dict(args.gateway.pod_labels)),
        )
        self.allow_gateway = networking.v1.NetworkPolicy(
            f"{ns_name}-allow-gateway",
            metadata=meta.v1.ObjectMetaArgs(name="allow-gateway", namespace=in_ns, labels=labels),
            spec=networking.v1.NetworkPolicySpecArgs(
                pod_selector=every_pod,
                policy_types=["Ingress"],
                ingress=[
                    networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[gateway],
                        ports=[
                            networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port)
                            for port in ENGINE_PORTS
                        ],
                    )
                ],
            ),
            opts=child,
        )
        cluster_dns = networking.v1.NetworkPolicyPeerArgs(
            namespace_selector=meta.v1.LabelSelectorArgs(
                match_labels={"kubernetes.io/metadata.name": "kube-system"}
            ),
            pod_selector=meta.v1.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
        )
        self.allow_dns = networking.v1.NetworkPolicy(
            f"{ns_name}-allow-dns",
            metadata=meta.v1.ObjectMetaArgs(name="allow-dns", namespace=in_ns, labels=labels),
            spec=networking.v1.NetworkPolicySpecArgs(
                pod_selector=every_pod,
                policy_types=["Egress"],
                egress=[
                    networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[cluster_dns],
                        ports=[
                            networking.v1.NetworkPolicyPortArgs(protocol=protocol, port=53)
                            for protocol in ("UDP", "TCP")
                        ],
                    )
                ],
            ),
            opts=child,
        )
        self.register_outputs({"namespace": self.namespace_name})


# --------------------------------------------------------------------------- PgvectorCluster

PG_DATA_MOUNT = "/var/lib/postgresql/data"
PG_DATA = f"{PG_DATA_MOUNT}/pgdata"  # a subdirectory: a fresh volume may hold lost+found
PG_UID = 999  # `postgres` in the official image (and pgvector/pgvector, built on it)

# Sourced by the image's entrypoint once, when it initialises an empty data directory. The
# gateway's password comes from the environment (`\getenv`, psql 15+), never from this text;
# the role owns nothing and cannot bypass row-level security (the control plane grants it
# DML per index table, as on the shared tier).
PG_INIT_SCRIPT = r"""# Vectorplane: first-boot setup of a dedicated pgvector cluster.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
\getenv gateway_user VP_GATEWAY_USER
\getenv gateway_password VP_GATEWAY_PASSWORD
\getenv database POSTGRES_DB
CREATE EXTENSION IF NOT EXISTS vector;
CREATE ROLE :"gateway_user" LOGIN PASSWORD :'gateway_password'
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
GRANT CONNECT ON DATABASE :"database" TO :"gateway_user";
SQL
# Standbys (pods 1..n) stream from pod 0 as the admin role.
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
"""

# Pods 1..n start as hot standbys: an empty data directory is cloned from pod 0 first.
PG_STANDBY_SCRIPT = r"""set -eu
ordinal="${HOSTNAME##*-}"
if [ "$ordinal" = "0" ] || [ -s "$PGDATA/PG_VERSION" ]; then
  exit 0
fi
until pg_isready --quiet --host="$PRIMARY_HOST" --port=5432; do
  echo "waiting for $PRIMARY_HOST"; sleep 2
done
rm -rf "$PGDATA"
exec pg_basebackup --host="$PRIMARY_HOST" --port=5432 --username="$POSTGRES_USER" \
  --pgdata="$PGDATA" --write-recovery-conf --wal-method=stream --checkpoint=fast
"""

CNPG_GROUP = "postgresql.cnpg.io"
CNPG_VERSION = "v1"
CNPG_PLURAL = "clusters"


class PgvectorCluster(pulumi.ComponentResource):
    """PostgreSQL + pgvector: a StatefulSet, or a CloudNativePG `Cluster`."""

    service_host: pulumi.Output[str]
    port: int
    database: str
    workload_kind: str
    workload_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: PgvectorArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("vectorplane:infra:PgvectorCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rn = args.resource_name
        labels = cluster_labels(args, "pgvector")
        creds = args.credentials

        self.admin_secret = basic_auth_secret(
            f"{rn}-admin",
            namespace=args.namespace,
            labels=labels,
            username=creds["admin_user"],
            password=creds["admin_password"],
            opts=child,
        )
        self.gateway_secret = basic_auth_secret(
            f"{rn}-gateway",
            namespace=args.namespace,
            labels=labels,
            username=creds["gateway_user"],
            password=creds["gateway_password"],
            opts=child,
        )
        self.port = PG_PORT
        self.database = args.database
        if args.operator == "cloudnativepg":
            self._cloudnativepg(args, labels, child)
        else:
            self._statefulset(args, labels, child)
        self.register_outputs(
            {
                "host": self.service_host,
                "port": self.port,
                "database": self.database,
                "workload_kind": self.workload_kind,
                "workload_name": self.workload_name,
            }
        )

    def _statefulset(
        self, args: PgvectorArgs, labels: dict[str, str], child: pulumi.ResourceOptions
    ) -> None:
        rn = args.resource_name
        selector = selector_labels(args)
        headless_name = f"{rn}-hl"
        replicas = args.size.replicas
        admin, gateway = self.admin_secret.metadata.name, self.gateway_secret.metadata.name

        self.init_script = core.v1.ConfigMap(
            f"{rn}-initdb",
            metadata=meta.v1.ObjectMetaArgs(
                name=f"{rn}-initdb", namespace=args.namespace, labels=labels
            ),
            data={"10-vectorplane.sh": PG_INIT_SCRIPT},
            opts=child,
        )
        self.headless = headless_service(
            headless_name,
            namespace=args.namespace,
            labels=labels,
            selector=selector,
            ports=[("postgres", PG_PORT)],
            publish_not_ready=False,
            opts=child,
        )
        # Pod 0 is the primary; the client Service sends the gateway there only.
        self.client = client_service(
            rn,
            namespace=args.namespace,
            labels=labels,
            selector={**selector, "statefulset.kubernetes.io/pod-name": f"{rn}-0"},
            ports=[("postgres", PG_PORT)],
            opts=child,
        )
        self.service_host = service_dns(self.client, args.namespace)

        pg_isready = core.v1.ExecActionArgs(
            command=[
                "pg_isready",
                "--quiet",
                "--host=127.0.0.1",
                f"--port={PG_PORT}",
                f"--dbname={args.database}",
            ]
        )
        mounts = [
            core.v1.VolumeMountArgs(name="data", mount_path=PG_DATA_MOUNT),
            core.v1.VolumeMountArgs(name="run", mount_path="/var/run/postgresql"),
            core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),  # noqa: S108
        ]
        admin_env = [
            secret_env("POSTGRES_USER", admin, "username"),
            secret_env("POSTGRES_PASSWORD", admin, "password"),
            plain_env("POSTGRES_DB", args.database),
            plain_env("PGDATA", PG_DATA),
        ]
        postgres = core.v1.ContainerArgs(
            name="postgres",
            image=args.image,
            image_pull_policy="IfNotPresent",
            env=[
                *admin_env,
                secret_env("VP_GATEWAY_USER", gateway, "username"),
                secret_env("VP_GATEWAY_PASSWORD", gateway, "password"),
            ],
            ports=[core.v1.ContainerPortArgs(name="postgres", container_port=PG_PORT)],
            resources=resources(args.size),
            security_context=container_security(),
            startup_probe=core.v1.ProbeArgs(
                exec_=pg_isready, period_seconds=5, timeout_seconds=5, failure_threshold=120
            ),
            readiness_probe=core.v1.ProbeArgs(
                exec_=pg_isready, period_seconds=10, timeout_seconds=5, failure_threshold=3
            ),
            liveness_probe=core.v1.ProbeArgs(
                exec_=pg_isready, period_seconds=20, timeout_seconds=5, failure_threshold=6
            ),
            volume_mounts=[
                *mounts,
                core.v1.VolumeMountArgs(
                    name="initdb", mount_path="/docker-entrypoint-initdb.d", read_only=True
                ),
            ],
        )
        init_containers = None
        if replicas > 1:
            init_containers = [
                core.v1.ContainerArgs(
                    name="clone-primary",
                    image=args.image,
                    image_pull_policy="IfNotPresent",
                    command=["/bin/sh", "-c", PG_STANDBY_SCRIPT],
                    env=[
                        *admin_env,
                        secret_env("PGPASSWORD", admin, "password"),
                        plain_env(
                            "PRIMARY_HOST",
                            f"{rn}-0.{headless_name}.{args.dns_namespace}.svc.cluster.local",
                        ),
                    ],
                    resources=resources(args.size),
                    security_context=container_security(),
                    volume_mounts=mounts,
                )
            ]
            self.peers = peer_policy(
                f"{rn}-peers",
                namespace=args.namespace,
                labels=labels,
                peers=selector,
                ports=[PG_PORT],
                opts=child,
            )
        self.statefulset = engine_statefulset(
            rn,
            args,
            labels=labels,
            selector=selector,
            replicas=replicas,
            service_name=headless_name,
            security=pod_security(PG_UID, PG_UID, PG_UID),
            init_containers=init_containers,
            containers=[postgres],
            volumes=[
                empty_dir("run"),
                empty_dir("tmp"),
                core.v1.VolumeArgs(
                    name="initdb",
                    config_map=core.v1.ConfigMapVolumeSourceArgs(
                        name=self.init_script.metadata.name
                    ),
                ),
            ],
            claim="data",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.headless]),
        )
        self.pdb = disruption_budget(
            rn, namespace=args.namespace, labels=labels, selector=selector, opts=child
        )
        self.workload_kind = "StatefulSet"
        self.workload_name = self.statefulset.metadata.name

    def _cloudnativepg(
        self, args: PgvectorArgs, labels: dict[str, str], child: pulumi.ResourceOptions
    ) -> None:
        """A CloudNativePG `Cluster`: the operator runs the instances, failover, its own PDB and
        its `-rw` Service. The same Secrets: the admin owns the database (initdb owner), the
        gateway is a managed role whose password the operator keeps in sync with its Secret."""
        rn = args.resource_name
        if not args.api_server_cidrs:
            raise ValueError(
                "CloudNativePG instances talk to the Kubernetes API through the namespace's "
                "default-deny egress: api_server_cidrs is required"
            )
        replicas = args.size.replicas
        cnpg_selector = {"cnpg.io/cluster": rn}
        storage: dict[str, object] = {"size": args.size.storage}
        if args.storage_class:
            storage["storageClass"] = args.storage_class
        # Keys are the CRD's own (camelCase): a custom resource's spec is passed through as is.
        spec = {
            "instances": replicas,
            "imageName": args.image,
            "enableSuperuserAccess": False,
            "enablePDB": True,
            "primaryUpdateStrategy": "unsupervised",
            "inheritedMetadata": {"labels": labels},
            "bootstrap": {
                "initdb": {
                    "database": args.database,
                    "owner": args.credentials["admin_user"],
                    "secret": {"name": self.admin_secret.metadata.name},
                    # pgvector needs no shared_preload_libraries; the extension is created in
                    # the application database once, as the superuser, at bootstrap.
                    "postInitApplicationSQL": ["CREATE EXTENSION IF NOT EXISTS vector"],
                }
            },
            "managed": {
                "roles": [
                    {
                        "name": args.credentials["gateway_user"],
                        "ensure": "present",
                        "login": True,
                        "superuser": False,
                        "createdb": False,
                        "createrole": False,
                        "replication": False,
                        "bypassrls": False,
                        "inherit": True,
                        "passwordSecret": {"name": self.gateway_secret.metadata.name},
                    }
                ]
            },
            "storage": storage,
            "resources": {
                "requests": {"cpu": args.size.cpu, "memory": args.size.memory},
                "limits": {"cpu": args.size.cpu, "memory": args.size.memory},
            },
            "affinity": {
                "enablePodAntiAffinity": replicas > 1,
                "podAntiAffinityType": args.anti_affinity,
                "topologyKey": HOSTNAME_TOPOLOGY,
            },
        }
        self.cluster = apiextensions.CustomResource(
            rn,
            api_version=f"{CNPG_GROUP}/{CNPG_VERSION}",
            kind="Cluster",
            metadata=meta.v1.ObjectMetaArgs(name=rn, namespace=args.namespace, labels=labels),
            spec=spec,
            opts=child,
        )
        # Instance pods (and the operator's initdb/join jobs) reach each other for replication
        # and the instance manager; the operator reaches their status port; they reach the
        # Kubernetes API, which is outside every pod and namespace selector.
        self.peers = peer_policy(
            f"{rn}-peers",
            namespace=args.namespace,
            labels=labels,
            peers=cnpg_selector,
            ports=[PG_PORT, CNPG_STATUS_PORT],
            opts=child,
        )
        self.operator_policy = networking.v1.NetworkPolicy(
            f"{rn}-cnpg",
            metadata=meta.v1.ObjectMetaArgs(
                name=f"{rn}-cnpg", namespace=args.namespace, labels=labels
            ),
            spec=networking.v1.NetworkPolicySpecArgs(
                pod_selector=meta.v1.LabelSelectorArgs(match_labels=cnpg_selector),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[
                            networking.v1.NetworkPolicyPeerArgs(
                                namespace_selector=meta.v1.LabelSelectorArgs(
                                    match_labels={
                                        "kubernetes.io/metadata.name": args.cnpg_operator_namespace
                                    }
                                ),
                                pod_selector=meta.v1.LabelSelectorArgs(
                                    match_labels={"app.kubernetes.io/name": "cloudnative-pg"}
                                ),
                            )
                        ],
                        ports=[
                            networking.v1.NetworkPolicyPortArgs(
                                protocol="TCP", port=CNPG_STATUS_PORT
                            )
                        ],
                    )
                ],
                egress=[
                    networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[
                            networking.v1.NetworkPolicyPeerArgs(
                                ip_block=networking.v1.IPBlockArgs(cidr=cidr)
                            )
                            for cidr in args.api_server_cidrs
                        ],
                        ports=[
                            networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port)
                            for port in (443, 6443)
                        ],
                    )
                ],
            ),
            opts=child,
        )
        self.service_host = pulumi.Output.from_input(args.namespace).apply(
            lambda ns: f"{rn}-rw.{ns}.svc.cluster.local"
        )
        self.workload_kind = "Cluster"
        # The name is ours (metadata.name above); tie the output to the resource's registration.
        self.workload_name = self.cluster.urn.apply(lambda _urn: rn)


# --------------------------------------------------------------------------- QdrantCluster

QDRANT_UID, QDRANT_GID, QDRANT_FS_GROUP = 1000, 2000, 3000

# Distributed mode: pod 0 founds the Raft cluster, the others join through it; each announces
# its own stable DNS name (StatefulSet pod + headless Service) as its peer URI.
QDRANT_CLUSTER_SCRIPT = """set -eu
peers="{headless}.{namespace}.svc.cluster.local"
if [ "${{HOSTNAME##*-}}" = "0" ]; then
  exec ./entrypoint.sh --uri "http://${{HOSTNAME}}.${{peers}}:{p2p}"
fi
exec ./entrypoint.sh --bootstrap "http://{first}.${{peers}}:{p2p}" \\
  --uri "http://${{HOSTNAME}}.${{peers}}:{p2p}"
"""


class QdrantCluster(pulumi.ComponentResource):
    """Qdrant: one StatefulSet; distributed mode when it has more than one replica."""

    service_host: pulumi.Output[str]
    url: pulumi.Output[str]
    port: int
    workload_kind: str
    workload_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: EngineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("vectorplane:infra:QdrantCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rn = args.resource_name
        labels = cluster_labels(args, "qdrant")
        selector = selector_labels(args)
        headless_name = f"{rn}-hl"
        replicas = args.size.replicas
        distributed = replicas > 1

        self.api_key_secret = core.v1.Secret(
            f"{rn}-api-key",
            metadata=meta.v1.ObjectMetaArgs(
                name=f"{rn}-api-key", namespace=args.namespace, labels=labels
            ),
            type="Opaque",
            string_data=pulumi.Output.secret({"api-key": args.credentials["api_key"]}),
            opts=child,
        )
        # Peers must resolve each other before they are ready (consensus comes first).
        self.headless = headless_service(
            headless_name,
            namespace=args.namespace,
            labels=labels,
            selector=selector,
            ports=[
                ("http", QDRANT_HTTP_PORT),
                ("grpc", QDRANT_GRPC_PORT),
                ("p2p", QDRANT_P2P_PORT),
            ],
            publish_not_ready=True,
            opts=child,
        )
        self.client = client_service(
            rn,
            namespace=args.namespace,
            labels=labels,
            selector=selector,
            ports=[("http", QDRANT_HTTP_PORT), ("grpc", QDRANT_GRPC_PORT)],
            opts=child,
        )
        self.port = QDRANT_HTTP_PORT
        self.service_host = service_dns(self.client, args.namespace)
        self.url = self.service_host.apply(lambda host: f"http://{host}:{QDRANT_HTTP_PORT}")

        env = [
            secret_env("QDRANT__SERVICE__API_KEY", self.api_key_secret.metadata.name, "api-key"),
            plain_env("QDRANT__SERVICE__HTTP_PORT", str(QDRANT_HTTP_PORT)),
            plain_env("QDRANT__SERVICE__GRPC_PORT", str(QDRANT_GRPC_PORT)),
            # No egress beyond DNS is allowed anyway; do not try to send telemetry.
            plain_env("QDRANT__TELEMETRY_DISABLED", "true"),
            plain_env("QDRANT_INIT_FILE_PATH", "/qdrant/init/.qdrant-initialized"),
        ]
        command = None
        if distributed:
            env += [
                plain_env("QDRANT__CLUSTER__ENABLED", "true"),
                plain_env("QDRANT__CLUSTER__P2P__PORT", str(QDRANT_P2P_PORT)),
            ]
            script = QDRANT_CLUSTER_SCRIPT.format(
                headless=headless_name,
                namespace=args.dns_namespace,
                first=f"{rn}-0",
                p2p=QDRANT_P2P_PORT,
            )
            command = ["/bin/bash", "-c", script]
            self.peers = peer_policy(
                f"{rn}-peers",
                namespace=args.namespace,
                labels=labels,
                peers=selector,
                ports=[QDRANT_HTTP_PORT, QDRANT_GRPC_PORT, QDRANT_P2P_PORT],
                opts=child,
            )

        def http_probe(path: str, period: int, failures: int) -> core.v1.ProbeArgs:
            return core.v1.ProbeArgs(
                http_get=core.v1.HTTPGetActionArgs(path=path, port=QDRANT_HTTP_PORT),
                period_seconds=period,
                timeout_seconds=3,
                failure_threshold=failures,
            )

        qdrant = core.v1.ContainerArgs(
            name="qdrant",
            image=args.image,
            image_pull_policy="IfNotPresent",
            command=command,
            env=env,
            ports=[
                core.v1.ContainerPortArgs(name="http", container_port=QDRANT_HTTP_PORT),
                core.v1.ContainerPortArgs(name="grpc", container_port=QDRANT_GRPC_PORT),
                core.v1.ContainerPortArgs(name="p2p", container_port=QDRANT_P2P_PORT),
            ],
            resources=resources(args.size),
            security_context=container_security(),
            startup_probe=http_probe("/livez", 5, 120),
            readiness_probe=http_probe("/readyz", 5, 6),
            liveness_probe=http_probe("/livez", 10, 6),
            volume_mounts=[
                core.v1.VolumeMountArgs(name="storage", mount_path="/qdrant/storage"),
                core.v1.VolumeMountArgs(name="snapshots", mount_path="/qdrant/snapshots"),
                core.v1.VolumeMountArgs(name="init", mount_path="/qdrant/init"),
                core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),  # noqa: S108
            ],
        )
        self.statefulset = engine_statefulset(
            rn,
            args,
            labels=labels,
            selector=selector,
            replicas=replicas,
            service_name=headless_name,
            security=pod_security(QDRANT_UID, QDRANT_GID, QDRANT_FS_GROUP),
            containers=[qdrant],
            volumes=[empty_dir("snapshots"), empty_dir("init"), empty_dir("tmp")],
            claim="storage",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.headless]),
        )
        self.pdb = disruption_budget(
            rn, namespace=args.namespace, labels=labels, selector=selector, opts=child
        )
        self.workload_kind = "StatefulSet"
        self.workload_name = self.statefulset.metadata.name
        self.register_outputs(
            {
                "host": self.service_host,
                "port": self.port,
                "url": self.url,
                "workload_kind": self.workload_kind,
                "workload_name": self.workload_name,
            }
        )
