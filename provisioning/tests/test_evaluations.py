"""Index evaluations (`POST .../indexes/{name}/evaluate`): measured recall against an exact scan,
per ef_search value, run by a real Celery worker on the real shared tier; the target recall
that picks the index's ef_search; roles, isolation and validation."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from controlplane.celery import app as celery_app
from gateway.tests.conftest import RedisProcess, ensure_plans
from provisioning import connections
from provisioning.evaluation import smallest_meeting
from provisioning.models import Cluster, ClusterStatus, EvaluationStatus, Index, IndexEvaluation
from provisioning.storage import recall, shared_tier
from tenants.models import AuditEvent, Engine, Plan, Role, Scope, Tenant, Tier
from tenants.scoping import tenant_scope
from tenants.tests.factories import make_key
from tests.console.worker import WORKER_START, Worker
from vectorplane import pgsql
from vectorplane.pgfilters import compile_filter

BASE = "/api/v1/tenants/acme/indexes"
EVALUATION_BROKER_DB = 3  # a database of the session's Redis no other test queues on
WAIT = 120.0  # s: an evaluation of a tiny index takes well under a second
Rows = list[tuple[str, list[float], dict[str, Any]]]


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _index(client: APIClient, name: str = "tiny", dimension: int = 8, **extra: Any) -> Index:
    response = client.post(
        BASE, {"name": name, "dimension": dimension, "metric": "euclidean", **extra},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    index: Index = Index.objects.unscoped().get(pk=response.json()["id"])
    return index


def _load(index: Index, rows: Rows, ns: str = "") -> None:
    """Store vectors straight into the index's table (as the owner acting as the tenant)."""
    with shared_tier.connect() as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(index.tenant_id),))
        with conn.cursor() as cur:
            cur.executemany(
                f'INSERT INTO "{index.schema_name}"."{index.table_name}" '  # noqa: S608 - our names
                "(namespace, id, embedding, metadata) VALUES (%s, %s, %s::vector, %s::jsonb)",
                [(ns, i, pgsql.vector_text(v), json.dumps(m)) for i, v, m in rows],
            )
        conn.commit()


def _random_rows(n: int, dimension: int, seed: int = 7) -> Rows:
    rng = random.Random(seed)
    return [
        (f"v{i}", [rng.gauss(0, 1) for _ in range(dimension)], {"half": i % 2 == 0, "n": i})
        for i in range(n)
    ]


def _exact(rows: Rows, query: list[float], k: int) -> list[str]:
    def d(v: list[float]) -> float:
        return sum((a - b) ** 2 for a, b in zip(v, query, strict=True))

    return [i for i, v, _ in sorted(rows, key=lambda r: d(r[1]))[:k]]


# -------------------------------------------------------------------- the pure parts


def test_recall_counts_ties_and_empty_answers() -> None:
    exact = [("a", 0.1), ("b", 0.2), ("c", 0.3)]
    assert recall.recall_of(exact, exact) == 1.0
    assert recall.recall_of(exact, [("a", 0.1), ("x", 0.25), ("y", 0.9)]) == pytest.approx(2 / 3)
    # "z" is as close as the exact answer's last neighbour: an equally right answer.
    assert recall.recall_of(exact, [("a", 0.1), ("b", 0.2), ("z", 0.3)]) == 1.0
    assert recall.recall_of([], [("a", 0.1)]) is None
    assert recall.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert recall.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.95) == 5.0
    assert recall.percentile([], 0.5) is None


def test_smallest_meeting() -> None:
    results: list[dict[str, Any]] = [
        {"ef_search": 10, "recall": 0.80},
        {"ef_search": 40, "recall": 0.951},
        {"ef_search": 100, "recall": 0.99},
        {"ef_search": 200, "recall": None},
    ]
    assert smallest_meeting(results, 0.95) == 40
    assert smallest_meeting(results, 0.99) == 100
    assert smallest_meeting(results, 0.995) is None


# -------------------------------------------------------- a real worker, the real shared tier


@pytest.fixture
def plans(transactional_db: None) -> None:
    """The seeded plans, which an earlier transactional test's flush truncated."""
    ensure_plans()


