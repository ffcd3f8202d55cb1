"""The shared pgvector tier as the gateway sees it: every statement runs in a transaction that
first takes the tenant's role (`SET LOCAL ROLE`: the only rights on its tables; the gateway's
login role owns nothing and may use no table itself) and sets `app.tenant_id` (row-level
security) and the HNSW search settings. Table and column names come from the registry (control
plane), never from requests; every value is a parameter."""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import orjson
from psycopg import AsyncConnection, sql
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from vectorplane import pgerrors
from vectorplane.contract.filters import EMPTY, Filter
from vectorplane.contract.storage import SPARSE_DIMENSIONS, tenant_role_name
from vectorplane.pgfilters import Compiled, sql_of
from vectorplane.pgsql import DISTANCE_OPERATOR, vector_text

from . import (
    BackendUnavailable,
    Fetched,
    IndexRef,
    Match,
    MetadataTooLarge,
    QuotaExceeded,
    Record,
    RowFilterViolation,
    Sparse,
    encode_token,
    reported,
)

# deadlock_detected, serialization_failure: the transaction was rolled back, run it again.
_RETRIED_SQLSTATES = frozenset({"40P01", "40001"})

# The default bound of the filtered-query planner (VECTORPLANE_EXACT_SCAN_ROWS), and the rows
# its estimate samples.
EXACT_SCAN_ROWS = 10_000
SAMPLE_ROWS = 2_000

_role_of = functools.lru_cache(maxsize=65536)(tenant_role_name)

# How a distance (DISTANCE_OPERATOR's) becomes Pinecone's score.


def score(metric: str, distance: float) -> float:
    if metric == "cosine":
        return 1.0 - distance  # cosine similarity
    if metric == "dotproduct":
        return -distance  # pgvector's <#> is the negative inner product
    return distance * distance  # euclidean: Pinecone's squared distance (lower is closer)


def sparse_text(indices: Sequence[int], values: Sequence[float], dims: int) -> str:
    # pgvector's sparsevec text form is 1-based: {i1:v1,i2:v2}/dims
    inner = ",".join(f"{i + 1}:{float(v)!r}" for i, v in zip(indices, values, strict=True))
    return "{" + inner + "}/" + str(dims)


def parse_vector(text: str) -> list[float]:
    # pgvector prints `[1,2.5,...]`, which is JSON.
    return [float(x) for x in orjson.loads(text)] if text else []


def parse_sparse(text: str | None) -> dict[str, list[Any]] | None:
    if not text:
        return None
    body = text[text.index("{") + 1 : text.index("}")]
    indices: list[int] = []
    values: list[float] = []
    for part in filter(None, body.split(",")):
        i, v = part.split(":")
        indices.append(int(i) - 1)
        values.append(float(v))
    return {"indices": indices, "values": values}


