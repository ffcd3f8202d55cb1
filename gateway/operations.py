"""The data-plane operations, Pinecone's API: upsert, query, fetch, update, delete, list and
describe_index_stats. Each handler validates its request (`gateway/validation.py`), applies the
key's restrictions (namespaces, row filter, id prefix) and calls the index's store through the
`VectorStore` interface, the same on every engine; `OPERATIONS` is the route table
`gateway.app` builds from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from vectorplane.contract.filters import Filter, conjoin
from vectorplane.contract.limits import (
    MAX_BATCH,
    MAX_EF_SEARCH,
    MAX_FETCH_IDS,
    MAX_ID_BYTES,
    MAX_METADATA_BYTES,
    MAX_TOP_K,
)

from . import validation as v
from .backends import (
    MetadataTooLarge,
    QuotaExceeded,
    Record,
    RowFilterViolation,
    VectorStore,
    decode_token,
)
from .errors import GatewayError, bad_request
from .registry import IndexInfo, KeyInfo
from .runtime import Gateway


@dataclass
class Context:
    """One request's operation: the authenticated key, the index, the parsed JSON body, the
    store holding the index, and the usage it records (metered on success)."""

    key: KeyInfo
    index: IndexInfo
    body: dict[str, Any]  # JSON: validated field by field by the operation
    store: VectorStore
    usage: dict[str, int] = field(default_factory=dict)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _row_filter(key: KeyInfo) -> Filter:
    return key.row_guard


def _writable(key: KeyInfo, ids: list[str]) -> None:
    """A key's writes by id are confined to its `id_prefix`. A key bound to rows must have one
    (the control plane requires it): two end users' ids then never meet, so an upsert cannot
    reveal whether an id exists outside the key's rows (README, "Keys bound to rows")."""
    prefix = key.id_prefix
    if not prefix and key.row_filter is None:
        return
    if not prefix:  # a key made before id prefixes existed: fail closed
        raise GatewayError(
            403,
            "id_forbidden",
            "This key is bound to rows but has no id_prefix, so it may not write by id; "
            "mint a new key with an id_prefix.",
            {"id_prefix": ""},
        )
    for record_id in ids:
        if not record_id.startswith(prefix):
            raise GatewayError(
                403,
                "id_forbidden",
                "This API key may only write ids that start with its id_prefix.",
                {"id": record_id, "id_prefix": prefix},
            )


# ====================================================================== operations

Handler = Callable[[Gateway, Context, Request], Awaitable[Response]]

_RECORD_FIELDS = frozenset({"id", "values", "sparseValues", "metadata"})