@pytest.fixture
def evaluation_worker(
    plans: None, data_database: str, redis_server: RedisProcess, tmp_path: Path
) -> Iterator[Worker]:
    """A `celery -A controlplane worker` on the test databases; this process queues its tasks
    on the worker's broker (not eagerly) for the test."""
    broker = redis_server.url(EVALUATION_BROKER_DB)
    started = Worker(broker, tmp_path / "worker.log")
    conf: Any = celery_app.conf
    app: Any = celery_app
    saved = conf.task_always_eager, conf.broker_url
    try:
        if not started.ready.wait(WORKER_START) or started.proc.poll() is not None:
            pytest.fail(f"the Celery worker did not start:\n{started.tail()}")
        conf.task_always_eager = False
        conf.broker_url = broker
        app._after_fork()  # drop the connection pools made for another broker
        yield started
    finally:
        conf.task_always_eager, conf.broker_url = saved
        app._after_fork()
        started.stop()


def _wait_finished(client: APIClient, url: str) -> tuple[dict[str, Any], list[float]]:
    """Poll the evaluation until it ends; its body and every progress seen."""
    seen: list[float] = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        body = client.get(url).json()
        seen.append(body["progress"])
        if body["status"] in (EvaluationStatus.SUCCEEDED, EvaluationStatus.FAILED):
            return body, seen
        time.sleep(0.05)
    pytest.fail(f"the evaluation did not finish within {WAIT} s: {body}")


@pytest.mark.slow
def test_real_worker_measures_recall_and_tunes_ef_search(
    evaluation_worker: Worker, owner: Any, tenant: Tenant
) -> None:
    client = _client(owner)
    # A tiny index with the default graph (m=16): HNSW finds every neighbour.
    tiny = _index(client, name="tiny")
    _load(tiny, _random_rows(3000, 8))
    started = client.post(
        f"{BASE}/tiny/evaluate", {"sample": 60, "top_k": 10, "ef_search": [40, 100, 1000]},
        format="json",
    )  # fmt: skip
    assert started.status_code == 202, started.json()
    assert started.json()["status"] == "pending"  # queued: the worker has not run it yet
    tiny_id = started.json()["id"]
    body, progress = _wait_finished(client, f"{BASE}/tiny/evaluations/{tiny_id}")
    assert body["status"] == "succeeded", (body, evaluation_worker.tail())
    assert body["progress"] == 1.0 and progress == sorted(progress)
    results = {r["ef_search"]: r for r in body["results"]["by_ef_search"]}
    assert results[40]["recall"] == 1.0 and results[40]["hnsw_used"] is True
    assert results[100]["recall"] == 1.0 and results[100]["hnsw_used"] is True
    # ef_search 1000 over 3,000 rows: the planner prefers the exact scan, and says so.
    assert results[1000]["recall"] == 1.0 and results[1000]["hnsw_used"] is False
    assert all(r["queries"] == 60 and r["p50_ms"] <= r["p95_ms"] for r in results.values())
    assert body["results"]["exact_p50_ms"] > 0
    assert body["chosen_ef_search"] is None and body["target_recall"] is None  # no target

    # A sparse graph (m=4, ef_construction=16) over 1,000 vectors of 32 dimensions: a small
    # ef_search misses neighbours; the target picks the smallest value that meets it.
    sparse = _index(client, name="sparse", dimension=32, hnsw_m=4, hnsw_ef_construction=16)
    _load(sparse, _random_rows(1000, 32))
    patched = client.patch(f"{BASE}/sparse", {"target_recall": 0.9}, format="json")
    assert patched.status_code == 200 and patched.json()["target_recall"] == 0.9
    started = client.post(
        f"{BASE}/sparse/evaluate", {"sample": 100, "ef_search": [1, 20, 80, 400]},
        format="json",
    )  # fmt: skip
    sparse_id = started.json()["id"]
    body, _ = _wait_finished(client, f"{BASE}/sparse/evaluations/{sparse_id}")
    assert body["status"] == "succeeded", (body, evaluation_worker.tail())
    results = {r["ef_search"]: r for r in body["results"]["by_ef_search"]}
    assert results[1]["effective_ef_search"] == 11  # max(ef, top_k + 1): as the gateway does
    assert results[1]["hnsw_used"] is True and results[1]["recall"] < 0.9
    assert results[400]["recall"] == 1.0
    expected = min(ef for ef, r in results.items() if r["recall"] >= 0.9)
    assert expected > 1
    assert body["target_recall"] == 0.9 and body["chosen_ef_search"] == expected
    assert client.get(f"{BASE}/sparse").json()["ef_search"] == expected
    with tenant_scope(tenant.id):
        tuned = AuditEvent.objects.get(action="index.ef_search_tuned")
    assert tuned.details["ef_search"] == {"from": 100, "to": expected}
    assert tuned.details["evaluation"] == sparse_id and tuned.actor_type == "system"
    assert client.get(f"{BASE}/tiny").json()["ef_search"] == 100  # no target: unchanged

    # Given queries (no own id to drop), and the list, newest first.
    second = client.post(
        f"{BASE}/tiny/evaluate", {"queries": [[0.1] * 8], "top_k": 5, "ef_search": [40]},
        format="json",
    )  # fmt: skip
    assert second.status_code == 202
    body, _ = _wait_finished(client, f"{BASE}/tiny/evaluations/{second.json()['id']}")
    assert body["status"] == "succeeded" and body["params"]["queries"] == 1
    assert body["results"]["by_ef_search"][0]["recall"] == 1.0
    assert body["results"]["by_ef_search"][0]["effective_ef_search"] == 40
    listed = client.get(f"{BASE}/tiny/evaluations").json()["data"]
    assert [e["id"] for e in listed] == [second.json()["id"], tiny_id]


