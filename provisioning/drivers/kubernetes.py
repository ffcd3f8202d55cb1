"""The `kubernetes` driver: tenant clusters as Pulumi stacks on a Kubernetes cluster.

Each dedicated cluster is one stack (`spec.stack_name`) of the Pulumi project
`vectorplane-clusters`, run through the Automation API with the inline program of
`infra.program.cluster_program`: the tenant namespace (quota, limits, network policies) and a
pgvector or Qdrant StatefulSet (or a CloudNativePG `Cluster`). After `pulumi up`, the driver
reads the stack outputs (endpoint, workload) and waits with the Kubernetes API until every
replica is ready; Pulumi itself is told not to wait (`pulumi.com/skipAwait`), so one timeout
(`VECTORPLANE_KUBE_READY_TIMEOUT`) governs readiness.

Settings (read at each call, through `vectorplane.config`):

- `VECTORPLANE_PULUMI_BACKEND_URL`: where stack state lives; default `file://<state dir>/pulumi`
  (created), `s3://bucket/prefix?region=...` (or any Pulumi DIY backend) in production.
- `VECTORPLANE_PULUMI_PASSPHRASE`: encrypts the secrets in the state; default a secret generated
  once in the state dir, required in production.
- `KUBECONFIG` (default `~/.kube/config`, or the pod's service account inside a cluster) and
  `VECTORPLANE_KUBE_CONTEXT` (default: the kubeconfig's current context; stack config
  `kubernetes:context`).
- `VECTORPLANE_GATEWAY_NAMESPACE` (default `vectorplane`) and `VECTORPLANE_GATEWAY_POD_LABELS`
  (default `vectorplane.io/engine-access=true`, as `k=v,k=v`): the only pods let in.
- `VECTORPLANE_KUBE_READY_TIMEOUT` (default 600 s), `VECTORPLANE_KUBE_POLL_INTERVAL` (5 s).
- `VECTORPLANE_KUBE_API_CIDRS` (API server addresses, required for CloudNativePG, whose pods
  talk to the API through the default-deny egress) and `VECTORPLANE_CNPG_NAMESPACE`
  (default `cnpg-system`).
- `VECTORPLANE_IMAGE_PGVECTOR`, `VECTORPLANE_IMAGE_QDRANT`, `VECTORPLANE_IMAGE_CNPG`: override
  the pinned images of `infra.program.DEFAULT_IMAGES` (a private registry, say).

Errors: a busy stack (`ConcurrentUpdateError`), a readiness timeout, a connection error, and
Kubernetes answering 409, 429 or 5xx are `TransientError` (the task retries with backoff); an
invalid spec, a missing Pulumi CLI, a Kubernetes 4xx (quota exceeded, forbidden, invalid) and
any other failed Pulumi command are `PermanentError` (the cluster goes to `failed`).

The Automation API and the Kubernetes client are reached through two seams, `automation` and
`kube`, so the orchestration is tested without a Pulumi CLI or an API server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import urllib3
from kubernetes.client.exceptions import ApiException
from pulumi import automation as auto
from pulumi.automation.errors import InvalidVersionError

from infra.components import CNPG_GROUP, CNPG_PLURAL, CNPG_VERSION
from infra.program import (
    PROJECT_NAME,
    SpecError,
    check_stack_name,
    cluster_program,
    validate_spec,
)
from vectorplane import config

from .base import (
    ClusterSpec,
    DriverError,
    Endpoint,
    Observed,
    ObservedState,
    PermanentError,
    TransientError,
)

logger = logging.getLogger(__name__)

KUBE_REQUEST_TIMEOUT = 15  # seconds, per Kubernetes API call
MAX_MESSAGE = 2000

# Markers in a failed Pulumi command's output. Checked in this order: what Kubernetes refused
# on the merits stays refused; what failed on the way may succeed on a retry.
PERMANENT_MARKERS = (
    "exceeded quota",
    "is forbidden",
    "is invalid",
    "admission webhook",
    "no matches for kind",  # a CRD (CloudNativePG) is not installed
    "unauthorized",
)
TRANSIENT_MARKERS = (
    "connection refused",
    "connection reset",
    "i/o timeout",
    "timed out",
    "timeout",
    "context deadline exceeded",
    "too many requests",
    "the server is currently unable to handle the request",
    "service unavailable",
    "etcdserver",
    "the object has been modified",
    "unreachable",
    "no such host",
    "the stack is currently locked",
)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class KubernetesSettings:
    backend_url: str
    passphrase: str
    work_root: Path
    kubeconfig: str | None = None
    context: str | None = None
    gateway_namespace: str = "vectorplane"
    gateway_pod_labels: Mapping[str, str] = field(
        default_factory=lambda: {"vectorplane.io/engine-access": "true"}
    )
    ready_timeout: float = 600.0
    poll_interval: float = 5.0
    api_server_cidrs: tuple[str, ...] = ()
    cnpg_namespace: str = "cnpg-system"
    images: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> KubernetesSettings:
        backend = config.env_str("VECTORPLANE_PULUMI_BACKEND_URL", "")
        if not backend:
            backend = f"file://{config.state_dir() / 'pulumi'}"
        if backend.startswith("file://"):
            Path(backend.removeprefix("file://")).expanduser().mkdir(parents=True, exist_ok=True)
        passphrase = os.environ.get("VECTORPLANE_PULUMI_PASSPHRASE")
        if not passphrase:
            if config.is_production():
                raise config.ConfigError(
                    "VECTORPLANE_PULUMI_PASSPHRASE is required in production (it encrypts the "
                    "secrets in every cluster's Pulumi state)"
                )
            passphrase = config.state_secret("pulumi-passphrase")
        labels = _parse_labels(
            config.env_list("VECTORPLANE_GATEWAY_POD_LABELS", ["vectorplane.io/engine-access=true"])
        )
        images = {
            key: os.environ[f"VECTORPLANE_IMAGE_{key.upper()}"]
            for key in ("pgvector", "qdrant", "cnpg")
            if os.environ.get(f"VECTORPLANE_IMAGE_{key.upper()}")
        }
        timeout = config.env_int("VECTORPLANE_KUBE_READY_TIMEOUT", 600)
        interval = config.env_int("VECTORPLANE_KUBE_POLL_INTERVAL", 5)
        if timeout <= 0 or interval <= 0:
            raise config.ConfigError("Kubernetes readiness timeout and poll interval must be > 0")
        return cls(
            backend_url=backend,
            passphrase=passphrase,
            work_root=config.state_dir() / "pulumi-workspaces",
            kubeconfig=config.env_str("KUBECONFIG", "") or None,
            context=config.env_str("VECTORPLANE_KUBE_CONTEXT", "") or None,
            gateway_namespace=config.env_str("VECTORPLANE_GATEWAY_NAMESPACE", "vectorplane"),
            gateway_pod_labels=labels,
            ready_timeout=float(timeout),
            poll_interval=float(interval),
            api_server_cidrs=tuple(config.env_list("VECTORPLANE_KUBE_API_CIDRS", [])),
            cnpg_namespace=config.env_str("VECTORPLANE_CNPG_NAMESPACE", "cnpg-system"),
            images=images,
        )

    def gateway_selector(self) -> dict[str, dict[str, str]]:
        return {
            "namespace_labels": {"kubernetes.io/metadata.name": self.gateway_namespace},
            "pod_labels": dict(self.gateway_pod_labels),
        }


def _parse_labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise config.ConfigError(
                f"VECTORPLANE_GATEWAY_POD_LABELS must be key=value pairs, got {item!r}"
            )
        labels[key.strip()] = value.strip()
    return labels


# --------------------------------------------------------------------------- seams


class WorkspaceHandle(Protocol):
    def remove_stack(self, stack_name: str) -> None: ...


class StackHandle(Protocol):
    """What the driver uses of `pulumi.automation.Stack`."""

    @property
    def workspace(self) -> WorkspaceHandle: ...

    def set_all_config(self, config: Mapping[str, auto.ConfigValue]) -> None: ...

    def up(self, *, on_output: Callable[[str], Any], color: str, show_secrets: bool) -> Any: ...

    def destroy(self, *, on_output: Callable[[str], Any], color: str) -> Any: ...

    def outputs(self) -> Mapping[str, auto.OutputValue]: ...


class AutomationApi(Protocol):
    """The Automation API entry points the driver calls (module functions of
    `pulumi.automation` by default)."""

    def create_or_select_stack(
        self,
        stack_name: str,
        *,
        project_name: str,
        program: Callable[[], None],
        opts: auto.LocalWorkspaceOptions,
    ) -> StackHandle: ...

    def select_stack(
        self,
        stack_name: str,
        *,
        project_name: str,
        program: Callable[[], None],
        opts: auto.LocalWorkspaceOptions,
    ) -> StackHandle: ...


class PulumiAutomation:
    """The real Automation API (needs the `pulumi` CLI on PATH)."""

    def create_or_select_stack(
        self,
        stack_name: str,
        *,
        project_name: str,
        program: Callable[[], None],
        opts: auto.LocalWorkspaceOptions,
    ) -> StackHandle:
        stack: Any = auto.create_or_select_stack(
            stack_name, project_name=project_name, program=program, opts=opts
        )
        return cast(StackHandle, stack)

    def select_stack(
        self,
        stack_name: str,
        *,
        project_name: str,
        program: Callable[[], None],
        opts: auto.LocalWorkspaceOptions,
    ) -> StackHandle:
        stack: Any = auto.select_stack(
            stack_name, project_name=project_name, program=program, opts=opts
        )
        return cast(StackHandle, stack)


@dataclass(frozen=True)
class KubeClients:
    """`apps`: an `AppsV1Api`; `custom`: a `CustomObjectsApi` (or fakes of them)."""

    apps: Any
    custom: Any


KubeFactory = Callable[[KubernetesSettings], contextlib.AbstractContextManager[KubeClients]]


@contextlib.contextmanager
def kubernetes_clients(settings: KubernetesSettings) -> Iterator[KubeClients]:
    """API clients for the same cluster Pulumi deploys to: `KUBECONFIG` (or the default
    kubeconfig) and its context, or the pod's service account when running in a cluster."""
    from kubernetes import client
    from kubernetes import config as kube_config

    try:
        if settings.kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            configuration = client.Configuration()
            kube_config.load_incluster_config(client_configuration=configuration)
            api_client = client.ApiClient(configuration)
        else:
            api_client = kube_config.new_client_from_config(
                config_file=settings.kubeconfig, context=settings.context, persist_config=False
            )
    except kube_config.ConfigException as exc:
        raise PermanentError(f"cannot load the Kubernetes configuration: {exc}") from exc
    try:
        yield KubeClients(
            apps=client.AppsV1Api(api_client), custom=client.CustomObjectsApi(api_client)
        )
    finally:
        api_client.close()


