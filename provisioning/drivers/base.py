"""The boundary between the control plane and whatever runs tenant clusters.

A driver turns a `ClusterSpec` (what the control plane wants) into running engines and reports
an `Observed` state. Drivers are called only from Celery tasks (never from a web request), with
plain data (no Django models), and must be idempotent: `apply` on a cluster that already matches
its spec returns its endpoint without creating anything twice; `destroy` on a cluster that is
gone succeeds.

Errors: raise `TransientError` for what may succeed if retried (a busy stack, a timeout, a
connection refused while a server starts); `PermanentError` for what will not (invalid spec,
quota refused by Kubernetes, missing binary). The task retries the first with backoff and moves
the cluster to `failed` on the second.
"""

from __future__ import annotations

from typing import Protocol

# The spec and what a driver observes are the kernel's (infra's Pulumi programs read them too).
from vectorplane.contract.clusters import (
    ClusterSpec,
    Endpoint,
    EngineName,
    Observed,
    ObservedState,
    Size,
)

__all__ = [
    "ClusterSpec",
    "Driver",
    "DriverError",
    "Endpoint",
    "EngineName",
    "Observed",
    "ObservedState",
    "PermanentError",
    "Size",
    "TransientError",
]


class DriverError(Exception):
    pass


class TransientError(DriverError):
    """May succeed if retried (with backoff)."""


class PermanentError(DriverError):
    """Will not succeed if retried: the cluster goes to `failed` with this message."""


class Driver(Protocol):
    name: str

    def apply(self, spec: ClusterSpec) -> Observed:
        """Create the cluster, or update it to match `spec` (resize). Blocks until the engine
        answers (state `ready`) or raises. Idempotent."""
        ...

    def destroy(self, spec: ClusterSpec) -> None:
        """Remove the cluster and its data. Idempotent: a cluster that is gone is fine."""
        ...

    def observe(self, spec: ClusterSpec) -> Observed:
        """What is running now, without changing anything (the reconcile task's probe)."""
        ...