# ----------------------------------------------------------- in process (tasks run eagerly)


def test_filtered_evaluation_measures_the_matching_rows(
    plans: None, owner: Any, tenant: Tenant
) -> None:
    client = _client(owner)
    index = _index(client)
    rows = _random_rows(300, 8)
    _load(index, rows)
    _load(index, _random_rows(50, 8, seed=9), ns="other")
    response = client.post(
        f"{BASE}/tiny/evaluate",
        {"sample": 1000, "filter": {"half": True}, "ef_search": [500], "top_k": 3},
        format="json",
    )
    assert response.status_code == 202, response.json()
    body = response.json()  # eager: the task ran in the request's on_commit
    assert body["status"] == "succeeded", body
    result = body["results"]["by_ef_search"][0]
    assert body["results"]["queries"] == 150  # the sample is the 150 matching rows of ns ""
    assert result["recall"] == 1.0 and result["queries"] == 150


def test_exact_answer_is_the_true_top_k(plans: None, owner: Any, tenant: Tenant) -> None:
    """The exact scan the recall is measured against ranks like a brute force in Python."""
    client = _client(owner)
    index = _index(client, hnsw_m=2, hnsw_ef_construction=4)
    rows = _random_rows(400, 8, seed=3)
    _load(index, rows)
    query = [0.3, -0.2, 0.1, 0.0, 0.5, -0.4, 0.2, 0.1]
    target = recall.Target(tenant.id, index.schema_name, index.table_name, "euclidean", "vector")
    with shared_tier.connect() as conn:
        evaluator = recall.Evaluator(conn, target, namespace="", where=compile_filter({}), top_k=10)
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
            conn.execute("SELECT set_config('enable_indexscan', 'off', true)")
            exact = [row_id for row_id, _ in evaluator._neighbours(pgsql.vector_text(query), 10)]
            plan = conn.execute(
                f'EXPLAIN SELECT id FROM "{index.schema_name}"."{index.table_name}" '  # noqa: S608
                "ORDER BY embedding <-> %s::vector LIMIT 10", (pgsql.vector_text(query),)
            ).fetchall()  # fmt: skip
    assert exact == _exact(rows, query, 10)
    assert "hnsw" not in " ".join(str(r[0]) for r in plan).lower()


def test_an_empty_index_fails_with_a_reason(plans: None, owner: Any, tenant: Tenant) -> None:
    client = _client(owner)
    _index(client)
    body = client.post(f"{BASE}/tiny/evaluate", {}, format="json").json()
    assert body["status"] == "failed" and "no stored vector" in body["error"]
    assert body["params"]["ef_search"] == [40, 100, 200] and body["params"]["sample"] == 100


