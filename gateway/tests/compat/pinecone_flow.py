"""The basic control- and data-plane flow with whichever `pinecone` client this interpreter
has (5.x to 10.x), against a Vectorplane control plane. Run by gateway/tests/test_compat.py in
each client's venv:

    python pinecone_flow.py CONTROL_PLANE_URL API_KEY INDEX_NAME DEDICATED_INDEX_NAME

(DEDICATED_INDEX_NAME: an index the tenant has on a dedicated cluster, which the client must
list and describe too: a `byoc` spec, which 5.x and 6.x have no model for.)

Prints one JSON object: what each call answered, reduced to plain values, for the test to
check. Only calls and attributes that every supported version has are used (keyword
arguments everywhere: 9.x and later made the data plane keyword-only). No project import:
this runs outside the project's venv.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pinecone
from pinecone import Pinecone, ServerlessSpec


def plain(value: Any) -> Any:
    """Metadata and values as JSON (5.x-7.x answer their own model and list types)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return [plain(v) for v in value]


def describe(model: Any) -> dict[str, Any]:
    serverless = model.spec.serverless
    return {
        "name": model.name,
        "dimension": model.dimension,
        "metric": model.metric,
        "host": model.host,
        "ready": model.status.ready,
        "state": model.status.state,
        "deletion_protection": str(getattr(model, "deletion_protection", "")),
        "cloud": serverless.cloud,
        "region": serverless.region,
    }


def describe_dedicated(model: Any) -> dict[str, Any]:
    byoc: Any = model.spec.byoc  # 5.x, 6.x: a plain dict (an extra key)
    environment = byoc["environment"] if isinstance(byoc, dict) else byoc.environment
    return {"name": model.name, "dimension": model.dimension, "environment": environment}


def matches(response: Any) -> list[list[Any]]:
    return [[m.id, round(m.score, 4), plain(m.metadata)] for m in response.matches]


def fetched(index: Any, ids: list[str]) -> dict[str, Any]:
    vectors = index.fetch(ids=ids).vectors
    return {
        key: {"values": [round(v, 4) for v in vector.values], "metadata": plain(vector.metadata)}
        for key, vector in vectors.items()
    }


def main(control_plane: str, api_key: str, name: str, dedicated: str) -> dict[str, Any]:
    out: dict[str, Any] = {"version": pinecone.__version__}
    pc = Pinecone(api_key=api_key, host=control_plane)
    out["listed_before"] = [i.name for i in pc.list_indexes()]
    out["dedicated"] = describe_dedicated(pc.describe_index(dedicated))
    created = pc.create_index(
        name=name,
        dimension=3,
        metric="cosine",
        spec=ServerlessSpec(cloud="gcp", region="europe-west4"),
    )
    # 5.x answers None from create_index (it polls describe until ready).
    out["created"] = describe(created) if created is not None else None
    out["described"] = describe(pc.describe_index(name))
    out["listed"] = [i.name for i in pc.list_indexes()]
    out["has_index"] = [pc.has_index(name), pc.has_index(name + "-none")]

    index = pc.Index(name=name)
    out["upserted"] = index.upsert(
        vectors=[
            {"id": "a", "values": [1.0, 0.0, 0.0], "metadata": {"genre": "drama", "year": 2020}},
            {"id": "b", "values": [0.0, 1.0, 0.0], "metadata": {"genre": "comedy", "year": 2021}},
            {"id": "c", "values": [0.9, 0.1, 0.0], "metadata": {"genre": "drama", "tags": ["x"]}},
        ]
    ).upserted_count
    drama = {"genre": {"$eq": "drama"}}
    out["query"] = matches(
        index.query(vector=[1.0, 0.0, 0.0], top_k=3, filter=drama, include_metadata=True)
    )
    out["fetch"] = fetched(index, ["a", "b", "missing"])
    index.update(id="a", values=[0.0, 0.0, 1.0], set_metadata={"genre": "comedy"})
    out["fetch_updated"] = fetched(index, ["a"])
    out["query_updated"] = matches(
        index.query(vector=[1.0, 0.0, 0.0], top_k=3, filter=drama, include_metadata=True)
    )
    index.delete(ids=["b"])
    out["fetch_after_delete"] = sorted(fetched(index, ["a", "b", "c"]))
    stats = index.describe_index_stats()
    out["stats"] = {
        "total_vector_count": stats.total_vector_count,
        "dimension": stats.dimension,
        "namespaces": {ns: s.vector_count for ns, s in stats.namespaces.items()},
    }
    pc.delete_index(name)
    out["has_index_after_delete"] = pc.has_index(name)
    out["listed_after_delete"] = [i.name for i in pc.list_indexes()]
    return out


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5])))