async def op_upsert(gw: Gateway, ctx: Context, request: Request) -> Response:
    body, key, index = ctx.body, ctx.key, ctx.index
    v.check_fields(body, {"vectors", "namespace"})
    vectors = body.get("vectors")
    if not isinstance(vectors, list) or not vectors:
        raise bad_request("validation_error", "vectors must be a non-empty list.", field="vectors")
    limits = await gw.registry.limits(key.tenant_id)
    max_batch = min(MAX_BATCH, limits.max_upsert_batch)
    if len(vectors) > max_batch:
        raise bad_request(
            "batch_too_large",
            f"At most {max_batch} vectors per upsert.",
            max=max_batch,
            got=len(vectors),
        )
    namespace = v.namespace(body.get("namespace"), key.namespaces)
    max_meta = min(MAX_METADATA_BYTES, limits.max_metadata_bytes)
    allowed = _RECORD_FIELDS | {"text"} if index.text_field else _RECORD_FIELDS
    records = []
    for i, item in enumerate(vectors):
        if not isinstance(item, dict):
            raise bad_request("validation_error", f"vectors[{i}] must be an object.")
        item = v.present(item)
        unknown = sorted(set(item) - allowed)
        if unknown:
            raise bad_request("unknown_field", f"vectors[{i}]: unknown field {unknown[0]!r}.",
                              fields=unknown, index=i)  # fmt: skip
        metadata, metadata_json = v.metadata_and_json(
            item.get("metadata"), f"vectors[{i}].metadata", max_meta
        )
        if key.row_filter and not key.row_guard.test(metadata or {}):
            raise GatewayError(
                403,
                "row_filter_violation",
                f"vectors[{i}].metadata does not satisfy this key's row filter.",
                {"index": i, "row_filter": key.row_filter},
            )
        text = item.get("text")
        records.append(
            Record(
                id=v.record_id(item.get("id"), f"vectors[{i}].id"),
                values=v.dense(
                    item.get("values"), index.dimension, f"vectors[{i}].values", stored=True
                ),
                sparse=v.sparse(item.get("sparseValues"), f"vectors[{i}].sparseValues"),
                metadata=metadata,
                text=None if text is None else v.full_text(text, f"vectors[{i}].text"),
                metadata_json=metadata_json,
            )
        )
    _writable(key, [r.id for r in records])
    try:
        count = await ctx.store.upsert(
            index,
            namespace,
            records,
            max_vectors=limits.max_vectors,
            guard=key.row_guard,
        )
    except RowFilterViolation as exc:
        raise GatewayError(
            403,
            "row_filter_violation",
            "A vector with one of these ids exists outside this key's row filter.",
            {"row_filter": key.row_filter},
        ) from exc
    except QuotaExceeded as exc:
        raise GatewayError(
            403,
            "quota_exceeded",
            f"Your plan allows {exc.maximum} vectors.",
            {"limit": "max_vectors", "max": exc.maximum, "current": exc.current},
        ) from exc
    ctx.usage.update(write_units=count, vectors_written=count)
    return _json({"upsertedCount": count})