@pytest.mark.django_db
def test_validation_errors_have_codes(owner: Any, tenant: Tenant) -> None:
    client = _client(owner)
    _index(client)
    url = f"{BASE}/tiny/evaluate"
    cases: list[tuple[Any, str]] = [
        ({"sample": 0}, "validation_error"),
        ({"sample": 10001}, "validation_error"),
        ({"top_k": 0}, "validation_error"),
        ({"top_k": 101}, "validation_error"),
        ({"ef_search": []}, "validation_error"),
        ({"ef_search": [0]}, "validation_error"),
        ({"ef_search": [1001]}, "validation_error"),
        ({"ef_search": list(range(1, 12))}, "validation_error"),
        ({"sample": "5"}, "validation_error"),
        ({"queries": []}, "validation_error"),
        ({"queries": [[1.0] * 7]}, "dimension_mismatch"),
        ({"queries": [[1e39] * 8]}, "invalid_value"),
        ({"filter": {"x": {"$bogus": 1}}}, "invalid_filter"),
        ({"filter": "x"}, "invalid_filter"),
        ({"namespace": "a\x00b"}, "validation_error"),
        ({"surprise": 1}, "unknown_field"),
    ]
    for body, code in cases:
        response = client.post(url, body, format="json")
        assert response.status_code == 400, (body, response.json())
        assert response.json()["error"]["code"] == code, (body, response.json())
    nan = client.post(url, '{"queries": [[NaN, 1, 1, 1, 1, 1, 1, 1]]}',
                      content_type="application/json")  # fmt: skip
    assert nan.status_code == 400 and nan.json()["error"]["code"] == "malformed_json"
    assert client.patch(f"{BASE}/tiny", {"target_recall": 0.3}, format="json").status_code == 400
    assert client.patch(f"{BASE}/tiny", {"target_recall": 1.0}, format="json").status_code == 400
    with tenant_scope(tenant.id):
        assert not IndexEvaluation.objects.exists()


