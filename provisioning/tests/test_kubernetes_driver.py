"""The `kubernetes` driver's orchestration, against fakes of what it calls.

The fake Automation API keeps stacks by name and, on `up`, runs the very program the driver
built under Pulumi mocks (`infra.testing`), so the outputs the driver reads back are the real
program's. The fake Kubernetes client answers with real `kubernetes.client` models or raises
real `ApiException`s. No Pulumi CLI, API server or database is needed; one integration test at
the end runs the real thing when a CLI and a kubeconfig are present.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes.client import (
    V1LabelSelector,
    V1ObjectMeta,
    V1PodTemplateSpec,
    V1StatefulSet,
    V1StatefulSetSpec,
    V1StatefulSetStatus,
)
from kubernetes.client.exceptions import ApiException
from pulumi import automation as auto
from pulumi.automation import CommandResult

from infra.testing import MockRun, run_with_mocks
from provisioning.drivers.base import (
    ClusterSpec,
    PermanentError,
    Size,
    TransientError,
)
from provisioning.drivers.kubernetes import (
    KubeClients,
    KubernetesDriver,
    KubernetesSettings,
    statefulset_readiness,
)

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="session")
def data_database() -> str:
    """These tests touch no database: stand in for the root conftest's autouse fixture that
    creates a scratch PostgreSQL database, so they run without a PostgreSQL server."""
    return ""


# --------------------------------------------------------------------------- fakes


def command_error(kind: type[auto.CommandError], stderr: str) -> auto.CommandError:
    return kind(CommandResult(stdout="Updating (stack):\n", stderr=stderr, code=255))


class FakeWorkspace:
    def __init__(self, automation: FakeAutomation) -> None:
        self.automation = automation

    def remove_stack(self, stack_name: str) -> None:
        self.automation.calls.append(("remove_stack", stack_name))
        del self.automation.stacks[stack_name]


class FakeStack:
    def __init__(self, automation: FakeAutomation, name: str) -> None:
        self.automation = automation
        self.name = name
        self.config: dict[str, auto.ConfigValue] = {}
        self.program: Callable[[], None] | None = None
        self.opts: auto.LocalWorkspaceOptions | None = None
        self.deployed: MockRun | None = None
        self.up_kwargs: list[dict[str, Any]] = []
        self._workspace = FakeWorkspace(automation)

    @property
    def workspace(self) -> FakeWorkspace:
        return self._workspace

    def set_all_config(self, config: Mapping[str, auto.ConfigValue]) -> None:
        self.automation.calls.append(("set_all_config", self.name))
        self.config.update(config)

    def up(self, *, on_output: Callable[[str], Any], color: str, show_secrets: bool) -> None:
        self.automation.calls.append(("up", self.name))
        self.up_kwargs.append({"color": color, "show_secrets": show_secrets})
        self.automation.raise_for("up")
        assert self.program is not None
        on_output(f"Updating ({self.name}):")
        self.deployed = run_with_mocks(
            self.program, project="vectorplane-clusters", stack=self.name
        )

    def destroy(self, *, on_output: Callable[[str], Any], color: str) -> None:
        self.automation.calls.append(("destroy", self.name))
        self.automation.raise_for("destroy")
        self.deployed = None

    def outputs(self) -> dict[str, auto.OutputValue]:
        if self.deployed is None:
            return {}
        return {k: auto.OutputValue(v, False) for k, v in self.deployed.outputs.items()}


class FakeAutomation:
    """`create_or_select_stack` / `select_stack` over an in-memory backend."""

    def __init__(self) -> None:
        self.stacks: dict[str, FakeStack] = {}
        self.calls: list[tuple[str, str]] = []
        self.options: list[auto.LocalWorkspaceOptions] = []
        self.errors: dict[str, list[BaseException]] = {}

    def raise_for(self, operation: str) -> None:
        queued = self.errors.get(operation)
        if queued:
            raise queued.pop(0)

    def create_or_select_stack(
        self,
        stack_name: str,
        *,
        project_name: str,
        program: Callable[[], None],
        opts: auto.LocalWorkspaceOptions,
    ) -> FakeStack:
        assert project_name == "vectorplane-clusters"
        self.calls.append(("create_or_select_stack", stack_name))
        self.options.append(opts)
        self.raise_for("create_or_select_stack")
        stack = self.stacks.setdefault(stack_name, FakeStack(self, stack_name))
        stack.program, stack.opts = program, opts
        return stack

    def select_stack(
        self,
        stack_name: str,
        *,
        project_name: str,
        program: Callable[[], None],
        opts: auto.LocalWorkspaceOptions,
    ) -> FakeStack:
        assert project_name == "vectorplane-clusters"
        self.calls.append(("select_stack", stack_name))
        self.options.append(opts)
        self.raise_for("select_stack")
        if stack_name not in self.stacks:
            raise command_error(auto.StackNotFoundError, f"no stack named '{stack_name}' found")
        return self.stacks[stack_name]


def statefulset(
    *, replicas: int, ready: int, generation: int = 2, observed: int = 2, revision: str = "r2"
) -> V1StatefulSet:
    return V1StatefulSet(
        metadata=V1ObjectMeta(name="x", generation=generation),
        spec=V1StatefulSetSpec(
            replicas=replicas,
            selector=V1LabelSelector(match_labels={"a": "b"}),
            service_name="x-hl",
            template=V1PodTemplateSpec(),
        ),
        status=V1StatefulSetStatus(
            replicas=replicas,
            ready_replicas=ready,
            updated_replicas=replicas,
            observed_generation=observed,
            current_revision="r2",
            update_revision=revision,
        ),
    )


class FakeApps:
    """`AppsV1Api`: answers from a script; the last answer repeats."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str]] = []

    def read_namespaced_stateful_set_status(
        self, name: str, namespace: str, _request_timeout: Any = None
    ) -> V1StatefulSet:
        self.calls.append((namespace, name))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, V1StatefulSet)
        return answer