def _noop_program() -> None:
    """`select_stack` wants a program; destroy and outputs never run it."""


# --------------------------------------------------------------------------- readiness


@dataclass(frozen=True)
class Workload:
    kind: str  # "StatefulSet" or "Cluster" (CloudNativePG)
    name: str
    namespace: str
    replicas: int


@dataclass(frozen=True)
class Readiness:
    ready: bool
    ready_replicas: int
    replicas: int
    message: str
    found: bool = True


def statefulset_readiness(statefulset: Any, expected: int) -> Readiness:
    """Like `kubectl rollout status`: the controller has seen the latest spec, every replica is
    updated to the current revision and ready, and the spec asks for `expected` replicas."""
    spec_replicas = statefulset.spec.replicas if statefulset.spec.replicas is not None else 1
    status = statefulset.status
    ready = (status.ready_replicas or 0) if status else 0
    if status is None or (status.observed_generation or 0) < (statefulset.metadata.generation or 0):
        return Readiness(False, ready, expected, "the controller has not seen the latest spec")
    if spec_replicas != expected:
        return Readiness(False, ready, expected, f"spec has {spec_replicas} replicas")
    if ready < expected:
        return Readiness(False, ready, expected, f"{ready}/{expected} replicas ready")
    strategy = statefulset.spec.update_strategy
    if strategy is None or strategy.type in (None, "RollingUpdate"):
        if (status.updated_replicas or 0) < expected:
            return Readiness(False, ready, expected, "rolling update in progress")
        if status.update_revision and status.current_revision != status.update_revision:
            return Readiness(False, ready, expected, "rolling update in progress")
    return Readiness(True, ready, expected, f"{ready}/{expected} replicas ready")


