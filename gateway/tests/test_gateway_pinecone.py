"""The official `pinecone` client (10.2.0), unchanged, against both servers: the control plane
(granian WSGI) for the index lifecycle and the gateway (granian ASGI) for the data plane, at the
`host` the control plane announces."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from pinecone import (
    ApiError,
    ByocSpec,
    ForbiddenError,
    NotFoundError,
    Pinecone,
    ServerlessSpec,
    SparseValues,
    UnauthorizedError,
    Vector,
)
from pinecone import Index as PineconeIndex

from gateway.tests.conftest import (
    TARGETS,
    Gateway,
    Platform,
    Server,
    TenantCtx,
    conformance,
    data_rows,
    unique,
)
from provisioning.models import Index
from tenants.models import Scope
from tenants.scoping import tenant_scope

approx = pytest.approx


# Part of the conformance suite: every test here runs on each target.
platform = pytest.fixture(params=TARGETS, name="platform")(conformance)


def where(tenant: TenantCtx) -> ServerlessSpec | ByocSpec:
    """The `spec=` that puts an index on the tenant's target."""
    if tenant.target == "shared":
        return ServerlessSpec(cloud="aws", region="us-east-1")
    return ByocSpec(environment=tenant.dedicated().name)


@pytest.fixture
def account(platform: Platform) -> tuple[TenantCtx, str]:
    t = platform.tenant()
    return t, t.key(scopes=[Scope.READ, Scope.WRITE, Scope.ADMIN])


@pytest.fixture
def clients() -> Iterator[ExitStack]:
    """Every client a test opens (`Pinecone`, `Index`) is closed at its end."""
    with ExitStack() as stack:
        yield stack


@pytest.fixture
def pc(
    control_plane_server: Server, account: tuple[TenantCtx, str], clients: ExitStack
) -> Pinecone:
    return clients.enter_context(Pinecone(api_key=account[1], host=control_plane_server.url))


def open_index(clients: ExitStack, pc: Pinecone, name: str = "", host: str = "") -> PineconeIndex:
    """`pc.Index(...)` (REST, never gRPC here), closed at the end of the test."""
    index = pc.Index(name=name, host=host)
    assert isinstance(index, PineconeIndex)
    return clients.enter_context(index)


def _index_row(tenant: TenantCtx, name: str) -> Index:
    with tenant_scope(tenant.id):
        return Index.objects.exclude(status="deleted").get(name=name)


def test_pinecone_client_end_to_end(
    pc: Pinecone, gateway: Gateway, account: tuple[TenantCtx, str], clients: ExitStack
) -> None:
    tenant, _key = account
    name = unique("pc")
    assert pc.has_index(name) is False
    created = pc.create_index(name=name, dimension=3, metric="cosine", spec=where(tenant))
    assert (created.name, created.dimension, created.metric) == (name, 3, "cosine")
    if tenant.target != "shared":
        assert created.deployment.environment == tenant.dedicated().name
    described = pc.describe_index(name)
    assert described.host == f"{gateway.url}/v1/indexes/{name}"
    assert described.status.ready is True and described.deletion_protection == "disabled"
    assert name in [i.name for i in pc.list_indexes()]
    assert pc.has_index(name) is True

    idx = open_index(clients, pc, name)
    upserted = idx.upsert(
        vectors=[
            ("a", [0.1, 0.2, 0.3], {"genre": "drama", "year": 2020}),
            {"id": "b", "values": [0.3, 0.2, 0.1], "metadata": {"genre": "comedy", "tags": ["x"]}},
            Vector(id="c", values=[0.2, 0.2, 0.2], metadata={"genre": "drama", "year": 2024}),
            Vector(
                id="s",
                values=[0.1, 0.1, 0.9],
                sparse_values=SparseValues(indices=[1, 7], values=[0.5, 0.25]),
            ),
        ]
    )
    assert upserted.upserted_count == 4
    assert idx.upsert(vectors=[("a", [9.0, 9.0, 9.0])], namespace="ns1").upserted_count == 1

    drama = idx.query(
        vector=[0.1, 0.2, 0.3], top_k=5, filter={"genre": {"$eq": "drama"}}, include_metadata=True
    )
    assert [m.id for m in drama.matches] == ["a", "c"]
    assert drama.matches[0].score == approx(1.0, abs=1e-6)
    assert drama.matches[1].metadata == {"genre": "drama", "year": 2024}
    recent = idx.query(vector=[0.1, 0.2, 0.3], top_k=5, filter={"year": {"$gte": 2021}})
    assert [m.id for m in recent.matches] == ["c"]
    by_id = idx.query(id="a", top_k=1, include_values=True, namespace="ns1")
    assert by_id.namespace == "ns1"
    assert [(m.id, m.values) for m in by_id.matches] == [("a", [9.0, 9.0, 9.0])]

    fetched = idx.fetch(ids=["a", "s", "missing"])
    assert set(fetched.vectors) == {"a", "s"}
    assert fetched.vectors["a"].values == approx([0.1, 0.2, 0.3], rel=1e-6)
    assert fetched.vectors["a"].metadata == {"genre": "drama", "year": 2020}
    sparse = fetched.vectors["s"].sparse_values
    assert sparse is not None and (list(sparse.indices), list(sparse.values)) == (
        [1, 7],
        [0.5, 0.25],
    )
    assert set(idx.fetch(ids=["a"], namespace="ns1").vectors) == {"a"}

    idx.update(id="a", values=[0.3, 0.2, 0.1], set_metadata={"genre": "comedy"})
    after = idx.fetch(ids=["a"]).vectors["a"]
    assert after.values == approx([0.3, 0.2, 0.1], rel=1e-6)
    assert after.metadata == {"genre": "comedy", "year": 2020}

    # Pages of 2; id order on pgvector, point order on Qdrant (docs/qdrant-engine.md).
    pages = [[str(v.id) for v in page.vectors] for page in idx.list(limit=2)]
    ordered = tenant.target != "qdrant"
    assert [len(p) for p in pages] == [2, 2]
    flat = sorted(i for page in pages for i in page)
    assert pages == [["a", "b"], ["c", "s"]] if ordered else flat == list("abcs")
    first = idx.list_paginated(prefix="", limit=3)
    assert len(first.vectors) == 3
    assert first.pagination is not None and first.pagination.next
    rest = idx.list_paginated(prefix="", limit=3, pagination_token=first.pagination.next)
    assert sorted(str(v.id) for v in [*first.vectors, *rest.vectors]) == list("abcs")
    assert not (rest.pagination and rest.pagination.next)
    assert [v.id for v in idx.list_paginated(prefix="b", limit=5).vectors] == ["b"]

    stats = idx.describe_index_stats()
    assert stats.total_vector_count == 5 and stats.dimension == 3
    assert {ns: s.vector_count for ns, s in stats.namespaces.items()} == {"": 4, "ns1": 1}
    comedy = idx.describe_index_stats(filter={"genre": "comedy"})
    assert comedy.total_vector_count == 2

    idx.delete(ids=["b"])
    idx.delete(filter={"genre": {"$in": ["comedy"]}})
    assert sorted(idx.fetch(ids=["a", "b", "c", "s"]).vectors) == ["c", "s"]
    idx.delete(delete_all=True, namespace="ns1")
    assert {ns: s.vector_count for ns, s in idx.describe_index_stats().namespaces.items()} == {
        "": 2
    }
    row = _index_row(tenant, name)
    assert set(data_rows(row)) == {("", "c"), ("", "s")}

    configured = pc.configure_index(name, deletion_protection="enabled", tags={"env": "test"})
    assert configured.deletion_protection == "enabled"
    with pytest.raises(ForbiddenError):
        pc.delete_index(name)
    assert pc.has_index(name) is True
    assert idx.describe_index_stats().total_vector_count == 2  # still served
    pc.configure_index(name, deletion_protection="disabled")
    pc.delete_index(name)
    assert pc.has_index(name) is False
    with pytest.raises(NotFoundError):
        idx.query(vector=[1.0, 2.0, 3.0], top_k=1)


