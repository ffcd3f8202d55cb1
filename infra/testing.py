"""Run a Pulumi program under `pulumi.runtime.set_mocks` and record what it declares.

Used by the unit tests of `infra` (policies, manifests) and of the `kubernetes` driver (whose
fake Automation API runs the real program the driver built). Nothing here talks to a Pulumi
engine, a CLI or Kubernetes.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
from pulumi.runtime.mocks import MockMonitor


@dataclass
class Recorded:
    """One registered resource: its type token, logical name, inputs as the engine receives
    them (camelCase keys, numbers as doubles, secrets wrapped), provider reference and
    retain-on-delete flag."""

    type: str
    name: str
    inputs: dict[str, Any]
    provider: str
    retain_on_delete: bool = False

    @property
    def kind(self) -> str:
        return str(self.inputs.get("kind", ""))

    @property
    def is_kubernetes(self) -> bool:
        return self.type.startswith("kubernetes:")


@dataclass
class MockRun:
    resources: list[Recorded]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Recorded]:
        return [r for r in self.resources if r.is_kubernetes and r.kind == kind]

    def one(self, kind: str) -> Recorded:
        found = self.of_kind(kind)
        if len(found) != 1:
            raise AssertionError(f"expected one {kind}, found {[r.name for r in found]}")
        return found[0]


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every registered resource; its state is its inputs (as a real create would
    echo them), its id `<namespace>/<name>` like the Kubernetes provider's."""

    def __init__(self) -> None:
        self.resources: list[Recorded] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(Recorded(args.typ, args.name, dict(args.inputs), args.provider or ""))
        metadata = args.inputs.get("metadata") or {}
        namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
        return f"{namespace or ''}/{args.name}", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


class RecordingMonitor(MockMonitor):
    """The mock monitor, also noting `retainOnDelete`, which MockResourceArgs does not carry."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.retained: dict[str, bool] = {}

    def RegisterResource(self, request: Any) -> Any:
        self.retained[request.name] = bool(request.retainOnDelete)
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


class LoopClosingExecutor(ThreadPoolExecutor):
    """The executor Pulumi makes its monitor calls on. The mock monitor gives each worker
    thread an event loop and never closes it, which warns when collected (and warnings are
    errors in this project's tests): close that loop after each call."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        def call() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                policy = asyncio.get_event_loop_policy()
                try:
                    loop = policy.get_event_loop()
                except RuntimeError:  # this thread has no loop
                    loop = None
                if loop is not None and not loop.is_running():
                    loop.close()
                    policy.set_event_loop(None)

        return super().submit(call)


def run_with_mocks(
    program: Callable[[], None], *, project: str = "project", stack: str = "stack"
) -> MockRun:
    """Run `program` as a stack would (resources registered, `pulumi.export`s resolved) in a
    fresh context — Pulumi keeps its settings and root stack in context variables — with an
    event loop of its own, closed afterwards."""
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    outputs: dict[str, Any] = {}

    def body() -> pulumi.Output[None]:
        program()
        root = cast(Any, pulumi.runtime.get_root_resource())
        return pulumi.Output.all(**root.outputs).apply(outputs.update)

    def in_context() -> None:
        loop = asyncio.new_event_loop()
        loop.set_default_executor(LoopClosingExecutor())
        asyncio.set_event_loop(loop)
        try:
            pulumi.runtime.set_mocks(
                mocks, project=project, stack=stack, preview=False, monitor=monitor
            )
            pulumi.runtime.test(body)()
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            asyncio.set_event_loop(None)

    contextvars.Context().run(in_context)
    for resource in mocks.resources:
        resource.retain_on_delete = monitor.retained.get(resource.name, False)
    return MockRun(mocks.resources, outputs)
