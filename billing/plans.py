"""Which plans a tenant may buy, and whether its current use fits a plan it asks for: a
downgrade that the tenant's indexes, vectors or clusters would exceed is refused with
`409 plan_limits_exceeded` and what exceeds (before Checkout, so nobody pays for a plan the
platform would then refuse)."""

from __future__ import annotations

from typing import Any

from controlplane.errors import ApplicationError, ConflictError
from provisioning import selectors as provisioning
from tenants.models import Plan, Tenant
from tenants.scoping import tenant_scope


def purchasable_plan(slug: str) -> Plan:
    """A public plan with a price: what Checkout sells (the free plan is reached by cancelling
    in the Customer Portal; private plans are assigned by operators)."""
    plan = Plan.objects.filter(slug=slug).first()
    if plan is None:
        raise ApplicationError(
            "unknown_plan", f"There is no plan {slug!r}.", details={"plan": slug}
        )
    if not plan.is_public or plan.monthly_price_cents <= 0:
        raise ApplicationError(
            "plan_not_purchasable",
            f"The {plan.slug} plan cannot be bought: paid public plans only (cancel the "
            "subscription in the billing portal to return to the free plan).",
            details={"plan": plan.slug},
        )
    return plan


def exceeded_by(tenant: Tenant, plan: Plan) -> dict[str, dict[str, Any]]:
    """What the tenant uses now beyond `plan`'s limits (empty: it fits)."""
    exceeded: dict[str, dict[str, Any]] = {}
    with tenant_scope(tenant.id):
        indexes = list(provisioning.index_list().values_list("dimension", "tier", "engine"))
        clusters = provisioning.cluster_list().count()
    if len(indexes) > plan.max_indexes:
        exceeded["max_indexes"] = {"used": len(indexes), "limit": plan.max_indexes}
    if clusters > plan.max_clusters:
        exceeded["max_clusters"] = {"used": clusters, "limit": plan.max_clusters}
    widest = max((dimension for dimension, _t, _e in indexes), default=0)
    if widest > plan.max_dimension:
        exceeded["max_dimension"] = {"used": widest, "limit": plan.max_dimension}
    tiers = sorted({tier for _d, tier, _e in indexes} - set(plan.allowed_tiers))
    if tiers:
        exceeded["allowed_tiers"] = {"used": tiers, "limit": list(plan.allowed_tiers)}
    engines = sorted({engine for _d, _t, engine in indexes} - set(plan.allowed_engines))
    if engines:
        exceeded["allowed_engines"] = {"used": engines, "limit": list(plan.allowed_engines)}
    if indexes:
        stored = sum(provisioning.stored_vectors(tenant_id=tenant.id).values())
        if stored > plan.max_vectors:
            exceeded["max_vectors"] = {"used": stored, "limit": plan.max_vectors}
    return exceeded


def require_fits(tenant: Tenant, plan: Plan) -> None:
    exceeded = exceeded_by(tenant, plan)
    if exceeded:
        names = ", ".join(sorted(exceeded))
        raise ConflictError(
            "plan_limits_exceeded",
            f"The tenant uses more than the {plan.slug} plan allows ({names}): remove what "
            "exceeds it first.",
            details={"plan": plan.slug, "exceeded": exceeded},
        )
