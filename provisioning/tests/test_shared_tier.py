"""The shared pgvector tier's two walls, proven below any application code by connecting as
the gateway's own login role: privilege (only a tenant's role, which the gateway may SET but
never inherits, has rights on that tenant's tables) and FORCE ROW LEVEL SECURITY."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql

from provisioning.models import Index
from provisioning.services import indexes
from provisioning.storage import shared_tier
from tenants.actors import Actor
from tenants.models import Tenant
from vectorplane import config
from vectorplane.contract.storage import tenant_role_name

pytestmark = pytest.mark.django_db


def _gateway() -> psycopg.Connection[Any]:
    return psycopg.connect(config.gateway_data_database_url(), autocommit=False)


def _table(index: Index) -> sql.Composable:
    return sql.Identifier(index.schema_name, index.table_name)


def _insert(conn: psycopg.Connection[Any], index: Index, tenant_id: str, rid: str) -> None:
    conn.execute(
        sql.SQL("INSERT INTO {} (id, embedding, metadata) VALUES (%s, %s, %s)").format(
            _table(index)
        ),
        (rid, "[1,0,0]", json.dumps({"owner": tenant_id})),
    )


@pytest.fixture
def two_indexes(owner: Any, tenant: Tenant, other_tenant: Tenant) -> tuple[Index, Index]:
    mine = indexes.index_create(actor=Actor(user=owner), tenant=tenant, name="docs", dimension=3)
    evil_owner = other_tenant.memberships.model.objects.unscoped().get(tenant=other_tenant).user
    theirs = indexes.index_create(
        actor=Actor(user=evil_owner), tenant=other_tenant, name="docs", dimension=3
    )
    return mine, theirs


def _as(conn: psycopg.Connection[Any], tenant: Tenant | None, acting_for: str) -> None:
    """What the gateway does per transaction: the tenant's role (None: its own login role),
    and `app.tenant_id`."""
    if tenant is not None:
        conn.execute("SELECT set_config('role', %s, true)", (tenant_role_name(tenant.id),))
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (acting_for,))


def test_gateway_role_cannot_bypass_rls_and_inherits_no_tenant() -> None:
    with _gateway() as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
            "WHERE rolname = current_user"
        ).fetchone()
        owned = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = current_user"
        ).fetchone()
        inherited = conn.execute(
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
            "WHERE r.rolname = current_user AND m.inherit_option"
        ).fetchone()
    assert row == (False, False, False, False)
    assert owned == (0,)
    assert inherited == (0,)


def test_table_has_forced_rls_and_both_policies(two_indexes: tuple[Index, Index]) -> None:
    mine, _ = two_indexes
    with shared_tier.connect() as conn:
        flags = conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
            (mine.schema_name, mine.table_name),
        ).fetchone()
        policies = conn.execute(
            "SELECT policyname, cmd, roles::text[] FROM pg_policies "
            "WHERE schemaname = %s AND tablename = %s ORDER BY policyname",
            (mine.schema_name, mine.table_name),
        ).fetchall()
        grantees = conn.execute(
            "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
            "WHERE table_schema = %s AND table_name = %s",
            (mine.schema_name, mine.table_name),
        ).fetchall()
        hnsw = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s "
            "AND indexdef LIKE '%%hnsw%%'",
            (mine.schema_name, mine.table_name),
        ).fetchone()
    assert flags == (True, True)
    assert policies == [
        ("tenant_access", "ALL", [tenant_role_name(mine.tenant_id)]),
        ("tenant_isolation", "ALL", ["public"]),
    ]
    # The owner and the tenant's role; never the gateway's login role.
    assert {g[0] for g in grantees} == {config.EMBEDDED_DB_USER, tenant_role_name(mine.tenant_id)}
    assert hnsw is not None and "vector_cosine_ops" in str(hnsw[0])


def test_the_gateway_role_alone_reaches_no_table(
    two_indexes: tuple[Index, Index], tenant: Tenant
) -> None:
    mine, theirs = two_indexes
    with _gateway() as conn:
        for index in (mine, theirs):
            _as(conn, None, str(tenant.id))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL("SELECT id FROM {}").format(_table(index)))
            conn.rollback()


def test_a_tenants_role_reaches_its_tables_only(
    two_indexes: tuple[Index, Index], tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, theirs = two_indexes
    with _gateway() as conn:
        _as(conn, tenant, str(tenant.id))
        _insert(conn, mine, str(tenant.id), "a")
        conn.commit()
        _as(conn, other_tenant, str(other_tenant.id))
        _insert(conn, theirs, str(other_tenant.id), "b")
        conn.commit()
        _as(conn, tenant, str(tenant.id))
        assert conn.execute(sql.SQL("SELECT id FROM {}").format(_table(mine))).fetchall() == [
            ("a",)
        ]
        conn.commit()
        # The other tenant's table: no right to read, update, delete or insert, whatever
        # `app.tenant_id` says (a routing bug sets the wrong one).
        for acting_for in (str(tenant.id), str(other_tenant.id)):
            for statement in (
                sql.SQL("SELECT id FROM {}").format(_table(theirs)),
                sql.SQL("UPDATE {} SET metadata = '{{}}'").format(_table(theirs)),
                sql.SQL("DELETE FROM {}").format(_table(theirs)),
                sql.SQL("INSERT INTO {} (id, embedding) VALUES ('x', '[1,0,0]')").format(
                    _table(theirs)
                ),
            ):
                _as(conn, tenant, acting_for)
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
                conn.rollback()


def test_rows_of_another_tenant_never_enter_a_tenants_table(
    two_indexes: tuple[Index, Index], tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, _ = two_indexes
    with _gateway() as conn:
        _as(conn, tenant, str(tenant.id))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (id, embedding, tenant_id) VALUES ('x', '[1,0,0]', %s)"
                ).format(_table(mine)),
                (str(other_tenant.id),),
            )
        conn.rollback()
        # The tenant's role with the other tenant's id (a routing bug): the default tenant_id
        # is the other tenant's, which the table's CHECK refuses.
        with pytest.raises(psycopg.errors.CheckViolation):
            _as(conn, tenant, str(other_tenant.id))
            _insert(conn, mine, str(other_tenant.id), "y")
        conn.rollback()


def test_the_gateway_cannot_become_a_role_it_was_not_given(tenant: Tenant) -> None:
    with _gateway() as conn:
        for role in (config.EMBEDDED_DB_USER, "postgres", tenant_role_name(uuid.uuid4())):
            with pytest.raises(psycopg.errors.DatabaseError):
                conn.execute("SELECT set_config('role', %s, true)", (role,))
            conn.rollback()


def test_neither_role_can_run_ddl(two_indexes: tuple[Index, Index], tenant: Tenant) -> None:
    mine, _ = two_indexes
    with _gateway() as conn:
        for acting in (None, tenant):
            for statement in (
                sql.SQL("DROP TABLE {}").format(_table(mine)),
                sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(_table(mine)),
                sql.SQL("DROP POLICY tenant_isolation ON {}").format(_table(mine)),
                sql.SQL("CREATE TABLE {}.evil (x int)").format(sql.Identifier(mine.schema_name)),
            ):
                _as(conn, acting, str(tenant.id))
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
                conn.rollback()


def test_a_filter_uses_the_metadata_index_as_the_tenant_and_not_under_the_policy(
    two_indexes: tuple[Index, Index], tenant: Tenant
) -> None:
    """Why the tenant role has its own policy: under `tenant_isolation` (a row-level
    qualification) PostgreSQL may not use the non-LEAKPROOF `jsonb @>` as an index condition,
    so a filter is a sequential scan; as the tenant's role the GIN index serves it."""
    mine, _ = two_indexes
    query = sql.SQL(
        "EXPLAIN (FORMAT JSON) SELECT id FROM {} WHERE metadata @> %s::jsonb"
    ).format(_table(mine))
    with shared_tier.connect() as conn:
        conn.execute("SELECT set_config('enable_seqscan', 'off', true)")
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        as_owner = json.dumps(conn.execute(query, ['{"genre": "jazz"}']).fetchone())
    with _gateway() as conn:
        _as(conn, tenant, str(tenant.id))
        conn.execute("SELECT set_config('enable_seqscan', 'off', true)")
        as_tenant = json.dumps(conn.execute(query, ['{"genre": "jazz"}']).fetchone())
    assert f"{mine.table_name}_meta" in as_tenant and "Bitmap Index Scan" in as_tenant
    assert f"{mine.table_name}_meta" not in as_owner


