"""Policy tests of the tenant-cluster Pulumi program, run under `pulumi.runtime.set_mocks`.

Each case runs the real `cluster_program` with a Mocks subclass standing in for the Pulumi
engine: every resource the program registers is recorded with its type, inputs (as the engine
would receive them: camelCase keys, numbers as doubles, secrets wrapped), provider and
retain-on-delete flag. The tests then assert the platform's policies on what was recorded, and
render every Kubernetes object to the manifest the provider would send, validated against the
Kubernetes OpenAPI schema in strict mode. No Kubernetes API server and no Pulumi CLI are used.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, cast

import kubernetes_validate
import pytest
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

from infra.components import ENGINE_PORTS, GatewaySelector
from infra.program import (
    DEFAULT_IMAGES,
    OUTPUT_KEYS,
    PROJECT_NAME,
    SpecError,
    cluster_program,
    default_quota,
    validate_spec,
)
from infra.quantities import QuantityError, byte_count, cpu_millis, format_bytes, format_cpu
from infra.testing import MockRun, Recorded, run_with_mocks
from vectorplane.contract.clusters import ClusterSpec, Size

# The Kubernetes version whose OpenAPI schema every manifest must satisfy (kubernetes-validate
# ships schemas up to its own version; 1.33 is the oldest minor the platform supports).
K8S_VERSION = "1.33.0"

GATEWAY = {
    "namespace_labels": {"kubernetes.io/metadata.name": "vectorplane"},
    "pod_labels": {"vectorplane.io/engine-access": "true"},
}
API_CIDRS = ["172.18.0.2/32"]
ADMIN_PASSWORD = "adm1n-Pa55-x7Qz"  # the credentials are searched for in every resource
GATEWAY_PASSWORD = "gw-Pa55-k2Lm"
API_KEY = "qdrant-key-9Yt4Rw"


@pytest.fixture(scope="session")
def data_database() -> str:
    """These tests touch no database: stand in for the root conftest's autouse fixture that
    creates a scratch PostgreSQL database, so they run without a PostgreSQL server."""
    return ""


# --------------------------------------------------------------------------- running programs


@dataclass
class Run:
    spec: ClusterSpec
    mocked: MockRun

    @property
    def resources(self) -> list[Recorded]:
        return self.mocked.resources

    @property
    def outputs(self) -> dict[str, Any]:
        return self.mocked.outputs

    def of_kind(self, kind: str) -> list[Recorded]:
        return self.mocked.of_kind(kind)

    def one(self, kind: str) -> Recorded:
        return self.mocked.one(kind)


def run_program(spec: ClusterSpec, **kwargs: Any) -> Run:
    """The real `cluster_program(spec)`, run under mocks (`infra.testing`)."""
    program = cluster_program(spec, gateway_selector=GATEWAY, **kwargs)
    return Run(spec, run_with_mocks(program, project=PROJECT_NAME, stack=spec.stack_name))


def make_spec(engine: str, replicas: int, **options: Any) -> ClusterSpec:
    credentials = (
        {
            "admin_user": "vectorplane",
            "admin_password": ADMIN_PASSWORD,
            "gateway_user": "vp_gateway",
            "gateway_password": GATEWAY_PASSWORD,
        }
        if engine == "pgvector"
        else {"api_key": API_KEY}
    )
    return ClusterSpec(
        cluster_id="0f3c2a9d41be4c7e9a3f5b6c7d8e9f01",
        tenant_id="7a1b2c3d4e5f40718293a4b5c6d7e8f9",
        tenant_slug="acme",
        engine=engine,  # type: ignore[arg-type]
        size=Size("small", "500m", "1Gi", "10Gi", replicas),
        credentials=credentials,
        stack_name=f"cluster-{engine}-{replicas}",
        options=options,
    )


CASES = {
    "qdrant-1": ("qdrant", 1, {}),
    "qdrant-3": ("qdrant", 3, {}),
    "pgvector-1": ("pgvector", 1, {}),
    "pgvector-3": ("pgvector", 3, {"anti_affinity": "required"}),
    "cnpg-1": ("pgvector", 1, {"pg_operator": "cloudnativepg"}),
    "cnpg-3": ("pgvector", 3, {"pg_operator": "cloudnativepg"}),
}


@functools.cache
def case_run(case: str) -> Run:
    engine, replicas, options = CASES[case]
    return run_program(make_spec(engine, replicas, **options), api_server_cidrs=API_CIDRS)


@pytest.fixture(params=sorted(CASES))
def run(request: pytest.FixtureRequest) -> Run:
    return case_run(request.param)


def is_cnpg(run: Run) -> bool:
    return run.spec.options.get("pg_operator") == "cloudnativepg"


def workload_pod_specs(run: Run) -> list[dict[str, Any]]:
    return [s.inputs["spec"]["template"]["spec"] for s in run.of_kind("StatefulSet")]


def walk_strings(value: Any) -> Iterator[str]:
    """Every string in a recorded input, secret wrappers included (they are dicts too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from walk_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from walk_strings(item)


# --------------------------------------------------------------------------- policies


def test_quota_and_limit_range_are_set(run: Run) -> None:
    hard = run.one("ResourceQuota").inputs["spec"]["hard"]
    for key in ("requests.cpu", "limits.cpu", "requests.memory", "limits.memory"):
        assert key in hard, key
    assert hard["requests.storage"] == format_bytes(byte_count("10Gi") * run.spec.size.replicas)
    assert hard["pods"] == str(run.spec.size.replicas + 1)
    assert hard["services.loadbalancers"] == "0"
    assert hard["services.nodeports"] == "0"

    (limit,) = run.one("LimitRange").inputs["spec"]["limits"]
    assert limit["type"] == "Container"
    assert set(limit["default"]) == {"cpu", "memory"}
    assert set(limit["defaultRequest"]) == {"cpu", "memory"}


def test_default_deny_covers_every_pod_both_ways(run: Run) -> None:
    policies = run.of_kind("NetworkPolicy")
    deny = [
        p.inputs["spec"]
        for p in policies
        if p.inputs["spec"]["podSelector"] == {}
        and not p.inputs["spec"].get("ingress")
        and not p.inputs["spec"].get("egress")
    ]
    assert len(deny) == 1
    assert sorted(deny[0]["policyTypes"]) == ["Egress", "Ingress"]


def _gateway_peer() -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": GATEWAY["namespace_labels"]},
        "podSelector": {"matchLabels": GATEWAY["pod_labels"]},
    }