class FakeCustom:
    """`CustomObjectsApi`: CloudNativePG `Cluster` objects from a script."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, ...]] = []

    def get_namespaced_custom_object_status(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        _request_timeout: Any = None,
    ) -> dict[str, Any]:
        self.calls.append((group, version, namespace, plural, name))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return dict(answer)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Harness:
    def __init__(self, apps: list[Any] | None = None, custom: list[Any] | None = None) -> None:
        self.automation = FakeAutomation()
        self.apps = FakeApps(apps or [statefulset(replicas=1, ready=1)])
        self.custom = FakeCustom(custom or [{}])
        self.clock = Clock()
        self.kube_opened = 0
        self.driver = KubernetesDriver(
            automation=self.automation,
            kube=self.kube,
            sleep=self.clock.sleep,
            clock=self.clock.time,
        )

    @contextlib.contextmanager
    def kube(self, settings: KubernetesSettings) -> Iterator[KubeClients]:
        self.kube_opened += 1
        yield KubeClients(apps=self.apps, custom=self.custom)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean driver environment: state in `tmp_path`, nothing inherited from the shell."""
    for name in list(os.environ):
        if name.startswith(("VECTORPLANE_PULUMI", "VECTORPLANE_KUBE", "VECTORPLANE_GATEWAY")):
            monkeypatch.delenv(name)
    for name in ("KUBECONFIG", "VECTORPLANE_IMAGE_QDRANT", "VECTORPLANE_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VECTORPLANE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("VECTORPLANE_PULUMI_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("VECTORPLANE_KUBE_READY_TIMEOUT", "60")
    monkeypatch.setenv("VECTORPLANE_KUBE_POLL_INTERVAL", "5")
    return tmp_path


def make_spec(engine: str = "qdrant", replicas: int = 1, **options: Any) -> ClusterSpec:
    credentials = (
        {
            "admin_user": "vectorplane",
            "admin_password": "adminpw-123",
            "gateway_user": "vp_gateway",
            "gateway_password": "gatewaypw-456",
        }
        if engine == "pgvector"
        else {"api_key": "key-789"}
    )
    return ClusterSpec(
        cluster_id="c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6",
        tenant_id="a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5",
        tenant_slug="acme",
        engine=engine,  # type: ignore[arg-type]
        size=Size("small", "500m", "1Gi", "10Gi", replicas),
        credentials=credentials,
        stack_name=f"cluster-c1d2e3f4a5b6-{engine}",
        options=options,
    )


# --------------------------------------------------------------------------- apply


def test_apply_creates_the_stack_with_backend_passphrase_and_context(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", "/etc/kube/config")
    monkeypatch.setenv("VECTORPLANE_KUBE_CONTEXT", "kind-vectorplane")
    harness = Harness()
    spec = make_spec()

    observed = harness.driver.apply(spec)

    assert observed.state == "ready"
    assert observed.endpoint is not None
    host = f"{spec.resource_name}.{spec.namespace}.svc.cluster.local"
    assert observed.endpoint.as_dict() == {
        "host": host,
        "port": 6333,
        "database": "",
        "url": f"http://{host}:6333",
    }
    assert harness.automation.calls == [
        ("create_or_select_stack", spec.stack_name),
        ("set_all_config", spec.stack_name),
        ("up", spec.stack_name),
    ]
    (opts,) = harness.automation.options
    assert opts.project_settings is not None and opts.project_settings.backend is not None
    assert opts.project_settings.name == "vectorplane-clusters"
    assert opts.project_settings.backend.url == f"file://{env / 'pulumi'}"
    assert (env / "pulumi").is_dir()  # the default file backend's folder is created
    assert opts.secrets_provider == "passphrase"
    assert opts.env_vars is not None
    assert opts.env_vars["PULUMI_CONFIG_PASSPHRASE"] == PASSPHRASE
    assert opts.env_vars["KUBECONFIG"] == "/etc/kube/config"
    assert opts.work_dir == str(env / "pulumi-workspaces" / spec.stack_name)
    stack = harness.automation.stacks[spec.stack_name]
    assert {k: v.value for k, v in stack.config.items()} == {
        "kubernetes:context": "kind-vectorplane"
    }
    assert stack.up_kwargs == [{"color": "never", "show_secrets": False}]
    # Readiness is read from the StatefulSet the program exported.
    assert harness.apps.calls == [(spec.namespace, spec.resource_name)]
    assert observed.details["workload"] == f"StatefulSet/{spec.resource_name}"
    assert observed.details["ready_replicas"] == 1


def test_the_program_gets_the_gateway_selector_and_images_from_the_environment(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECTORPLANE_GATEWAY_NAMESPACE", "platform")
    monkeypatch.setenv("VECTORPLANE_GATEWAY_POD_LABELS", "app=gateway, tier=data")
    monkeypatch.setenv("VECTORPLANE_IMAGE_QDRANT", "registry.local/qdrant:v1.19.0")
    harness = Harness()
    spec = make_spec()
    harness.driver.apply(spec)

    deployed = harness.automation.stacks[spec.stack_name].deployed
    assert deployed is not None
    policies = {p.inputs["metadata"]["name"]: p for p in deployed.of_kind("NetworkPolicy")}
    (rule,) = policies["allow-gateway"].inputs["spec"]["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "platform"}},
            "podSelector": {"matchLabels": {"app": "gateway", "tier": "data"}},
        }
    ]
    pod = deployed.one("StatefulSet").inputs["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.local/qdrant:v1.19.0"


def test_apply_twice_keeps_one_stack(env: Path) -> None:
    harness = Harness()
    spec = make_spec()
    first = harness.driver.apply(spec)
    second = harness.driver.apply(spec)
    assert list(harness.automation.stacks) == [spec.stack_name]
    assert [c for c in harness.automation.calls if c[0] == "up"] == [("up", spec.stack_name)] * 2
    assert first == second


def test_apply_waits_for_every_replica_of_the_current_revision(env: Path) -> None:
    harness = Harness(
        apps=[
            ApiException(status=404, reason="Not Found"),  # not created yet
            statefulset(replicas=3, ready=3, observed=1),  # the controller lags a generation
            statefulset(replicas=3, ready=1),
            statefulset(replicas=3, ready=3, revision="r3"),  # rolling update under way
            statefulset(replicas=3, ready=3),
        ]
    )
    observed = harness.driver.apply(make_spec(replicas=3))
    assert observed.state == "ready"
    assert len(harness.apps.calls) == 5
    assert harness.clock.sleeps == [5.0] * 4


def test_apply_times_out_as_a_transient_error(env: Path) -> None:
    harness = Harness(apps=[statefulset(replicas=1, ready=0)])
    with pytest.raises(TransientError, match=r"not ready after 60s: 0/1 replicas ready"):
        harness.driver.apply(make_spec())
    assert sum(harness.clock.sleeps) >= 60
    assert len(harness.apps.calls) == 13  # every 5 s for 60 s, then the last look


def test_cloudnativepg_readiness_comes_from_the_cluster_status(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECTORPLANE_KUBE_API_CIDRS", "172.18.0.2/32")
    harness = Harness(
        custom=[
            {"spec": {"instances": 3}, "status": {"readyInstances": 1, "phase": "Setting up"}},
            {"spec": {"instances": 3}, "status": {"readyInstances": 3, "phase": "healthy"}},
        ]
    )
    spec = make_spec("pgvector", 3, pg_operator="cloudnativepg")
    observed = harness.driver.apply(spec)
    assert observed.state == "ready"
    assert observed.endpoint is not None
    assert observed.endpoint.host == f"{spec.resource_name}-rw.{spec.namespace}.svc.cluster.local"
    assert observed.endpoint.database == "vectorplane_data"
    assert (
        harness.custom.calls
        == [("postgresql.cnpg.io", "v1", spec.namespace, "clusters", spec.resource_name)] * 2
    )
    assert harness.apps.calls == []


def test_statefulset_readiness_rules() -> None:
    assert statefulset_readiness(statefulset(replicas=2, ready=2), 2).ready
    assert not statefulset_readiness(statefulset(replicas=2, ready=2), 3).ready  # resize pending
    assert not statefulset_readiness(statefulset(replicas=2, ready=1), 2).ready


# --------------------------------------------------------------------------- passphrase, backend


def test_default_passphrase_is_a_generated_state_secret(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VECTORPLANE_PULUMI_PASSPHRASE")
    harness = Harness()
    harness.driver.apply(make_spec())
    harness.driver.apply(make_spec())
    first, second = harness.automation.options
    assert first.env_vars is not None and second.env_vars is not None
    generated = (env / "secrets" / "pulumi-passphrase").read_text().strip()
    assert first.env_vars["PULUMI_CONFIG_PASSPHRASE"] == generated
    assert second.env_vars["PULUMI_CONFIG_PASSPHRASE"] == generated


def test_production_requires_an_explicit_passphrase(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VECTORPLANE_PULUMI_PASSPHRASE")
    monkeypatch.setenv("VECTORPLANE_ENV", "production")
    harness = Harness()
    with pytest.raises(PermanentError, match="VECTORPLANE_PULUMI_PASSPHRASE"):
        harness.driver.apply(make_spec())
    assert harness.automation.calls == []


def test_an_s3_backend_url_is_used_as_given(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECTORPLANE_PULUMI_BACKEND_URL", "s3://vp-state/clusters?region=eu-west-1")
    harness = Harness()
    harness.driver.apply(make_spec())
    (opts,) = harness.automation.options
    assert opts.project_settings is not None and opts.project_settings.backend is not None
    assert opts.project_settings.backend.url == "s3://vp-state/clusters?region=eu-west-1"
    assert not (env / "pulumi").exists()


# --------------------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    ("operation", "error", "expected"),
    [
        (
            "up",
            command_error(auto.ConcurrentUpdateError, "the stack is currently locked by 1 lock"),
            TransientError,
        ),
        (
            "up",
            command_error(
                auto.CommandError,
                'error: pods "vp-x-0" is forbidden: exceeded quota: tenant-quota',
            ),
            PermanentError,
        ),
        (
            "up",
            command_error(auto.CommandError, "dial tcp 10.0.0.1:6443: connect: connection refused"),
            TransientError,
        ),
        (
            "up",
            command_error(auto.CommandError, "error: Service is invalid: spec.ports: Required"),
            PermanentError,
        ),
        (
            "up",
            command_error(auto.CommandError, "error: an unhandled error occurred"),
            PermanentError,
        ),
        ("create_or_select_stack", FileNotFoundError("pulumi"), PermanentError),
    ],
)
def test_pulumi_errors_map_to_retry_or_failure(
    env: Path, operation: str, error: BaseException, expected: type[Exception]
) -> None:
    harness = Harness()
    harness.automation.errors[operation] = [error]
    with pytest.raises(expected) as raised:
        harness.driver.apply(make_spec())
    assert raised.value.__cause__ is error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ApiException(status=409, reason="Conflict"), TransientError),
        (ApiException(status=429, reason="Too Many Requests"), TransientError),
        (ApiException(status=503, reason="Service Unavailable"), TransientError),
        (ApiException(status=403, reason="Forbidden"), PermanentError),
        (ApiException(status=422, reason="Unprocessable Entity"), PermanentError),
        (urllib3.exceptions.MaxRetryError(None, "/apis/apps/v1", None), TransientError),  # type: ignore[arg-type]
        (ConnectionRefusedError("refused"), TransientError),
    ],
)
def test_kubernetes_errors_map_to_retry_or_failure(
    env: Path, error: BaseException, expected: type[Exception]
) -> None:
    harness = Harness(apps=[error])
    with pytest.raises(expected):
        harness.driver.apply(make_spec())


def test_an_invalid_spec_fails_before_any_stack_is_touched(env: Path) -> None:
    harness = Harness()
    bad = dataclasses.replace(make_spec(), size=Size("x", "lots", "1Gi", "10Gi"))
    with pytest.raises(PermanentError, match="not a Kubernetes quantity"):
        harness.driver.apply(bad)
    with pytest.raises(PermanentError, match="API server"):
        harness.driver.apply(make_spec("pgvector", 1, pg_operator="cloudnativepg"))
    assert harness.automation.calls == []


def test_a_busy_stack_on_destroy_is_transient(env: Path) -> None:
    harness = Harness()
    spec = make_spec()
    harness.driver.apply(spec)
    harness.automation.errors["destroy"] = [
        command_error(
            auto.ConcurrentUpdateError, "[409] Conflict: Another update is currently in progress."
        )
    ]
    with pytest.raises(TransientError, match="busy"):
        harness.driver.destroy(spec)
    assert spec.stack_name in harness.automation.stacks


# --------------------------------------------------------------------------- destroy, observe


def test_destroy_removes_the_stack_and_is_idempotent(env: Path) -> None:
    harness = Harness()
    spec = make_spec()
    harness.driver.apply(spec)
    work_dir = env / "pulumi-workspaces" / spec.stack_name
    assert work_dir.is_dir()

    harness.driver.destroy(spec)
    assert harness.automation.calls[-3:] == [
        ("select_stack", spec.stack_name),
        ("destroy", spec.stack_name),
        ("remove_stack", spec.stack_name),
    ]
    assert harness.automation.stacks == {}
    assert not work_dir.exists()

    harness.driver.destroy(spec)  # already gone: fine, and nothing destroyed twice
    assert harness.automation.calls[-1] == ("select_stack", spec.stack_name)
    assert [c for c in harness.automation.calls if c[0] == "destroy"] == [
        ("destroy", spec.stack_name)
    ]


def test_observe_reports_absent_ready_and_provisioning(env: Path) -> None:
    harness = Harness(
        apps=[
            statefulset(replicas=1, ready=1),  # apply
            statefulset(replicas=1, ready=1),  # observe: ready
            statefulset(replicas=1, ready=0),  # observe: a pod restarting
            ApiException(status=404, reason="Not Found"),  # deleted behind our back
        ]
    )
    spec = make_spec()
    assert harness.driver.observe(spec).state == "absent"
    assert harness.automation.stacks == {}  # observing creates nothing

    applied = harness.driver.apply(spec)
    ready = harness.driver.observe(spec)
    assert (ready.state, ready.endpoint) == ("ready", applied.endpoint)
    assert harness.driver.observe(spec).state == "provisioning"
    gone = harness.driver.observe(spec)
    assert gone.state == "absent" and "not found" in gone.message
    assert [c[0] for c in harness.automation.calls].count("up") == 1  # observing changes nothing


def test_observe_of_a_stack_that_never_finished_is_provisioning(env: Path) -> None:
    harness = Harness()
    spec = make_spec()
    harness.automation.errors["up"] = [command_error(auto.CommandError, "killed")]
    with pytest.raises(PermanentError):
        harness.driver.apply(spec)
    observed = harness.driver.observe(spec)
    assert observed.state == "provisioning"
    assert harness.kube_opened == 0


# --------------------------------------------------------------------------- integration


def _integration_missing() -> list[str]:
    missing = []
    if shutil.which("pulumi") is None:
        missing.append("the pulumi CLI on PATH")
    if not os.environ.get("KUBECONFIG"):
        missing.append("KUBECONFIG (a kubeconfig of a disposable cluster: kind, minikube)")
    return missing


def test_provisions_and_destroys_a_qdrant_cluster_on_a_real_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real Automation API and Kubernetes: a 1-replica Qdrant comes up ready, a second
    apply changes nothing, destroy removes it (and the retained tenant namespace is deleted
    here, as nothing else of this tenant lives in it)."""
    missing = _integration_missing()
    if missing:
        pytest.skip("needs " + " and ".join(missing))
    from kubernetes import client
    from kubernetes import config as kube_config

    monkeypatch.setenv("VECTORPLANE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("VECTORPLANE_PULUMI_BACKEND_URL", f"file://{tmp_path / 'backend'}")
    monkeypatch.setenv("VECTORPLANE_PULUMI_PASSPHRASE", "integration-test")
    monkeypatch.setenv("VECTORPLANE_KUBE_READY_TIMEOUT", "600")
    spec = ClusterSpec(
        cluster_id=uuid.uuid4().hex,
        tenant_id=uuid.uuid4().hex,
        tenant_slug="integration",
        engine="qdrant",
        size=Size("tiny", "250m", "256Mi", "1Gi", 1),
        credentials={"api_key": uuid.uuid4().hex},
        stack_name=f"it-{uuid.uuid4().hex[:12]}",
    )
    driver = KubernetesDriver()
    try:
        observed = driver.apply(spec)
        assert observed.state == "ready", observed
        assert observed.endpoint is not None
        assert observed.endpoint.url.endswith(f".{spec.namespace}.svc.cluster.local:6333")
        assert driver.apply(spec).state == "ready"
        assert driver.observe(spec).state == "ready"
    finally:
        driver.destroy(spec)
        api = kube_config.new_client_from_config(
            config_file=os.environ["KUBECONFIG"],
            context=os.environ.get("VECTORPLANE_KUBE_CONTEXT") or None,
            persist_config=False,
        )
        try:
            with contextlib.suppress(ApiException):
                client.CoreV1Api(api).delete_namespace(spec.namespace)
        finally:
            api.close()
    assert driver.observe(spec).state == "absent"