def test_delete_drops_the_table(
    two_indexes: tuple[Index, Index], owner: Any, tenant: Tenant
) -> None:
    mine, _ = two_indexes
    indexes.index_delete(actor=Actor(user=owner), tenant=tenant, index=mine)
    with shared_tier.connect() as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{mine.schema_name}.{mine.table_name}",))
        assert exists.fetchone() == (None,)


def test_an_index_table_of_the_old_design_is_brought_over(
    two_indexes: tuple[Index, Index], tenant: Tenant
) -> None:
    """A table as made before tenant roles (the gateway's login role with DML on it, no
    `tenant_access` policy): `manage.py shared_tier_access` brings it to both walls."""
    from django.core.management import call_command

    mine, _ = two_indexes
    role, gateway = tenant_role_name(tenant.id), shared_tier.gateway_role()
    with shared_tier.connect() as conn:
        conn.execute(sql.SQL("DROP POLICY tenant_access ON {}").format(_table(mine)))
        conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(_table(mine), sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
            sql.Identifier(mine.schema_name), sql.Identifier(gateway)))  # fmt: skip
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
            _table(mine), sql.Identifier(gateway)))  # fmt: skip
        conn.commit()
    with _gateway() as conn:  # the old way works, and the new one does not yet
        _as(conn, None, str(tenant.id))
        conn.execute(sql.SQL("SELECT id FROM {}").format(_table(mine)))
        conn.rollback()
    call_command("shared_tier_access")
    with _gateway() as conn:
        _as(conn, None, str(tenant.id))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql.SQL("SELECT id FROM {}").format(_table(mine)))
        conn.rollback()
        _as(conn, tenant, str(tenant.id))
        assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_table(mine))).fetchone() \
            == (0,)  # fmt: skip
