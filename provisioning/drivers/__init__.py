"""Cluster drivers: `local` (processes on this machine) and `kubernetes` (Pulumi)."""

from __future__ import annotations

from .base import Driver


def get_driver(name: str) -> Driver:
    if name == "local":
        from .local import LocalDriver

        return LocalDriver()
    if name == "kubernetes":
        from .kubernetes import KubernetesDriver  # type: ignore[import-not-found,unused-ignore]

        driver: Driver = KubernetesDriver()
        return driver
    raise ValueError(f"unknown cluster driver {name!r}")