@pytest.mark.django_db
def test_roles_isolation_and_one_at_a_time(
    owner: Any, tenant: Tenant, other_tenant: Tenant, members: dict[str, Any]
) -> None:
    client = _client(owner)
    _index(client)
    started = client.post(f"{BASE}/tiny/evaluate", {"sample": 5}, format="json")
    # (no on_commit here: the test's transaction never commits, so the row stays pending)
    assert started.status_code == 202 and started.json()["status"] == "pending"
    evaluation_id = started.json()["id"]
    again = client.post(f"{BASE}/tiny/evaluate", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "evaluation_in_progress"

    viewer = _client(members[Role.VIEWER])
    denied = viewer.post(f"{BASE}/tiny/evaluate", {}, format="json")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"
    assert viewer.get(f"{BASE}/tiny/evaluations").status_code == 200
    assert viewer.get(f"{BASE}/tiny/evaluations/{evaluation_id}").status_code == 200
    member = _client(members[Role.MEMBER])
    assert member.patch(f"{BASE}/tiny", {"target_recall": 0.95}, format="json").status_code == 200
    assert viewer.patch(f"{BASE}/tiny", {"target_recall": 0.9}, format="json").status_code == 403

    # Another tenant's owner: 404 everywhere, the same as an index that does not exist.
    evil_user = tenant.memberships.model.objects.unscoped().get(tenant=other_tenant).user
    evil = _client(evil_user)
    for response in (
        evil.post(f"{BASE}/tiny/evaluate", {}, format="json"),
        evil.get(f"{BASE}/tiny/evaluations"),
        evil.get(f"{BASE}/tiny/evaluations/{evaluation_id}"),
    ):
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    _, evil_key = make_key(other_tenant, scopes=[Scope.READ, Scope.WRITE, Scope.ADMIN])
    by_key = APIClient()
    by_key.credentials(HTTP_API_KEY=evil_key)
    for response in (
        by_key.post(f"{BASE}/tiny/evaluate", {}, format="json"),
        by_key.get(f"{BASE}/tiny/evaluations"),
        by_key.get(f"{BASE}/tiny/evaluations/{evaluation_id}"),
    ):
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    # A data-plane key of the tenant (no admin scope) cannot start one either.
    _, data_key = make_key(tenant, scopes=[Scope.READ, Scope.WRITE])
    by_data_key = APIClient()
    by_data_key.credentials(HTTP_API_KEY=data_key)
    refused = by_data_key.post(f"{BASE}/tiny/evaluate", {}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
    # ... and within their own tenant, an index of the same name does not show ours.
    evil.post("/api/v1/tenants/evil/indexes", {"name": "tiny", "dimension": 8}, format="json")
    theirs = evil.get(f"/api/v1/tenants/evil/indexes/tiny/evaluations/{evaluation_id}")
    assert theirs.status_code == 404
    assert evil.get("/api/v1/tenants/evil/indexes/tiny/evaluations").json()["data"] == []
    assert client.get(f"{BASE}/tiny/evaluations/not-a-uuid").status_code == 404

    # An evaluation whose worker was lost (no progress for 10 minutes) does not block the
    # index: the next start marks it failed.
    with tenant_scope(tenant.id):
        IndexEvaluation.objects.filter(pk=evaluation_id).update(
            status="running", updated_at=timezone.now() - timedelta(minutes=11)
        )
    restarted = client.post(f"{BASE}/tiny/evaluate", {}, format="json")
    assert restarted.status_code == 202, restarted.json()
    abandoned = client.get(f"{BASE}/tiny/evaluations/{evaluation_id}").json()
    assert abandoned["status"] == "failed" and abandoned["error"].startswith("abandoned")


@pytest.mark.django_db
def test_qdrant_indexes_are_refused_with_a_stable_code(owner: Any, tenant: Tenant) -> None:
    with tenant_scope(tenant.id):
        Index.objects.create(
            tenant=tenant, name="q", dimension=8, engine=Engine.QDRANT, tier=Tier.DEDICATED,
            vector_type="vector", status="ready", schema_name="", table_name="c_x",
        )  # fmt: skip
    response = _client(owner).post(f"{BASE}/q/evaluate", {}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "evaluation_unsupported"


@pytest.mark.server  # a local pgvector cluster: a real PostgreSQL server of its own
@pytest.mark.django_db
def test_a_dedicated_pgvector_index_is_measured_on_its_cluster(
    owner: Any, tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(plan=Plan.objects.get(slug="pro"))
    client = _client(owner)
    with django_capture_on_commit_callbacks(execute=True):
        made = client.post("/api/v1/tenants/acme/clusters",
                           {"name": "c1", "engine": "pgvector", "size": "xs"}, format="json")
    assert made.status_code == 202, made.json()
    cluster = Cluster.objects.unscoped().get(tenant=tenant, name="c1")
    assert cluster.status == ClusterStatus.READY, cluster.status_message
    index = _index(client, name="ded", tier="dedicated", cluster="c1")
    rows = _random_rows(500, 8, seed=5)
    with shared_tier.connect(connections.cluster_pg_url(cluster)) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        with conn.cursor() as cur:
            cur.executemany(
                f'INSERT INTO "{index.schema_name}"."{index.table_name}" '  # noqa: S608 - ours
                "(id, embedding) VALUES (%s, %s::vector)",
                [(i, pgsql.vector_text(v)) for i, v, _ in rows],
            )
        conn.commit()
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"{BASE}/ded/evaluate", {"sample": 20, "ef_search": [40]},
                              format="json")  # fmt: skip
    assert started.status_code == 202, started.json()
    body = client.get(f"{BASE}/ded/evaluations/{started.json()['id']}").json()
    assert body["status"] == "succeeded", body
    assert body["results"]["queries"] == 20  # sampled from the cluster's table
    assert body["results"]["by_ef_search"][0]["recall"] == 1.0
    with shared_tier.connect() as conn:  # the shared tier has no such table
        found = conn.execute("SELECT to_regclass(%s)",
                             (f"{index.schema_name}.{index.table_name}",)).fetchone()  # fmt: skip
    assert found == (None,)
