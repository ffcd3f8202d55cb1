"""Plan checks that the apps built on tenants call (with the limits of
`selectors.tenant_effective_limits`: the plan's, replaced field by field by the tenant's
override). Each raises 403 `plan_limit` naming what the plan allows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controlplane.errors import ApplicationError


def require_tier_allowed(*, limits: Mapping[str, Any], tier: str) -> None:
    allowed = limits["allowed_tiers"]
    if tier not in allowed:
        raise ApplicationError(
            "plan_limit",
            f"Your plan does not include the {tier} tier.",
            status=403,
            details={"tier": tier, "allowed_tiers": allowed},
        )


def require_engine_allowed(*, limits: Mapping[str, Any], engine: str) -> None:
    allowed = limits["allowed_engines"]
    if engine not in allowed:
        raise ApplicationError(
            "plan_limit",
            f"Your plan does not include the {engine} engine.",
            status=403,
            details={"engine": engine, "allowed_engines": allowed},
        )