async def _configure(conn: AsyncConnection[Any]) -> None:
    """jsonb is read with orjson: faster, and the same reader as the request's, so a number is
    always one the response writer can write (jsonb prints a stored 1e20 as an integer of 21
    digits, which the standard library reads as an int that orjson cannot write back)."""
    set_json_loads(orjson.loads, conn)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _translated(
    method: Callable[_P, Coroutine[Any, Any, _R]],
) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """The engine's outages as BackendUnavailable (vectorplane/pgerrors.py says which errors
    mean "the database does not answer"); a deadlock or serialization failure (concurrent
    writes of the same rows: the transaction was rolled back whole) is run again, twice at
    most; every other error propagates (a bug: a 500)."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        for attempt in range(3):
            try:
                return await method(*args, **kwargs)
            except Exception as exc:
                if pgerrors.unavailable(exc):
                    raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from exc
                if attempt < 2 and getattr(exc, "sqlstate", None) in _RETRIED_SQLSTATES:
                    continue
                raise
        raise AssertionError("unreachable")

    return wrapper


def dense_statement(
    index: IndexRef, where: Compiled, extra_cols: sql.Composable, *, bound: int
) -> sql.Composed:
    """The dense search, one statement.

    Unfiltered (or `bound` 0): the HNSW index's `limit` nearest. Filtered, the planner for
    filtered queries, as Qdrant's cardinality estimate does it: the filter's matches are
    estimated from a sample of `SAMPLE_ROWS` rows (`m`: `TABLESAMPLE SYSTEM_ROWS`, a few dozen
    pages whatever the table's size, scaled by the table's row count from its statistics; a
    table smaller than the sample is counted exactly), and the estimate decides, inside
    PostgreSQL, between two branches gated by one-time filters — only one runs. Fewer than
    `bound`: every match ranked exactly (`e`: the metadata GIN index finds them; recall 1.0,
    and no graph walk that skips nearly everything it visits). Otherwise: the HNSW index with
    an iterative (relaxed-order) scan (`a`), which finds `limit` matches of a broad filter
    quickly — its ef_search raised for the filter's share `f` of the rows, to
    ef / sqrt(f) (at most 1,000; `m` sets it with `set_config` before the scan's first tuple:
    at a share of 10% the graph walk needs a longer candidate list for the same recall).
    MATERIALIZED + a final ORDER BY: a relaxed-order scan may return its candidates
    slightly out of order. (Taking 4x as many candidates from it and keeping the best did not
    raise recall: GloVe 400k, 10% filter, 0.905 against 0.910.)"""
    op = sql.SQL(DISTANCE_OPERATOR[index.metric])
    cast = sql.SQL(index.vector_type)
    table = sql.Identifier(index.schema_name, index.table_name)
    select = sql.SQL(
        "SELECT id, metadata, embedding {op} %s::{cast} AS d{extra} FROM {table}"
    ).format(op=op, cast=cast, extra=extra_cols, table=table)
    if not bound:
        return sql.SQL(
            "WITH c AS MATERIALIZED ({select} WHERE namespace = %s AND {where} "
            "ORDER BY embedding {op} %s::{cast} LIMIT %s) SELECT * FROM c ORDER BY d"
        ).format(select=select, where=where.sql, op=op, cast=cast)
    return sql.SQL(
        "WITH m AS MATERIALIZED (SELECT hits * greatest((SELECT reltuples FROM pg_class "
        "WHERE oid = %s::regclass), seen) / greatest(seen, 1) AS n, "
        "set_config('hnsw.ef_search', least(1000, greatest(base, ceil(base / sqrt(greatest("
        "hits::float8 / greatest(seen, 1), 0.0001)))))::int::text, true) AS ef "
        "FROM (SELECT count(*) FILTER (WHERE namespace = %s AND {where}) AS hits, "
        "count(*) AS seen, current_setting('hnsw.ef_search')::int AS base "
        "FROM {table} TABLESAMPLE SYSTEM_ROWS(%s)) s), "
        "e AS MATERIALIZED (SELECT * FROM ({select} WHERE namespace = %s AND {where} OFFSET 0) x "
        "WHERE (SELECT n FROM m) < %s ORDER BY d LIMIT %s), "
        "a AS MATERIALIZED ({select} WHERE (SELECT n FROM m) >= %s "
        "AND (SELECT ef FROM m) IS NOT NULL AND namespace = %s "
        "AND {where} ORDER BY embedding {op} %s::{cast} LIMIT %s) "
        "SELECT * FROM e UNION ALL SELECT * FROM a ORDER BY d"
    ).format(table=table, where=where.sql, select=select, op=op, cast=cast)


def dense_params(
    qtext: str, namespace: str, where: Compiled, limit: int, *, bound: int, relation: str = ""
) -> list[Any]:
    """The parameters of `dense_statement`, in its placeholders' order (`relation`: the
    table's qualified, quoted name, for its row count)."""
    w = list(where.params)
    if not bound:
        return [qtext, namespace, *w, qtext, limit]
    return [
        relation, namespace, *w, SAMPLE_ROWS,  # m
        qtext, namespace, *w, bound, limit,  # e
        qtext, bound, namespace, *w, qtext, limit,  # a
    ]  # fmt: skip


