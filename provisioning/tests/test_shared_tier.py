"""The shared pgvector tier: index tables under FORCE ROW LEVEL SECURITY, proven below any
application code by connecting as the gateway's own role."""

from __future__ import annotations

import json
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

pytestmark = pytest.mark.django_db


def _gateway() -> psycopg.Connection[Any]:
    return psycopg.connect(config.gateway_data_database_url(), autocommit=False)


def _table(index: Index) -> sql.Composable:
    return sql.Identifier(index.schema_name, index.table_name)


def _insert(conn: psycopg.Connection[Any], index: Index, tenant_id: str, rid: str) -> None:
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
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


def test_gateway_role_cannot_bypass_rls() -> None:
    with _gateway() as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
            "WHERE rolname = current_user"
        ).fetchone()
        owned = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = current_user"
        ).fetchone()
    assert row == (False, False, False, False)
    assert owned == (0,)


def test_table_has_forced_rls_and_policy(two_indexes: tuple[Index, Index]) -> None:
    mine, _ = two_indexes
    with shared_tier.connect() as conn:
        flags = conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
            (mine.schema_name, mine.table_name),
        ).fetchone()
        policies = conn.execute(
            "SELECT policyname, cmd FROM pg_policies WHERE schemaname = %s AND tablename = %s",
            (mine.schema_name, mine.table_name),
        ).fetchall()
        hnsw = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s "
            "AND indexdef LIKE '%%hnsw%%'",
            (mine.schema_name, mine.table_name),
        ).fetchone()
    assert flags == (True, True)
    assert policies == [("tenant_isolation", "ALL")]
    assert hnsw is not None and "vector_cosine_ops" in str(hnsw[0])


def test_gateway_role_sees_nothing_of_another_tenant_even_in_its_table(
    two_indexes: tuple[Index, Index], tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, theirs = two_indexes
    with _gateway() as conn:
        _insert(conn, mine, str(tenant.id), "a")
        conn.commit()
        _insert(conn, theirs, str(other_tenant.id), "b")
        conn.commit()
        # Acting as `tenant`, but querying the other tenant's table directly: nothing.
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        assert conn.execute(sql.SQL("SELECT id FROM {}").format(_table(theirs))).fetchall() == []
        assert conn.execute(sql.SQL("SELECT id FROM {}").format(_table(mine))).fetchall() == [
            ("a",)
        ]
        # Updates and deletes of the other tenant's rows touch nothing.
        updated = conn.execute(
            sql.SQL("UPDATE {} SET metadata = '{{}}'").format(_table(theirs))
        ).rowcount
        deleted = conn.execute(sql.SQL("DELETE FROM {}").format(_table(theirs))).rowcount
        assert (updated, deleted) == (0, 0)
        conn.rollback()
        # No tenant set at all: nothing either.
        assert conn.execute(sql.SQL("SELECT id FROM {}").format(_table(mine))).fetchall() == []
        conn.rollback()


def test_gateway_role_cannot_write_rows_for_another_tenant(
    two_indexes: tuple[Index, Index], tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, theirs = two_indexes
    with _gateway() as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (id, embedding, tenant_id) VALUES ('x', '[1,0,0]', %s)"
                ).format(_table(mine)),
                (str(other_tenant.id),),
            )
        conn.rollback()
        # Into the other tenant's table, as myself: the table's CHECK refuses it.
        with pytest.raises(psycopg.errors.CheckViolation):
            _insert(conn, theirs, str(tenant.id), "y")
        conn.rollback()


def test_gateway_role_cannot_run_ddl(two_indexes: tuple[Index, Index], tenant: Tenant) -> None:
    mine, _ = two_indexes
    with _gateway() as conn:
        for statement in (
            sql.SQL("DROP TABLE {}").format(_table(mine)),
            sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(_table(mine)),
            sql.SQL("CREATE TABLE {}.evil (x int)").format(sql.Identifier(mine.schema_name)),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()


def test_delete_drops_the_table(
    two_indexes: tuple[Index, Index], owner: Any, tenant: Tenant
) -> None:
    mine, _ = two_indexes
    indexes.index_delete(actor=Actor(user=owner), tenant=tenant, index=mine)
    with shared_tier.connect() as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{mine.schema_name}.{mine.table_name}",))
        assert exists.fetchone() == (None,)
