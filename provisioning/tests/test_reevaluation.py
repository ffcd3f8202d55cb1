"""Keeping an index at its target recall: evaluated again, as the system, when its last
evaluation is old (the beat's `indexes_reevaluate`) and after a large write (the tables
`indexes_analyze` just ANALYZEd), with its last evaluation's parameters; never an index without
a target, never twice at once, never another index of the same names."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from provisioning import reevaluation
from provisioning.models import EvaluationStatus, Index, IndexEvaluation
from tenants.models import AuditEvent, Tenant
from tenants.scoping import tenant_scope

pytestmark = pytest.mark.django_db


def _index(owner: Any, name: str, target: float | None) -> Index:
    client = APIClient()
    client.force_authenticate(owner)
    made = client.post("/api/v1/tenants/acme/indexes", {"name": name, "dimension": 4},
                       format="json")  # fmt: skip
    assert made.status_code == 201, made.json()
    index: Index = Index.objects.unscoped().get(pk=made.json()["id"])
    Index.objects.unscoped().filter(pk=index.pk).update(target_recall=target)
    return index


def _evaluations(index: Index) -> list[IndexEvaluation]:
    with tenant_scope(index.tenant_id):
        return list(IndexEvaluation.objects.filter(index=index).order_by("created_at"))


def test_an_index_with_a_target_is_evaluated_again_when_its_evaluation_is_old(
    owner: Any, tenant: Tenant
) -> None:
    targeted = _index(owner, "targeted", 0.95)
    plain = _index(owner, "plain", None)
    assert reevaluation.indexes_reevaluate() == {"due": 1, "started": 1}
    (first,) = _evaluations(targeted)
    assert first.status == EvaluationStatus.PENDING and first.created_by == "system"
    assert _evaluations(plain) == []
    audit = AuditEvent.objects.unscoped().get(action="index.evaluation_started")
    assert audit.actor_label == "system" and audit.target_id == str(targeted.id)
    # Still pending: not started twice.
    assert reevaluation.indexes_reevaluate()["started"] == 0

    # A recent success is not due; one older than VECTORPLANE_REEVALUATE_HOURS (24) is, with
    # its parameters repeated.
    with tenant_scope(tenant.id):
        IndexEvaluation.objects.filter(pk=first.pk).update(
            status=EvaluationStatus.SUCCEEDED, finished_at=timezone.now(),
            params={"mode": "sample", "sample": 50, "top_k": 5, "ef_search": [20, 80],
                    "namespace": "docs", "filter": {"kind": "a"}},
        )  # fmt: skip
    assert reevaluation.indexes_reevaluate()["due"] == 0
    assert reevaluation.indexes_reevaluate(timezone.now() + timedelta(hours=25))["started"] == 1
    again = _evaluations(targeted)[-1]
    assert again.params == {"mode": "sample", "sample": 50, "top_k": 5, "ef_search": [20, 80],
                            "namespace": "docs", "filter": {"kind": "a"}}  # fmt: skip


def test_a_large_write_evaluates_the_index_of_that_table_only(
    owner: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = _index(owner, "mine", 0.9)
    other = _index(owner, "other", 0.9)
    started = reevaluation.after_large_writes([f"{mine.schema_name}.{mine.table_name}",
                                               f"{other.schema_name}.i_not_an_index",
                                               "garbage"])  # fmt: skip
    assert started == 1
    assert len(_evaluations(mine)) == 1 and _evaluations(other) == []
    # A table name under another tenant's schema never selects this tenant's index.
    foreign = f"t_{other_tenant.id.hex}.{other.table_name}"
    assert reevaluation.after_large_writes([foreign]) == 0
