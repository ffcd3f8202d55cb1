"""DDL of the shared pgvector tier, run by the control plane as the data database's owner.

Layout (one PostgreSQL database, `VECTORPLANE_DATA_DATABASE_URL`):
- one schema per tenant, `t_<tenant id hex>`; one table per index, `i_<index id hex>`, so a
  tenant's query cost does not grow with other tenants' data;
- **privilege** is the first wall: each tenant has a NOLOGIN role (`vp_t_<tenant id hex>`,
  `vectorplane.contract.storage.tenant_role_name`) granted USAGE on its schema and DML on its
  tables, nothing else. The gateway's login role (`vp_gateway`) owns nothing, is neither
  superuser nor BYPASSRLS, has no right on any index table itself, and is a member of each
  tenant role `WITH INHERIT FALSE, SET TRUE`: it reaches a tenant's tables only after
  `SET LOCAL ROLE` to that tenant for the transaction, never by inheritance. A routing bug
  that sets the wrong tenant is `permission denied` on the table, never another tenant's rows;
- **row-level security** is the second: every table carries `tenant_id` (a CHECK pins it to
  the table's tenant) under ENABLE + FORCE ROW LEVEL SECURITY with the `tenant_isolation`
  policy comparing it to `current_setting('app.tenant_id', true)` — for every role but the
  tenant's own, which has `tenant_access` (`USING (true)`: its table holds only its rows). That
  policy is what lets PostgreSQL use the metadata GIN index for filters: under a row-level
  qualification, a non-LEAKPROOF operator such as `jsonb @>` may not be used as an index
  condition (it would see rows before the policy), so filtered queries were sequential scans;
- `public.namespace_stats` counts vectors per (index, namespace) for `describe_index_stats`
  and the per-tenant vector quota, updated in the same transaction as each write.

The gateway never runs DDL; this module never runs in the gateway.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
from psycopg import sql

from vectorplane import config
from vectorplane.contract.storage import (
    SPARSE_DIMENSIONS,
    schema_name,
    table_name,
    tenant_role_name,
)

TENANT_POLICY = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"

_OPCLASS = {
    ("vector", "cosine"): "vector_cosine_ops",
    ("vector", "euclidean"): "vector_l2_ops",
    ("vector", "dotproduct"): "vector_ip_ops",
    ("halfvec", "cosine"): "halfvec_cosine_ops",
    ("halfvec", "euclidean"): "halfvec_l2_ops",
    ("halfvec", "dotproduct"): "halfvec_ip_ops",
}



@dataclass(frozen=True)
class IndexSpec:
    tenant_id: uuid.UUID
    index_id: uuid.UUID
    dimension: int
    vector_type: str
    metric: str
    hnsw_m: int
    hnsw_ef_construction: int
    text_field: bool


def connect(url: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url or config.data_database_url(), autocommit=False, connect_timeout=10)


def gateway_role() -> str:
    return config.env_str("VECTORPLANE_GATEWAY_DB_ROLE", config.GATEWAY_DB_USER)


def ensure_base(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Idempotent: the extension and the shared stats table with its policy and grants."""
    role = sql.Identifier(gateway_role())
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    # The filtered-query planner's sample (`TABLESAMPLE SYSTEM_ROWS`): a trusted contrib
    # extension, so the database's owner may create it.
    conn.execute("CREATE EXTENSION IF NOT EXISTS tsm_system_rows")
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS public.namespace_stats (
            tenant_id uuid NOT NULL,
            index_id uuid NOT NULL,
            namespace text NOT NULL,
            vector_count bigint NOT NULL DEFAULT 0 CHECK (vector_count >= 0),
            PRIMARY KEY (index_id, namespace)
        )
        """
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS namespace_stats_tenant ON public.namespace_stats (tenant_id)"
    )
    conn.execute("ALTER TABLE public.namespace_stats ENABLE ROW LEVEL SECURITY")
    conn.execute("ALTER TABLE public.namespace_stats FORCE ROW LEVEL SECURITY")
    has_policy = conn.execute(
        "SELECT 1 FROM pg_policies WHERE schemaname = 'public' "
        "AND tablename = 'namespace_stats' AND policyname = 'tenant_isolation'"
    ).fetchone()
    if not has_policy:
        conn.execute(
            sql.SQL(
                "CREATE POLICY tenant_isolation ON public.namespace_stats "
                "USING ({p}) WITH CHECK ({p})"
            ).format(p=sql.SQL(TENANT_POLICY))
        )
    conn.execute(
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON public.namespace_stats TO {}").format(role)
    )


def ensure_tenant_role(conn: psycopg.Connection[tuple[object, ...]], tenant_id: uuid.UUID) -> None:
    """The tenant's role, and the gateway's right to `SET ROLE` to it without inheriting its
    rights (idempotent; concurrent callers serialise on an advisory lock). Needs CREATEROLE
    (PostgreSQL 16+: the creator administers the roles it makes) or a superuser."""
    name = tenant_role_name(tenant_id)
    role, gateway = sql.Identifier(name), sql.Identifier(gateway_role())
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT").format(role))
    if conn.info.server_version >= 160000:
        conn.execute(sql.SQL("GRANT {} TO {} WITH INHERIT FALSE, SET TRUE").format(role, gateway))
    else:  # before 16 membership options are the member's: the gateway role must be NOINHERIT
        conn.execute(sql.SQL("GRANT {} TO {}").format(role, gateway))
    conn.execute(
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON public.namespace_stats TO {}").format(role)
    )


def tenant_access_apply(
    conn: psycopg.Connection[tuple[object, ...]], tenant_id: uuid.UUID, index_id: uuid.UUID
) -> None:
    """The rights and policies of an index table (idempotent; also upgrades a table made before
    tenant roles existed): the tenant's role may use it, the gateway's own role may not."""
    schema = sql.Identifier(schema_name(tenant_id))
    table = sql.Identifier(schema_name(tenant_id), table_name(index_id))
    role, gateway = sql.Identifier(tenant_role_name(tenant_id)), sql.Identifier(gateway_role())
    ensure_tenant_role(conn, tenant_id)
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role))
    conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(schema, gateway))
    conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(table, role))
    conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(table, gateway))
    conn.execute(sql.SQL("DROP POLICY IF EXISTS tenant_access ON {}").format(table))
    conn.execute(
        sql.SQL("CREATE POLICY tenant_access ON {} TO {} USING (true) WITH CHECK (true)").format(
            table, role
        )
    )


def create_index_table(conn: psycopg.Connection[tuple[object, ...]], spec: IndexSpec) -> None:
    """Create the index's table, indexes, policy and grants (one transaction, idempotent)."""
    schema = sql.Identifier(schema_name(spec.tenant_id))
    table = sql.Identifier(schema_name(spec.tenant_id), table_name(spec.index_id))
    vector_sql = sql.SQL("{}({})").format(sql.SQL(spec.vector_type), sql.Literal(spec.dimension))
    opclass = sql.SQL(_OPCLASS[(spec.vector_type, spec.metric)])
    ensure_base(conn)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
    text_columns = sql.SQL(
        ", text text, "
        "tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(text, ''))) STORED"
        if spec.text_field
        else ""
    )
    conn.execute(
        sql.SQL(
            """
            CREATE TABLE IF NOT EXISTS {table} (
                namespace text NOT NULL DEFAULT '',
                id text NOT NULL,
                embedding {vector} NOT NULL,
                sparse sparsevec({sparse_dims}),
                metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb{text_columns},
                tenant_id uuid NOT NULL
                    DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid
                    CHECK (tenant_id = {tenant}),
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (namespace, id)
            )
            """
        ).format(
            table=table,
            vector=vector_sql,
            sparse_dims=sql.Literal(SPARSE_DIMENSIONS),
            text_columns=text_columns,
            tenant=sql.Literal(str(spec.tenant_id)),
        )
    )
    conn.execute(
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS {name} ON {table} USING hnsw (embedding {opclass}) "
            "WITH (m = {m}, ef_construction = {efc})"
        ).format(
            name=sql.Identifier(f"{table_name(spec.index_id)}_hnsw"),
            table=table,
            opclass=opclass,
            m=sql.Literal(spec.hnsw_m),
            efc=sql.Literal(spec.hnsw_ef_construction),
        )
    )
    conn.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin (metadata jsonb_path_ops)").format(
            sql.Identifier(f"{table_name(spec.index_id)}_meta"), table
        )
    )
    if spec.text_field:
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin (tsv)").format(
                sql.Identifier(f"{table_name(spec.index_id)}_tsv"), table
            )
        )
    conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table))
    conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(table))
    conn.execute(sql.SQL("DROP POLICY IF EXISTS tenant_isolation ON {}").format(table))
    conn.execute(
        sql.SQL("CREATE POLICY tenant_isolation ON {} USING ({p}) WITH CHECK ({p})").format(
            table, p=sql.SQL(TENANT_POLICY)
        )
    )
    tenant_access_apply(conn, spec.tenant_id, spec.index_id)