def relation_name(index: IndexRef) -> str:
    """The index table's qualified name as `regclass` reads it."""
    return f'"{index.schema_name}"."{index.table_name}"'


class PgvectorStore:
    """A `VectorStore` over one pgvector database (the shared tier, or a dedicated cluster's),
    connected as the gateway's role, under row-level security."""

    def __init__(
        self, url: str, *, min_size: int = 2, max_size: int = 16,
        exact_scan_rows: int = EXACT_SCAN_ROWS,
    ) -> None:  # fmt: skip
        # Filtered queries matching fewer rows than this are ranked exactly, more through the
        # HNSW index with an iterative scan (`dense_statement`); 0: always the HNSW index.
        self.exact_scan_rows = exact_scan_rows
        self.pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": False, "prepare_threshold": 5},
            configure=_configure,
        )

    async def open(self, timeout: float = 30) -> None:
        try:
            await self.pool.open(wait=True, timeout=timeout)
        except BaseException:
            await self.pool.close()
            raise

    async def close(self) -> None:
        await self.pool.close()

    @staticmethod
    async def _enter(conn: AsyncConnection[Any], tenant_id: uuid.UUID, ef: int | None = None,
                     iterative: bool = False) -> None:  # fmt: skip
        """Act as the tenant for this transaction: its role (the only one with rights on its
        tables) and `app.tenant_id` (the row-level policies), and the HNSW settings."""
        role = _role_of(tenant_id)
        if ef is None:
            await conn.execute(
                "SELECT set_config('role', %s, true), set_config('app.tenant_id', %s, true)",
                (role, str(tenant_id)),
            )
            return
        await conn.execute(
            "SELECT set_config('role', %s, true), set_config('app.tenant_id', %s, true), "
            "set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', %s, true)",
            (role, str(tenant_id), str(ef), "relaxed_order" if iterative else "off"),
        )

    @staticmethod
    def table(index: IndexRef) -> sql.Composable:
        return sql.Identifier(index.schema_name, index.table_name)

    # ------------------------------------------------------------------ writes

    @_translated
    async def upsert(
        self,
        index: IndexRef,
        namespace: str,
        records: list[Record],
        *,
        max_vectors: int,
        guard: Filter = EMPTY,
    ) -> int:
        """Insert or replace; returns the number written. Raises QuotaExceeded (and writes
        nothing) when the tenant would then hold more than `max_vectors` vectors."""
        # The last occurrence of an id in a batch wins (one statement cannot touch a row twice).
        unique: dict[str, Record] = {}
        for record in records:
            unique[record.id] = record
        # In id order: concurrent batches lock the rows they share in the same order (in the
        # callers' orders, two upserts of the same ids deadlock).
        rows = sorted(unique.values(), key=lambda r: r.id)
        # The guard applies to the row an upsert would replace (`existing`).
        existing = sql_of(guard, ("existing", "metadata"))
        cast = sql.SQL(index.vector_type)
        text_cols = sql.SQL(", text") if index.text_field else sql.SQL("")
        text_sel = sql.SQL(", u.t") if index.text_field else sql.SQL("")
        text_upd = sql.SQL(", text = EXCLUDED.text") if index.text_field else sql.SQL("")
        query = sql.SQL(
            "INSERT INTO {table} (namespace, id, embedding, sparse, metadata{text_cols}) "
            "SELECT %s, u.id, u.v::{cast}, u.s::sparsevec, u.m::jsonb{text_sel} "
            "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
            "AS u(id, v, s, m, t) "
            "ON CONFLICT (namespace, id) DO UPDATE SET embedding = EXCLUDED.embedding, "
            "sparse = EXCLUDED.sparse, metadata = EXCLUDED.metadata, updated_at = now(){text_upd} "
            "WHERE {guard} "
            "RETURNING (xmax = 0) AS inserted"
        ).format(
            table=sql.SQL("{} AS existing").format(self.table(index)),
            text_cols=text_cols,
            cast=cast,
            text_sel=text_sel,
            text_upd=text_upd,
            guard=existing.sql,
        )
        params = (
            namespace,
            [r.id for r in rows],
            [vector_text(r.values) for r in rows],
            [sparse_text(*r.sparse, SPARSE_DIMENSIONS) if r.sparse else None for r in rows],
            [(r.metadata_json or orjson.dumps(r.metadata or {})).decode() for r in rows],
            [r.text for r in rows],
            *existing.params,
        )
        async with self.pool.connection() as conn:
            await self._enter(conn, index.tenant_id)
            result = await conn.execute(query, params)
            flags = await result.fetchall()
            if len(flags) < len(rows):
                # A row the key's row filter does not cover exists under one of these ids.
                await conn.rollback()
                raise RowFilterViolation()
            inserted = sum(1 for (flag,) in flags if flag)
            if inserted:
                # Serialise the tenant's quota check with its other writers (held to commit,
                # taken after the heavy insert): each then sees every committed count, so
                # concurrent upserts cannot overshoot the quota.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))",
                    (str(index.tenant_id),),
                )
                await self._count(conn, index, namespace, inserted)
                total = await self._tenant_total(conn)
                if total > max_vectors:
                    await conn.rollback()
                    raise QuotaExceeded(total - inserted, max_vectors)
            await conn.commit()
        return len(rows)

    @staticmethod
    async def _count(
        conn: AsyncConnection[Any], index: IndexRef, namespace: str, delta: int
    ) -> None:
        if delta < 0:
            # An INSERT would check its (negative) proposed row before ON CONFLICT applies.
            await conn.execute(
                "UPDATE public.namespace_stats SET vector_count = greatest(vector_count + %s, 0) "
                "WHERE index_id = %s AND namespace = %s",
                (delta, index.id, namespace),
            )
            return
        await conn.execute(
            "INSERT INTO public.namespace_stats (tenant_id, index_id, namespace, vector_count) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (index_id, namespace) DO UPDATE "
            "SET vector_count = public.namespace_stats.vector_count + EXCLUDED.vector_count",
            (index.tenant_id, index.id, namespace, delta),
        )

    @staticmethod
    async def _tenant_total(conn: AsyncConnection[Any]) -> int:
        row = await (
            await conn.execute("SELECT coalesce(sum(vector_count), 0) FROM public.namespace_stats")
        ).fetchone()
        return int(row[0]) if row else 0

    @_translated
    async def update(
        self,
        index: IndexRef,
        namespace: str,
        record_id: str,
        *,
        values: list[float] | None,
        sparse: Sparse | None,
        set_metadata: dict[str, Any] | None,
        guard: Filter,
        new_metadata_check: Callable[[Mapping[str, object]], bool] | None = None,
        max_metadata_bytes: int | None = None,
    ) -> bool:
        """Update one record (values, sparse values, merge metadata). `guard` restricts which
        rows may be touched (a key's row filter); `new_metadata_check(metadata) -> bool` vets
        the merged metadata. Returns whether a row was updated."""
        where = sql_of(guard)
        sets: list[sql.Composable] = []
        params: list[Any] = []
        if values is not None:
            sets.append(sql.SQL("embedding = %s::{}").format(sql.SQL(index.vector_type)))
            params.append(vector_text(values))
        if sparse is not None:
            sets.append(sql.SQL("sparse = %s::sparsevec"))
            params.append(sparse_text(*sparse, SPARSE_DIMENSIONS))
        if set_metadata is not None:
            sets.append(sql.SQL("metadata = metadata || %s::jsonb"))
            params.append(orjson.dumps(set_metadata).decode())
        sets.append(sql.SQL("updated_at = now()"))
        query = sql.SQL(
            "UPDATE {table} SET {sets} WHERE namespace = %s AND id = %s AND {guard} "
            "RETURNING metadata"
        ).format(table=self.table(index), sets=sql.SQL(", ").join(sets), guard=where.sql)
        async with self.pool.connection() as conn:
            await self._enter(conn, index.tenant_id)
            row = await (
                await conn.execute(query, [*params, namespace, record_id, *where.params])
            ).fetchone()
            if row is None:
                await conn.rollback()
                return False
            if new_metadata_check is not None and not new_metadata_check(row[0]):
                await conn.rollback()
                raise RowFilterViolation()
            size = len(orjson.dumps(row[0]))
            if max_metadata_bytes is not None and size > max_metadata_bytes:
                await conn.rollback()
                raise MetadataTooLarge(size, max_metadata_bytes)
            await conn.commit()
            return True

    @_translated
    async def delete(
        self,
        index: IndexRef,
        namespace: str,
        *,
        ids: list[str] | None = None,
        where: Filter = EMPTY,
    ) -> int:
        compiled = sql_of(where)
        conditions: list[sql.Composable] = [sql.SQL("namespace = %s")]
        params: list[Any] = [namespace]
        if ids is not None:
            conditions.append(sql.SQL("id = ANY(%s)"))
            params.append(ids)
        if not compiled.is_true:
            conditions.append(compiled.sql)
            params.extend(compiled.params)
        query = sql.SQL("DELETE FROM {} WHERE {}").format(
            self.table(index), sql.SQL(" AND ").join(conditions)
        )
        async with self.pool.connection() as conn:
            await self._enter(conn, index.tenant_id)
            deleted = (await conn.execute(query, params)).rowcount
            if deleted:
                await self._count(conn, index, namespace, -deleted)
            await conn.commit()
        return max(deleted, 0)

    # ------------------------------------------------------------------ reads

    @_translated
    async def fetch(
        self, index: IndexRef, namespace: str, ids: list[str], where: Filter
    ) -> list[Fetched]:
        compiled = sql_of(where)
        query = sql.SQL(
            "SELECT id, embedding::text, sparse::text, metadata FROM {} "
            "WHERE namespace = %s AND id = ANY(%s) AND {}"
        ).format(self.table(index), compiled.sql)
        async with self.pool.connection() as conn:
            await self._enter(conn, index.tenant_id)
            rows = await (await conn.execute(query, [namespace, ids, *compiled.params])).fetchall()
            await conn.rollback()
        return [
            {
                "id": r[0],
                "values": parse_vector(r[1]),
                "sparse": parse_sparse(r[2]),
                "metadata": r[3],
            }
            for r in rows
        ]

    @_translated
    async def vector_of(
        self, index: IndexRef, namespace: str, record_id: str, where: Filter
    ) -> list[float] | None:
        rows = await self.fetch(index, namespace, [record_id], where)
        return rows[0]["values"] if rows else None

    @_translated
    async def query(
        self,
        index: IndexRef,
        namespace: str,
        vector: list[float],
        top_k: int,
        where: Filter,
        *,
        ef_search: int,
        include_values: bool,
        include_metadata: bool,
        sparse: Sparse | None = None,
        text: str | None = None,
    ) -> list[Match]:
        """The `top_k` nearest records within `where`, Pinecone's scores. An all-zero query
        vector ranks nothing: the filter's matches in id order, score 0 (or, with a sparse
        vector, ranked by the sparse dot product alone, which is then the whole score)."""
        compiled = sql_of(where)
        extra_cols = sql.SQL(
            ", embedding::text, sparse::text" if include_values else ", NULL::text, NULL::text"
        )
        hybrid = sparse is not None or text is not None
        # Hybrid: take a wider dense candidate set, then rescore (see docs on the semantics).
        limit = max(top_k * 10, 100) if hybrid else top_k
        ranked = any(vector)
        async with self.pool.connection() as conn:
            if ranked:
                rows = await self._dense_candidates(
                    conn, index, namespace, vector, limit, compiled, ef_search, extra_cols
                )
            elif text is not None and sparse is None:
                rows = []  # nothing ranks the dense side: only the full-text ranking counts
            else:
                rows = await self._unranked_candidates(
                    conn, index, namespace, sparse, limit, compiled, extra_cols
                )
            sparse_scores: dict[str, float] = {}
            text_rank: dict[str, int] = {}
            if sparse is not None and rows and ranked:
                sq = sparse_text(*sparse, SPARSE_DIMENSIONS)
                srows = await (
                    await conn.execute(
                        sql.SQL(
                            "SELECT id, coalesce(-(sparse <#> %s::sparsevec), 0) FROM {} "
                            "WHERE namespace = %s AND id = ANY(%s)"
                        ).format(self.table(index)),
                        [sq, namespace, [r[0] for r in rows]],
                    )
                ).fetchall()
                sparse_scores = {r[0]: float(r[1]) for r in srows}
            if text is not None and index.text_field:
                trows = await (
                    await conn.execute(
                        sql.SQL(
                            "SELECT id FROM {} WHERE namespace = %s AND {} "
                            "AND tsv @@ websearch_to_tsquery('english', %s) "
                            "ORDER BY ts_rank_cd(tsv, websearch_to_tsquery('english', %s)) DESC "
                            "LIMIT %s"
                        ).format(self.table(index), compiled.sql),
                        [namespace, *compiled.params, text, text, limit],
                    )
                ).fetchall()
                text_rank = {r[0]: i for i, r in enumerate(trows)}
            await conn.rollback()
        matches = []
        for r in rows:
            s = score(index.metric, float(r[2])) if ranked else float(r[2])
            matches.append(
                {"id": r[0], "score": s, "metadata": r[1], "values": r[3], "sparse": r[4]}
            )
        if sparse is not None and ranked:
            # Pinecone's sparse-dense score: dense dot product + sparse dot product.
            for m in matches:
                m["score"] = m["score"] + sparse_scores.get(m["id"], 0.0)
            matches.sort(key=lambda m: -m["score"])
        if text is not None:
            # Reciprocal rank fusion (k = 60) of the dense ranking and the full-text ranking.
            dense_rank = {m["id"]: i for i, m in enumerate(matches)}
            extra_ids = [i for i in text_rank if i not in dense_rank]
            if extra_ids:
                fetched = await self.fetch(index, namespace, extra_ids, where)
                for f in fetched:
                    matches.append(
                        {
                            "id": f["id"],
                            "score": 0.0,
                            "metadata": f["metadata"],
                            "values": vector_text(f["values"]),
                            "sparse": None,
                        }
                    )
            for m in matches:
                rrf = 0.0
                if m["id"] in dense_rank:
                    rrf += 1.0 / (60 + dense_rank[m["id"]] + 1)
                if m["id"] in text_rank:
                    rrf += 1.0 / (60 + text_rank[m["id"]] + 1)
                m["score"] = rrf
            matches.sort(key=lambda m: -m["score"])
        out = []
        for m in matches[:top_k]:
            item: dict[str, Any] = {"id": m["id"], "score": reported(m["score"])}
            if include_values:
                item["values"] = parse_vector(m["values"]) if m["values"] else []
                sp = parse_sparse(m["sparse"])
                if sp is not None:
                    item["sparseValues"] = sp
            if include_metadata:
                item["metadata"] = m["metadata"]
            out.append(item)
        return out

    async def _dense_candidates(
        self, conn: AsyncConnection[Any], index: IndexRef, namespace: str,
        vector: list[float], limit: int, where: Compiled, ef_search: int,
        extra_cols: sql.Composable,
    ) -> list[Any]:  # fmt: skip
        """(id, metadata, distance, values text, sparse text) of the `limit` nearest."""
        filtered = not where.is_true
        ef = max(ef_search, limit) if limit <= 1000 else 1000
        qtext = vector_text(vector)
        bound = self.exact_scan_rows if filtered else 0
        query = dense_statement(index, where, extra_cols, bound=bound)
        params = dense_params(qtext, namespace, where, limit, bound=bound,
                              relation=relation_name(index))  # fmt: skip
        # One round trip: the settings and the search go out together (pipeline mode).
        async with conn.pipeline():
            await self._enter(conn, index.tenant_id, ef=ef, iterative=filtered)
            cursor = await conn.execute(query, params)
        return await cursor.fetchall()

    async def _unranked_candidates(
        self, conn: AsyncConnection[Any], index: IndexRef, namespace: str,
        sparse: Sparse | None, limit: int, where: Compiled,
        extra_cols: sql.Composable,
    ) -> list[Any]:  # fmt: skip
        """For an all-zero query vector: (id, metadata, score, values, sparse) of the filter's
        matches, in id order with score 0, or by sparse dot product (the score) when `sparse`
        is given (an exact scan: a zero dense part leaves nothing for the HNSW index)."""
        await self._enter(conn, index.tenant_id)
        if sparse is None:
            query = sql.SQL(
                "SELECT id, metadata, 0.0::float8 AS s{extra} FROM {table} "
                "WHERE namespace = %s AND {where} ORDER BY id LIMIT %s"
            ).format(extra=extra_cols, table=self.table(index), where=where.sql)
            params: list[Any] = [namespace, *where.params, limit]
        else:
            query = sql.SQL(
                "SELECT id, metadata, coalesce(-(sparse <#> %s::sparsevec), 0)::float8 AS s"
                "{extra} FROM {table} WHERE namespace = %s AND {where} "
                "ORDER BY s DESC, id LIMIT %s"
            ).format(extra=extra_cols, table=self.table(index), where=where.sql)
            params = [sparse_text(*sparse, SPARSE_DIMENSIONS), namespace, *where.params, limit]
        return await (await conn.execute(query, params)).fetchall()

    @_translated
    async def list_ids(
        self, index: IndexRef, namespace: str, prefix: str, limit: int, after: str | None,
        where: Filter,
    ) -> tuple[list[str], str | None]:  # fmt: skip
        compiled = sql_of(where)
        conditions = [sql.SQL("namespace = %s"), compiled.sql]
        params: list[Any] = [namespace, *compiled.params]
        if prefix:
            conditions.append(sql.SQL("id >= %s AND starts_with(id, %s)"))
            params += [prefix, prefix]
        if after is not None:
            conditions.append(sql.SQL("id > %s"))
            params.append(after)
        query = sql.SQL("SELECT id FROM {} WHERE {} ORDER BY id LIMIT %s").format(
            self.table(index), sql.SQL(" AND ").join(conditions)
        )
        async with self.pool.connection() as conn:
            await self._enter(conn, index.tenant_id)
            rows = await (await conn.execute(query, [*params, limit + 1])).fetchall()
            await conn.rollback()
        ids = [r[0] for r in rows[:limit]]
        return ids, (encode_token(ids[-1]) if len(rows) > limit else None)

    @_translated
    async def stats(
        self, index: IndexRef, where: Filter, namespaces: frozenset[str]
    ) -> dict[str, int]:
        compiled = sql_of(where)
        async with self.pool.connection() as conn:
            await self._enter(conn, index.tenant_id)
            if compiled.is_true:
                rows = await (
                    await conn.execute(
                        "SELECT namespace, vector_count FROM public.namespace_stats "
                        "WHERE index_id = %s AND vector_count > 0",
                        (index.id,),
                    )
                ).fetchall()
            else:
                rows = await (
                    await conn.execute(
                        sql.SQL(
                            "SELECT namespace, count(*) FROM {} WHERE {} GROUP BY namespace"
                        ).format(self.table(index), compiled.sql),
                        list(compiled.params),
                    )
                ).fetchall()
            await conn.rollback()
        counts = Counter({r[0]: int(r[1]) for r in rows})
        if namespaces:
            counts = Counter({k: v for k, v in counts.items() if k in namespaces})
        return dict(counts)