def cnpg_readiness(cluster: Mapping[str, Any], expected: int) -> Readiness:
    status = cluster.get("status") or {}
    ready = int(status.get("readyInstances") or 0)
    instances = int((cluster.get("spec") or {}).get("instances") or 0)
    phase = str(status.get("phase") or "unknown")
    if instances != expected:
        return Readiness(False, ready, expected, f"spec has {instances} instances")
    if ready < expected:
        return Readiness(False, ready, expected, f"{ready}/{expected} instances ready ({phase})")
    return Readiness(True, ready, expected, f"{ready}/{expected} instances ready ({phase})")


# --------------------------------------------------------------------------- errors


def _summary(text: str) -> str:
    """The useful tail of a Pulumi command error (its stderr), bounded in size."""
    stderr = text.split(" stderr: ", 1)[-1]
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return "\n".join(lines[-15:])[-MAX_MESSAGE:]


def classify_command_error(exc: auto.CommandError) -> DriverError:
    text = str(exc)
    lowered = text.lower()
    message = f"pulumi: {_summary(text)}"
    if isinstance(exc, auto.ConcurrentUpdateError):
        return TransientError(f"the stack is busy with another update: {_summary(text)}")
    if any(marker in lowered for marker in PERMANENT_MARKERS):
        return PermanentError(message)
    if any(marker in lowered for marker in TRANSIENT_MARKERS):
        return TransientError(message)
    return PermanentError(message)