def drop_index_table(
    conn: psycopg.Connection[tuple[object, ...]], *, tenant_id: uuid.UUID, index_id: uuid.UUID
) -> None:
    conn.execute(
        sql.SQL("DROP TABLE IF EXISTS {}").format(
            sql.Identifier(schema_name(tenant_id), table_name(index_id))
        )
    )
    ensure_base(conn)
    # FORCE ROW LEVEL SECURITY binds the owner too: act as the tenant for this transaction.
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
    conn.execute("DELETE FROM public.namespace_stats WHERE index_id = %s", (index_id,))


def analyze_stale_tables(
    conn: psycopg.Connection[tuple[object, ...]], *, min_rows: int, fraction: float
) -> list[str]:
    """ANALYZE the index tables (`t_*.i_*`) of this database whose planner statistics lag a
    large write: at least `min_rows` rows changed since their last ANALYZE, and either never
    analyzed or changed by at least `fraction` of their live rows. Returns their names
    (`schema.table`). Needs the owner (or a superuser): the control plane's worker, never the
    gateway. Run in autocommit mode (one ANALYZE at a time, each committed).

    Why not leave it to autovacuum: it looks every `autovacuum_naptime` (a minute by default),
    and until then a freshly loaded table is estimated at a handful of rows, so the planner
    ranks queries by an exact scan instead of the HNSW index (seen: 48 s of exact scans after
    a bulk load)."""
    rows = conn.execute(
        """
        SELECT schemaname, relname FROM pg_stat_user_tables
        WHERE schemaname LIKE 't\\_%%' AND relname LIKE 'i\\_%%'
          AND n_mod_since_analyze >= %s
          AND ((last_analyze IS NULL AND last_autoanalyze IS NULL)
               OR n_mod_since_analyze >= %s * n_live_tup)
        ORDER BY n_mod_since_analyze DESC
        """,
        (min_rows, fraction),
    ).fetchall()
    done: list[str] = []
    for schema, table in rows:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(str(schema), str(table))))
        done.append(f"{schema}.{table}")
    return done