def _own_pods(run: Run) -> dict[str, str]:
    if is_cnpg(run):
        return {"cnpg.io/cluster": run.spec.resource_name}
    return {
        "app.kubernetes.io/instance": run.spec.resource_name,
        "vectorplane.io/cluster": run.spec.cluster_id,
    }


def test_only_the_gateway_is_admitted_from_outside(run: Run) -> None:
    """Every ingress source is the gateway (namespace AND pod selector), this cluster's own
    pods (same namespace), or — CloudNativePG only — its operator on the status port. No rule
    admits everything, and no address block is admitted."""
    own = {"podSelector": {"matchLabels": _own_pods(run)}}
    operator = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cnpg-system"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "cloudnative-pg"}},
    }
    gateway_ports: set[int] = set()
    for policy in run.of_kind("NetworkPolicy"):
        for rule in policy.inputs["spec"].get("ingress", []):
            assert rule.get("from"), f"{policy.name}: an ingress rule without sources admits all"
            ports = {int(p["port"]) for p in rule.get("ports", [])}
            assert ports, f"{policy.name}: an ingress rule without ports admits every port"
            for peer in rule["from"]:
                assert "ipBlock" not in peer
                if peer == _gateway_peer():
                    gateway_ports |= ports
                elif peer == own:
                    assert run.spec.size.replicas > 1 or is_cnpg(run)
                elif is_cnpg(run) and peer == operator:
                    assert ports == {8000}
                else:
                    pytest.fail(f"{policy.name} admits an unexpected peer {peer}")
    assert gateway_ports == set(ENGINE_PORTS)
    assert int(run.outputs["port"]) in gateway_ports


def test_egress_is_dns_peers_and_api_server_only(run: Run) -> None:
    dns = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
    own = {"podSelector": {"matchLabels": _own_pods(run)}}
    seen_dns = False
    for policy in run.of_kind("NetworkPolicy"):
        for rule in policy.inputs["spec"].get("egress", []):
            assert rule.get("to"), f"{policy.name}: an egress rule without targets allows all"
            ports = {int(p["port"]) for p in rule["ports"]}
            for peer in rule["to"]:
                if peer == dns:
                    assert ports == {53}
                    seen_dns = True
                elif peer == own:
                    assert run.spec.size.replicas > 1 or is_cnpg(run)
                elif is_cnpg(run) and "ipBlock" in peer:
                    assert peer["ipBlock"]["cidr"] in API_CIDRS
                    assert ports == {443, 6443}
                else:
                    pytest.fail(f"{policy.name} allows egress to {peer}")
    assert seen_dns