async def op_query(gw: Gateway, ctx: Context, request: Request) -> Response:
    body, key, index = ctx.body, ctx.key, ctx.index
    v.check_fields(body, {"vector", "id", "topK", "filter", "namespace", "includeValues",
                          "includeMetadata", "sparseVector", "text", "efSearch"})  # fmt: skip
    top_k = v.integer(body, "topK", 10, 1, MAX_TOP_K, code="invalid_top_k")
    namespace = v.namespace(body.get("namespace"), key.namespaces)
    where = conjoin(_row_filter(key), v.metadata_filter(body.get("filter")))
    if ("vector" in body) == ("id" in body):
        raise bad_request("validation_error", "Send exactly one of vector and id.")
    if "vector" in body:
        vector = v.dense(body["vector"], index.dimension, "vector", stored=False)
    else:
        record_id = v.record_id(body["id"])
        found = await ctx.store.vector_of(index, namespace, record_id, _row_filter(key))
        if found is None:
            raise GatewayError(404, "not_found", "No vector with that id.", {"id": record_id})
        vector = found
    sparse = v.sparse(body.get("sparseVector"), "sparseVector")
    if sparse is not None and index.metric != "dotproduct":
        raise bad_request(
            "unsupported_combination",
            "Sparse-dense queries need an index with the dotproduct metric (Pinecone's rule).",
            metric=index.metric,
        )
    text = body.get("text")
    if text is not None:
        if not index.text_field:
            raise bad_request(
                "unsupported_combination",
                "text queries need an index created with text_field.",
            )
        text = v.full_text(text, "text")
    ef = v.integer(body, "efSearch", index.ef_search, 1, MAX_EF_SEARCH)
    matches = await ctx.store.query(
        index, namespace, vector, top_k, where, ef_search=ef,
        include_values=v.boolean(body, "includeValues"),
        include_metadata=v.boolean(body, "includeMetadata"),
        sparse=sparse, text=text,
    )  # fmt: skip
    read_units = max(1, top_k // 100 + 1)
    ctx.usage.update(read_units=read_units, queries=1)
    return _json({"results": [], "matches": matches, "namespace": namespace,
                  "usage": {"readUnits": read_units}})  # fmt: skip


async def op_fetch(gw: Gateway, ctx: Context, request: Request) -> Response:
    """`GET ?ids=..&ids=..&namespace=` (Pinecone's), or `POST {"ids": [...], "namespace"}` (ours:
    the same answer, for id lists whose URL would pass the HTTP server's 64 KiB limit)."""
    key, index = ctx.key, ctx.index
    if request.method == "POST":
        v.check_fields(ctx.body, {"ids", "namespace"})
        ids = ctx.body.get("ids")
        if not isinstance(ids, list):
            raise bad_request("validation_error", "ids must be a list of ids.", field="ids")
        raw_namespace = ctx.body.get("namespace")
    else:
        params = v.query_params(request)
        ids = params.get("ids", [])
        raw_namespace = params.get("namespace", [None])[-1]
    if not ids:
        raise bad_request("validation_error", "Pass at least one id.", field="ids")
    if len(ids) > MAX_FETCH_IDS:
        raise bad_request("batch_too_large", f"At most {MAX_FETCH_IDS} ids.", max=MAX_FETCH_IDS)
    ids = [v.record_id(i, "ids") for i in ids]
    namespace = v.namespace(raw_namespace, key.namespaces)
    rows = await ctx.store.fetch(index, namespace, ids, _row_filter(key))
    vectors = {}
    for r in rows:
        item: dict[str, Any] = {"id": r["id"], "values": r["values"], "metadata": r["metadata"]}
        if r["sparse"] is not None:
            item["sparseValues"] = r["sparse"]
        vectors[r["id"]] = item
    ctx.usage.update(read_units=1)
    return _json({"vectors": vectors, "namespace": namespace, "usage": {"readUnits": 1}})


async def op_update(gw: Gateway, ctx: Context, request: Request) -> Response:
    body, key, index = ctx.body, ctx.key, ctx.index
    v.check_fields(body, {"id", "values", "sparseValues", "setMetadata", "namespace"})
    record_id = v.record_id(body.get("id"))
    _writable(key, [record_id])
    namespace = v.namespace(body.get("namespace"), key.namespaces)
    values = (
        v.dense(body["values"], index.dimension, "values", stored=True)
        if "values" in body
        else None
    )
    sparse = v.sparse(body.get("sparseValues"), "sparseValues")
    limits = await gw.registry.limits(key.tenant_id)
    max_meta = min(MAX_METADATA_BYTES, limits.max_metadata_bytes)
    set_metadata = v.metadata(body.get("setMetadata"), "setMetadata")
    check = key.row_guard.test if key.row_filter else None
    try:
        updated = await ctx.store.update(
            index, namespace, record_id, values=values, sparse=sparse,
            set_metadata=set_metadata, guard=_row_filter(key), new_metadata_check=check,
            max_metadata_bytes=max_meta,
        )  # fmt: skip
    except RowFilterViolation as exc:
        raise GatewayError(
            403,
            "row_filter_violation",
            "The updated metadata would not satisfy this key's row filter.",
        ) from exc
    except MetadataTooLarge as exc:
        raise bad_request(
            "metadata_too_large",
            f"The merged metadata would be {exc.size} bytes; the limit is {exc.maximum}.",
            bytes=exc.size,
            max_bytes=exc.maximum,
        ) from exc
    if not updated:
        raise GatewayError(404, "not_found", "No vector with that id.", {"id": record_id})
    ctx.usage.update(write_units=1, vectors_written=1)
    return _json({})


async def op_delete(gw: Gateway, ctx: Context, request: Request) -> Response:
    body, key, index = ctx.body, ctx.key, ctx.index
    v.check_fields(body, {"ids", "deleteAll", "filter", "namespace"})
    namespace = v.namespace(body.get("namespace"), key.namespaces)
    modes = [m for m in ("ids", "deleteAll", "filter") if body.get(m) not in (None, False)]
    if len(modes) != 1:
        raise bad_request("validation_error", "Send exactly one of ids, deleteAll and filter.")
    row = _row_filter(key)
    if modes == ["ids"]:
        ids = body["ids"]
        if not isinstance(ids, list) or not ids or len(ids) > MAX_BATCH:
            raise bad_request("validation_error", f"ids must be a list of 1-{MAX_BATCH} ids.")
        checked = [v.record_id(i, "ids") for i in ids]
        _writable(key, checked)
        deleted = await ctx.store.delete(index, namespace, ids=checked, where=row)
    elif modes == ["deleteAll"]:
        if body["deleteAll"] is not True:
            raise bad_request("validation_error", "deleteAll must be true.")
        deleted = await ctx.store.delete(index, namespace, where=row)
    else:
        if not isinstance(body["filter"], dict) or not body["filter"]:
            raise bad_request("invalid_filter", "filter must be a non-empty object.")
        deleted = await ctx.store.delete(
            index, namespace, where=conjoin(row, v.metadata_filter(body["filter"]))
        )
    ctx.usage.update(write_units=1, vectors_deleted=deleted)
    return _json({})


async def op_list(gw: Gateway, ctx: Context, request: Request) -> Response:
    key, index = ctx.key, ctx.index
    params = {name: values[-1] for name, values in v.query_params(request).items()}
    namespace = v.namespace(params.get("namespace"), key.namespaces)
    prefix = params.get("prefix", "")
    if "\x00" in prefix or v.text_bytes(prefix) > MAX_ID_BYTES:
        raise bad_request(
            "validation_error", f"prefix is over {MAX_ID_BYTES} bytes or holds NUL.",
            field="prefix",
        )  # fmt: skip
    limit = v.query_integer(params.get("limit"), "limit", 100, 1, v.MAX_LIST_LIMIT)
    after = None
    token = params.get("paginationToken")
    if token:
        try:
            after = decode_token(token)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request("invalid_cursor", "The paginationToken is not valid.") from exc
        if "\x00" in after or v.text_bytes(after) > MAX_ID_BYTES:
            raise bad_request("invalid_cursor", "The paginationToken is not valid.")
    ids, next_token = await ctx.store.list_ids(
        index, namespace, prefix, limit, after, _row_filter(key)
    )
    body: dict[str, Any] = {"vectors": [{"id": i} for i in ids], "namespace": namespace,
                            "usage": {"readUnits": 1}}  # fmt: skip
    if next_token:
        body["pagination"] = {"next": next_token}
    ctx.usage.update(read_units=1)
    return _json(body)


async def op_stats(gw: Gateway, ctx: Context, request: Request) -> Response:
    body, key, index = ctx.body, ctx.key, ctx.index
    v.check_fields(body, {"filter"})
    where = conjoin(_row_filter(key), v.metadata_filter(body.get("filter")))
    counts = await ctx.store.stats(index, where, key.namespaces)
    ctx.usage.update(read_units=1)
    return _json(
        {
            "namespaces": {ns: {"vectorCount": n} for ns, n in sorted(counts.items())},
            "dimension": index.dimension,
            "indexFullness": 0.0,
            "totalVectorCount": sum(counts.values()),
            "metric": index.metric,
            "vectorType": "dense",
        }
    )


# operation name -> (HTTP method, path under the index, scope, handler)
OPERATIONS: dict[str, tuple[str, str, str, Handler]] = {
    "upsert": ("POST", "vectors/upsert", "write", op_upsert),
    "query": ("POST", "query", "read", op_query),
    "fetch": ("GET", "vectors/fetch", "read", op_fetch),
    "update": ("POST", "vectors/update", "write", op_update),
    "delete": ("POST", "vectors/delete", "write", op_delete),
    "list": ("GET", "vectors/list", "read", op_list),
    "describe_index_stats": ("POST", "describe_index_stats", "read", op_stats),
}
# describe_index_stats is also a GET in Pinecone's API; fetch is also a POST in ours (a body
# holds 1,000 ids of 512 bytes; a URL over 65,534 bytes is refused by the HTTP server itself).
EXTRA_ROUTES = {
    ("GET", "describe_index_stats"): "describe_index_stats",
    ("POST", "vectors/fetch"): "fetch",
}