def classify_api_exception(exc: ApiException) -> DriverError:
    status = int(exc.status or 0)
    message = f"Kubernetes API {status or 'error'} {exc.reason or ''}".strip()
    if status == 0 or status in (409, 429) or status >= 500:
        return TransientError(message)
    return PermanentError(message)


@contextlib.contextmanager
def driver_errors(action: str, spec: ClusterSpec) -> Iterator[None]:
    """Translate what the Automation API, the Kubernetes client and the spec raise into the
    driver boundary's two errors. Anything unexpected propagates unchanged."""
    where = f"{action} {spec.stack_name}"
    try:
        yield
    except DriverError:
        raise
    except auto.CommandError as exc:
        raise classify_command_error(exc) from exc
    except ApiException as exc:
        raise classify_api_exception(exc) from exc
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
        raise TransientError(f"{where}: cannot reach the Kubernetes API: {exc}") from exc
    except FileNotFoundError as exc:
        raise PermanentError(f"{where}: the pulumi CLI is not installed ({exc})") from exc
    except subprocess.CalledProcessError as exc:
        raise PermanentError(f"{where}: the pulumi CLI failed to start ({exc})") from exc
    except InvalidVersionError as exc:
        raise PermanentError(f"{where}: unsupported pulumi CLI version: {exc}") from exc
    except (SpecError, config.ConfigError) as exc:
        raise PermanentError(f"{where}: {exc}") from exc


# --------------------------------------------------------------------------- driver