def test_no_loadbalancer_or_nodeport_service(run: Run) -> None:
    services = run.of_kind("Service")
    assert services or is_cnpg(run)
    for service in services:
        spec = service.inputs["spec"]
        assert spec.get("type", "ClusterIP") == "ClusterIP", service.name
        assert not spec.get("externalIPs")


def test_credentials_are_pulumi_secrets_and_never_plain_elsewhere(run: Run) -> None:
    secret_keys = ("admin_password", "gateway_password", "api_key")
    credentials = [v for k, v in run.spec.credentials.items() if k in secret_keys]
    assert credentials  # the passwords, or the API key
    secrets = run.of_kind("Secret")
    assert secrets
    in_secrets = set()
    for secret in secrets:
        assert is_rpc_secret(secret.inputs["stringData"]), f"{secret.name}: plain stringData"
        assert "data" not in secret.inputs
        in_secrets |= set(unwrap_rpc_secret(secret.inputs["stringData"]).values())
    assert set(credentials) <= in_secrets
    for resource in run.resources:
        if resource.kind == "Secret":
            continue
        text = list(walk_strings(resource.inputs))
        for credential in credentials:
            assert not any(credential in s for s in text), f"credential in {resource.name}"
    exported = json.dumps(run.outputs, default=str)
    assert not any(credential in exported for credential in credentials)


def test_pods_read_credentials_through_secret_key_refs(run: Run) -> None:
    secret_names = {s.inputs["metadata"]["name"] for s in run.of_kind("Secret")}
    for pod in workload_pod_specs(run):
        for container in pod["containers"] + pod.get("initContainers", []):
            for env in container.get("env", []):
                if any(w in env["name"] for w in ("PASSWORD", "API_KEY", "USER")):
                    ref = env["valueFrom"]["secretKeyRef"]
                    assert ref["name"] in secret_names
                    assert "value" not in env


def test_every_container_has_requests_and_limits(run: Run) -> None:
    if is_cnpg(run):
        resources = run.one("Cluster").inputs["spec"]["resources"]
        assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
        return
    containers = [
        c
        for pod in workload_pod_specs(run)
        for c in pod["containers"] + pod.get("initContainers", [])
    ]
    assert containers
    if run.spec.engine == "pgvector" and run.spec.size.replicas > 1:
        assert any(c["name"] == "clone-primary" for c in containers)  # the init container
    for container in containers:
        resources = container["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}, container["name"]
        assert set(resources["limits"]) == {"cpu", "memory"}, container["name"]


def test_pods_run_as_non_root_on_a_read_only_root(run: Run) -> None:
    for pod in workload_pod_specs(run):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["fsGroup"] > 0
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]