def test_pinecone_client_hybrid_and_errors(
    pc: Pinecone,
    control_plane_server: Server,
    gateway: Gateway,
    account: tuple[TenantCtx, str],
    clients: ExitStack,
) -> None:
    tenant, key = account
    name = unique("hy")
    pc.create_index(name=name, dimension=3, metric="dotproduct", spec=where(tenant))
    idx = open_index(clients, pc, host=f"{gateway.url}/v1/indexes/{name}")  # explicit
    idx.upsert(
        vectors=[
            {"id": "dense", "values": [1.0, 1.0, 0.0]},
            {
                "id": "sparse",
                "values": [0.5, 0.5, 0.0],
                "sparse_values": {"indices": [3], "values": [4.0]},
            },
        ]
    )
    res = idx.query(
        vector=[1.0, 1.0, 0.0], sparse_vector={"indices": [3], "values": [1.0]}, top_k=2
    )
    assert [m.id for m in res.matches] == ["sparse", "dense"]
    assert [m.score for m in res.matches] == approx([5.0, 2.0])

    with pytest.raises(ApiError) as bad:
        idx.upsert(vectors=[("x", [1.0, 2.0])])
    assert bad.value.status_code == 400 and "dimension" in str(bad.value).lower()
    with pytest.raises(ApiError) as bad:
        idx.query(vector=[1.0, 2.0, 3.0], top_k=1, filter={"year": {"$regex": "x"}})
    assert bad.value.status_code == 400
    nowhere = open_index(clients, pc, host=f"{gateway.url}/v1/indexes/{unique('no')}")
    with pytest.raises(NotFoundError):
        nowhere.describe_index_stats()

    # A key without the admin scope reads the control plane but cannot change it.
    reader = clients.enter_context(
        Pinecone(api_key=tenant.key(scopes=[Scope.READ]), host=control_plane_server.url)
    )
    assert reader.describe_index(name).name == name
    with pytest.raises(ForbiddenError):
        reader.create_index(
            name=unique("no"), dimension=3, spec=ServerlessSpec(cloud="aws", region="us-east-1")
        )
    with pytest.raises(ForbiddenError):
        open_index(clients, reader, name).upsert(vectors=[("y", [1.0, 2.0, 3.0])])
    stranger = clients.enter_context(
        Pinecone(api_key="vpk_abcdefghijkl_" + "x" * 43, host=control_plane_server.url)
    )
    with pytest.raises(UnauthorizedError):
        stranger.list_indexes()
    with pytest.raises(UnauthorizedError):
        open_index(
            clients, stranger, host=f"{gateway.url}/v1/indexes/{name}"
        ).describe_index_stats()
    assert key in tenant.keys  # the admin key of `pc`
    pc.delete_index(name)


def test_pinecone_client_metadata_with_none_values(
    pc: Pinecone, clients: ExitStack, account: tuple[TenantCtx, str]
) -> None:
    name = unique("nul")
    pc.create_index(name=name, dimension=3, spec=where(account[0]))
    idx = open_index(clients, pc, name)
    metadata: dict[str, Any] = {"genre": "drama", "gone": None}
    idx.upsert(vectors=[("a", [0.1, 0.2, 0.3], metadata)])
    assert idx.fetch(ids=["a"]).vectors["a"].metadata == {"genre": "drama"}