class KubernetesDriver:
    name = "kubernetes"

    def __init__(
        self,
        *,
        automation: AutomationApi | None = None,
        kube: KubeFactory | None = None,
        settings: KubernetesSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._automation = automation or PulumiAutomation()
        self._kube = kube or kubernetes_clients
        self._fixed_settings = settings
        self._sleep = sleep
        self._clock = clock

    # ------------------------------------------------------------------ boundary

    def apply(self, spec: ClusterSpec) -> Observed:
        with driver_errors("apply", spec):
            settings = self._settings()
            program = cluster_program(
                spec,
                gateway_selector=settings.gateway_selector(),
                images=settings.images,
                api_server_cidrs=settings.api_server_cidrs,
                cnpg_operator_namespace=settings.cnpg_namespace,
            )
            stack = self._automation.create_or_select_stack(
                spec.stack_name,
                project_name=PROJECT_NAME,
                program=program,
                opts=self._workspace_options(spec, settings),
            )
            stack.set_all_config(self._stack_config(settings))
            logger.info("pulumi up: stack %s (%s)", spec.stack_name, spec.engine)
            stack.up(on_output=self._output_logger(spec), color="never", show_secrets=False)
            outputs = _plain_outputs(stack.outputs())
            workload, endpoint = _read_outputs(outputs, spec)
            with self._kube(settings) as kube:
                readiness = self._wait_ready(kube, workload, settings)
        return Observed(
            "ready",
            endpoint,
            message=readiness.message,
            details=self._details(spec, settings, workload, readiness),
        )

    def destroy(self, spec: ClusterSpec) -> None:
        with driver_errors("destroy", spec):
            settings = self._settings()
            try:
                stack = self._automation.select_stack(
                    spec.stack_name,
                    project_name=PROJECT_NAME,
                    program=_noop_program,
                    opts=self._workspace_options(spec, settings),
                )
            except auto.StackNotFoundError:
                logger.info("pulumi destroy: stack %s is already gone", spec.stack_name)
            else:
                logger.info("pulumi destroy: stack %s", spec.stack_name)
                stack.destroy(on_output=self._output_logger(spec), color="never")
                stack.workspace.remove_stack(spec.stack_name)
            shutil.rmtree(settings.work_root / spec.stack_name, ignore_errors=True)

    def observe(self, spec: ClusterSpec) -> Observed:
        with driver_errors("observe", spec):
            settings = self._settings()
            validate_spec(spec)
            try:
                stack = self._automation.select_stack(
                    spec.stack_name,
                    project_name=PROJECT_NAME,
                    program=_noop_program,
                    opts=self._workspace_options(spec, settings),
                )
            except auto.StackNotFoundError:
                return Observed("absent", message="no Pulumi stack for this cluster")
            outputs = _plain_outputs(stack.outputs())
            if not outputs:
                return Observed(
                    "provisioning",
                    message="the stack exists but has no outputs (an update never finished)",
                )
            workload, endpoint = _read_outputs(outputs, spec)
            with self._kube(settings) as kube:
                readiness = self._readiness(kube, workload)
        details = self._details(spec, settings, workload, readiness)
        if not readiness.found:
            return Observed("absent", message=readiness.message, details=details)
        state: ObservedState = "ready" if readiness.ready else "provisioning"
        return Observed(state, endpoint, message=readiness.message, details=details)

    # ------------------------------------------------------------------ pieces

    def _settings(self) -> KubernetesSettings:
        return self._fixed_settings or KubernetesSettings.from_env()

    @staticmethod
    def _workspace_options(
        spec: ClusterSpec, settings: KubernetesSettings
    ) -> auto.LocalWorkspaceOptions:
        # A stable folder per stack (not a temporary one per call): it keeps Pulumi.yaml and
        # the stack settings, and nothing piles up in /tmp.
        check_stack_name(spec.stack_name)
        work_dir = settings.work_root / spec.stack_name
        work_dir.mkdir(parents=True, exist_ok=True)
        env = {"PULUMI_CONFIG_PASSPHRASE": settings.passphrase, "PULUMI_SKIP_UPDATE_CHECK": "true"}
        if settings.kubeconfig:
            env["KUBECONFIG"] = settings.kubeconfig
        return auto.LocalWorkspaceOptions(
            work_dir=str(work_dir),
            env_vars=env,
            secrets_provider="passphrase",
            project_settings=auto.ProjectSettings(
                name=PROJECT_NAME,
                runtime="python",
                backend=auto.ProjectBackend(url=settings.backend_url),
            ),
        )

    @staticmethod
    def _stack_config(settings: KubernetesSettings) -> dict[str, auto.ConfigValue]:
        if settings.context:
            return {"kubernetes:context": auto.ConfigValue(value=settings.context)}
        return {}

    @staticmethod
    def _output_logger(spec: ClusterSpec) -> Callable[[str], None]:
        def log(line: str) -> None:
            # Pulumi masks secret values as [secret] in its output.
            if line.strip():
                logger.info("[%s] %s", spec.stack_name, line.rstrip())

        return log

    def _readiness(self, kube: KubeClients, workload: Workload) -> Readiness:
        try:
            if workload.kind == "Cluster":
                cluster = kube.custom.get_namespaced_custom_object_status(
                    CNPG_GROUP,
                    CNPG_VERSION,
                    workload.namespace,
                    CNPG_PLURAL,
                    workload.name,
                    _request_timeout=KUBE_REQUEST_TIMEOUT,
                )
                return cnpg_readiness(cluster, workload.replicas)
            statefulset = kube.apps.read_namespaced_stateful_set_status(
                name=workload.name,
                namespace=workload.namespace,
                _request_timeout=KUBE_REQUEST_TIMEOUT,
            )
            return statefulset_readiness(statefulset, workload.replicas)
        except ApiException as exc:
            if exc.status == 404:
                return Readiness(
                    False,
                    0,
                    workload.replicas,
                    f"{workload.kind} {workload.namespace}/{workload.name} not found",
                    found=False,
                )
            raise

    def _wait_ready(
        self, kube: KubeClients, workload: Workload, settings: KubernetesSettings
    ) -> Readiness:
        deadline = self._clock() + settings.ready_timeout
        while True:
            readiness = self._readiness(kube, workload)
            if readiness.ready:
                return readiness
            if self._clock() >= deadline:
                raise TransientError(
                    f"{workload.kind} {workload.namespace}/{workload.name} not ready after "
                    f"{settings.ready_timeout:.0f}s: {readiness.message}"
                )
            self._sleep(settings.poll_interval)

    @staticmethod
    def _details(
        spec: ClusterSpec,
        settings: KubernetesSettings,
        workload: Workload,
        readiness: Readiness,
    ) -> dict[str, Any]:
        return {
            "stack": spec.stack_name,
            "project": PROJECT_NAME,
            "namespace": workload.namespace,
            "workload": f"{workload.kind}/{workload.name}",
            "ready_replicas": readiness.ready_replicas,
            "replicas": readiness.replicas,
            "backend": settings.backend_url.split("?", 1)[0],
        }


def _plain_outputs(outputs: Mapping[str, auto.OutputValue]) -> dict[str, Any]:
    return {key: output.value for key, output in outputs.items()}


def _read_outputs(outputs: Mapping[str, Any], spec: ClusterSpec) -> tuple[Workload, Endpoint]:
    """The workload to wait for and the endpoint, from the stack outputs of `infra.program`."""
    try:
        workload = Workload(
            kind=str(outputs["workload_kind"]),
            name=str(outputs["workload_name"]),
            namespace=str(outputs["namespace"]),
            replicas=int(outputs["replicas"]),
        )
        host, port = str(outputs["host"]), int(outputs["port"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(f"stack {spec.stack_name} lacks an expected output: {exc}") from exc
    if spec.engine == "pgvector":
        endpoint = Endpoint(host, port, database=str(outputs.get("database") or ""))
    else:
        endpoint = Endpoint(host, port, url=str(outputs.get("url") or ""))
    return workload, endpoint