def test_anti_affinity_if_and_only_if_several_replicas(run: Run) -> None:
    replicas = run.spec.size.replicas
    if is_cnpg(run):
        assert run.one("Cluster").inputs["spec"]["affinity"]["enablePodAntiAffinity"] is (
            replicas > 1
        )
        return
    (pod,) = workload_pod_specs(run)
    anti = (pod.get("affinity") or {}).get("podAntiAffinity")
    if replicas == 1:
        assert anti is None
        return
    assert anti is not None
    mode = run.spec.options.get("anti_affinity", "preferred")
    if mode == "required":
        (term,) = anti["requiredDuringSchedulingIgnoredDuringExecution"]
    else:
        (weighted,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        term = weighted["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == _own_pods(run)


def test_disruption_budget_is_present(run: Run) -> None:
    if is_cnpg(run):
        assert run.one("Cluster").inputs["spec"]["enablePDB"] is True
        assert not run.of_kind("PodDisruptionBudget")  # the operator makes its own
        return
    pdb = run.one("PodDisruptionBudget").inputs["spec"]
    statefulset = run.one("StatefulSet").inputs["spec"]
    assert pdb["selector"] == statefulset["selector"]
    assert int(pdb["maxUnavailable"]) == 1


def test_stack_outputs_name_the_endpoint_and_workload(run: Run) -> None:
    outputs = run.outputs
    assert set(outputs) == set(OUTPUT_KEYS)
    namespace = run.spec.namespace
    assert outputs["namespace"] == namespace
    assert outputs["replicas"] == run.spec.size.replicas
    if is_cnpg(run):
        assert outputs["workload_kind"] == "Cluster"
        assert outputs["host"] == f"{run.spec.resource_name}-rw.{namespace}.svc.cluster.local"
        assert outputs["workload_name"] == run.one("Cluster").inputs["metadata"]["name"]
    else:
        statefulset = run.one("StatefulSet").inputs
        assert outputs["workload_kind"] == "StatefulSet"
        assert outputs["workload_name"] == statefulset["metadata"]["name"]
        client = [s for s in run.of_kind("Service") if s.inputs["spec"].get("clusterIP") != "None"]
        (service,) = client
        assert outputs["host"] == (
            f"{service.inputs['metadata']['name']}.{namespace}.svc.cluster.local"
        )
        assert int(outputs["port"]) in {int(p["port"]) for p in service.inputs["spec"]["ports"]}
    if run.spec.engine == "pgvector":
        assert (outputs["port"], outputs["database"], outputs["url"]) == (
            5432,
            "vectorplane_data",
            "",
        )
    else:
        assert outputs["port"] == 6333
        assert outputs["url"] == f"http://{outputs['host']}:6333"
        assert outputs["database"] == ""


def test_shared_tenant_objects_are_adopted_and_retained(run: Run) -> None:
    """The namespace is shared by the tenant's clusters (one stack each): its objects must
    survive one cluster's destroy, while the cluster's own objects go with it. All objects go
    through the stack's explicit provider, which upserts existing objects."""
    (provider,) = [r for r in run.resources if r.type == "pulumi:providers:kubernetes"]
    assert provider.inputs["upsertExistingObjects"] in {True, "true"}
    for resource in run.resources:
        if not resource.is_kubernetes:
            continue
        assert resource.provider.startswith(f"urn:pulumi:{run.spec.stack_name}::")
        assert "pulumi:providers:kubernetes::kubernetes::" in resource.provider
        shared = resource.kind in {"Namespace", "ResourceQuota", "LimitRange"} or (
            resource.inputs["metadata"]["name"] in {"default-deny", "allow-gateway", "allow-dns"}
        )
        assert resource.retain_on_delete is shared, resource.name


def test_statefulset_waits_are_left_to_the_driver(run: Run) -> None:
    for statefulset in run.of_kind("StatefulSet"):
        annotations = statefulset.inputs["metadata"]["annotations"]
        assert annotations["pulumi.com/skipAwait"] == "true"
        spec = statefulset.inputs["spec"]
        assert spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
        (claim,) = spec["volumeClaimTemplates"]
        assert claim["spec"]["resources"]["requests"]["storage"] == run.spec.size.storage


# --------------------------------------------------------------------------- engine specifics


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.mark.parametrize("replicas", [1, 3])
def test_qdrant_distributed_mode_only_with_replicas(replicas: int) -> None:
    run = case_run(f"qdrant-{replicas}")
    (pod,) = workload_pod_specs(run)
    (container,) = pod["containers"]
    env = _env(container)
    api_key = env["QDRANT__SERVICE__API_KEY"]["valueFrom"]["secretKeyRef"]
    assert api_key == {"name": f"{run.spec.resource_name}-api-key", "key": "api-key"}
    assert container["image"] == DEFAULT_IMAGES["qdrant"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    headless = [s for s in run.of_kind("Service") if s.inputs["spec"].get("clusterIP") == "None"]
    (service,) = headless
    assert service.inputs["spec"]["publishNotReadyAddresses"] is True
    if replicas == 1:
        assert "QDRANT__CLUSTER__ENABLED" not in env
        assert "command" not in container
        return
    assert env["QDRANT__CLUSTER__ENABLED"]["value"] == "true"
    script = container["command"][-1]
    peers = f"{service.inputs['metadata']['name']}.{run.spec.namespace}.svc.cluster.local"
    assert f'peers="{peers}"' in script
    assert f'--bootstrap "http://{run.spec.resource_name}-0.${{peers}}:6335"' in script


def test_pgvector_statefulset_bootstraps_the_extension_and_gateway_role() -> None:
    run = case_run("pgvector-3")
    (pod,) = workload_pod_specs(run)
    (postgres,) = pod["containers"]
    assert postgres["image"] == DEFAULT_IMAGES["pgvector"]
    assert postgres["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert postgres["livenessProbe"]["exec"]["command"][0] == "pg_isready"
    script = run.one("ConfigMap").inputs["data"]["10-vectorplane.sh"]
    assert "CREATE EXTENSION IF NOT EXISTS vector" in script
    assert "NOBYPASSRLS" in script
    assert r"\getenv gateway_password VP_GATEWAY_PASSWORD" in script
    (clone,) = pod["initContainers"]
    primary = _env(clone)["PRIMARY_HOST"]["value"]
    assert primary.startswith(f"{run.spec.resource_name}-0.{run.spec.resource_name}-hl.")
    # The client Service reaches the primary (pod 0) only.
    (client,) = [s for s in run.of_kind("Service") if s.inputs["spec"].get("clusterIP") != "None"]
    selector = client.inputs["spec"]["selector"]
    assert selector["statefulset.kubernetes.io/pod-name"] == f"{run.spec.resource_name}-0"


# --------------------------------------------------------------------------- manifests


def _plain(value: Any) -> Any:
    """Undo the wire format: unwrap secrets, and give back integers that travelled as doubles
    (protobuf Struct has one number type), as the Kubernetes provider does with the schema."""
    if is_rpc_secret(value):
        return _plain(unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def manifest(resource: Recorded) -> dict[str, Any]:
    """The object as the provider would send it. The recorded inputs are already keyed the
    Kubernetes way (camelCase, `exec`, `from`): Pulumi translated the Python names using the
    input types, so a snake_case key surviving here would fail strict validation."""
    return cast(dict[str, Any], _plain(copy.deepcopy(resource.inputs)))


def schema_validated(run: Run) -> list[Recorded]:
    return [r for r in run.resources if r.is_kubernetes and r.kind != "Cluster"]


def test_every_manifest_validates_against_the_kubernetes_schema(run: Run) -> None:
    resources = schema_validated(run)
    kinds = {r.kind for r in resources}
    expected = {"Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "Secret"}
    if not is_cnpg(run):
        expected |= {"Service", "StatefulSet", "PodDisruptionBudget"}
    assert expected <= kinds
    for resource in resources:
        document = manifest(resource)
        assert set(document) >= {"apiVersion", "kind", "metadata"}
        try:
            kubernetes_validate.validate(document, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{resource.kind} {resource.name}: {exc.message} at {list(exc.path)}")


def test_the_schema_check_rejects_broken_manifests() -> None:
    """The validation above can fail: a misspelt field (strict mode refuses unknown keys), a
    snake_case key, a wrong type and a missing required field are each caught."""
    statefulset = manifest(case_run("qdrant-3").one("StatefulSet"))
    kubernetes_validate.validate(statefulset, K8S_VERSION, strict=True)

    misspelt = copy.deepcopy(statefulset)
    container = misspelt["spec"]["template"]["spec"]["containers"][0]
    container["resource"] = container.pop("resources")
    snake = copy.deepcopy(statefulset)
    snake["spec"]["service_name"] = snake["spec"].pop("serviceName")
    wrong_type = copy.deepcopy(statefulset)
    wrong_type["spec"]["replicas"] = "three"
    missing = copy.deepcopy(statefulset)
    del missing["spec"]["selector"]
    for broken in (misspelt, snake, wrong_type, missing):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, K8S_VERSION, strict=True)

    policy = manifest(case_run("qdrant-1").of_kind("NetworkPolicy")[0])
    policy["spec"]["policyTypes"] = "Ingress"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(policy, K8S_VERSION, strict=True)


@pytest.mark.parametrize("case", ["cnpg-1", "cnpg-3"])
def test_cloudnativepg_cluster_has_its_required_fields(case: str) -> None:
    """The CloudNativePG `Cluster` cannot be schema-validated here: kubernetes-validate ships
    only the built-in Kubernetes API schemas, and a custom resource's schema lives in its
    CustomResourceDefinition, installed with the operator in a real cluster (the API server
    checks it there). So this checks the fields the operator requires and the ones the
    platform relies on, and that the validator indeed knows no schema for it."""
    run = case_run(case)
    cluster = manifest(run.one("Cluster"))
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["kind"] == "Cluster"
    assert cluster["metadata"]["name"] == run.spec.resource_name
    assert cluster["metadata"]["namespace"] == run.spec.namespace
    spec = cluster["spec"]
    assert spec["instances"] == run.spec.size.replicas
    assert spec["imageName"] == DEFAULT_IMAGES["cnpg"]
    assert spec["storage"]["size"] == run.spec.size.storage
    assert spec["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    assert spec["enableSuperuserAccess"] is False
    initdb = spec["bootstrap"]["initdb"]
    assert initdb["database"] == "vectorplane_data"
    assert initdb["owner"] == run.spec.credentials["admin_user"]
    assert "CREATE EXTENSION IF NOT EXISTS vector" in initdb["postInitApplicationSQL"]
    (role,) = spec["managed"]["roles"]
    assert role["name"] == run.spec.credentials["gateway_user"]
    assert role["superuser"] is False and role["bypassrls"] is False
    secrets = {s.inputs["metadata"]["name"]: s for s in run.of_kind("Secret")}
    for ref in (initdb["secret"]["name"], role["passwordSecret"]["name"]):
        secret = manifest(secrets[ref])
        assert secret["type"] == "kubernetes.io/basic-auth"
        assert set(secret["stringData"]) == {"username", "password"}
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(cluster, K8S_VERSION, strict=True)


# --------------------------------------------------------------------------- inputs refused


def test_tenant_quota_option_replaces_the_default_but_never_allows_public_services() -> None:
    spec = make_spec("qdrant", 1, tenant_quota={"requests.cpu": "8", "limits.cpu": "8"})
    hard = run_program(spec).one("ResourceQuota").inputs["spec"]["hard"]
    assert hard == {
        "requests.cpu": "8",
        "limits.cpu": "8",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }


def test_images_are_configurable() -> None:
    run = run_program(make_spec("qdrant", 1), images={"qdrant": "registry.local/qdrant:v9"})
    (pod,) = workload_pod_specs(run)
    assert pod["containers"][0]["image"] == "registry.local/qdrant:v9"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"engine": "milvus"}, "unknown engine"),
        ({"size": Size("x", "half", "1Gi", "10Gi")}, "not a Kubernetes quantity"),
        ({"size": Size("x", "500m", "1Gi", "10Gi", 0)}, "replicas"),
        ({"credentials": {"api_key": ""}}, "credentials lack api_key"),
        ({"cluster_id": "Not-Hex"}, "cluster_id"),
        ({"stack_name": "has space"}, "stack name"),
        ({"options": {"anti_affinity": "sometimes"}}, "anti_affinity"),
        ({"options": {"pg_operator": "cloudnativepg"}}, "pgvector clusters only"),
        ({"options": {"tenant_quota": {"services.loadbalancers": "2"}}}, "unsupported key"),
    ],
)
def test_invalid_specs_are_refused(change: dict[str, Any], message: str) -> None:
    spec = replace(make_spec("qdrant", 1), **change)
    with pytest.raises(SpecError, match=message):
        validate_spec(spec)


def test_invalid_program_inputs_are_refused() -> None:
    pg = make_spec("pgvector", 1, pg_operator="cloudnativepg")
    with pytest.raises(SpecError, match="API server"):
        cluster_program(pg, gateway_selector=GATEWAY)
    with pytest.raises(SpecError, match="gateway selector"):
        cluster_program(make_spec("qdrant", 1), gateway_selector={"namespace_labels": {"a": "b"}})
    with pytest.raises(SpecError, match="unknown image key"):
        cluster_program(make_spec("qdrant", 1), gateway_selector=GATEWAY, images={"x": "y"})
    bad_role = replace(pg, credentials={**pg.credentials, "gateway_user": "gw; DROP"})
    with pytest.raises(SpecError, match="gateway_user"):
        validate_spec(bad_role)
    with pytest.raises(ValueError, match="namespace labels and pod labels"):
        GatewaySelector(namespace_labels={}, pod_labels={"a": "b"})


def test_quantities() -> None:
    assert cpu_millis("500m") == 500
    assert cpu_millis("1.5") == 1500
    assert byte_count("1Gi") == 2**30
    assert byte_count("2G") == 2 * 10**9
    assert format_cpu(3000) == "3" and format_cpu(1500) == "1500m"
    assert format_bytes(3 * 2**30) == "3Gi" and format_bytes(1536 * 2**20) == "1536Mi"
    for bad in ("", "1.5.2", "-1", "1ki", "10GB", "0"):
        with pytest.raises(QuantityError):
            byte_count(bad)
    with pytest.raises(QuantityError):
        cpu_millis("0.0001")
    assert default_quota(Size("s", "250m", "512Mi", "5Gi", 2)) == {
        "requests.cpu": "750m",
        "limits.cpu": "750m",
        "requests.memory": "1536Mi",
        "limits.memory": "1536Mi",
        "requests.storage": "10Gi",
        "persistentvolumeclaims": "2",
        "pods": "3",
    }
