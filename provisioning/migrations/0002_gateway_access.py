"""What the data-plane gateway may read in the control-plane database, and how it hears of
changes.

- The gateway's role (`VECTORPLANE_GATEWAY_DB_ROLE`, default `vp_gateway`) gets SELECT on the
  few tables it caches, nothing else; skipped when the role does not exist (create it, then
  re-run `manage.py migrate provisioning 0001 && manage.py migrate`, or grant by hand).
- Row triggers send `pg_notify('vectorplane_changes', {table, op, id, tenant_id})` on every
  change to those tables. NOTIFY is transactional (delivered at commit, dropped on rollback),
  so a gateway that LISTENs drops exactly the cache entries that changed, within
  milliseconds, whoever made the change (API, admin, SQL).
"""

from django.db import migrations

from vectorplane import config

TABLES = [
    "tenants_tenant",
    "tenants_apikey",
    "tenants_plan",
    "tenants_tenantlimitoverride",
    "provisioning_index",
]

FUNCTION = """
CREATE OR REPLACE FUNCTION vectorplane_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
BEGIN
    PERFORM pg_notify(
        'vectorplane_changes',
        json_build_object(
            'table', TG_TABLE_NAME,
            'op', TG_OP,
            'id', changed ->> 'id',
            'tenant_id', changed ->> 'tenant_id'
        )::text
    );
    RETURN NULL;
END
$$;
"""


def forwards(apps, schema_editor):
    role = config.env_str("VECTORPLANE_GATEWAY_DB_ROLE", config.GATEWAY_DB_USER)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(FUNCTION)
        for table in TABLES:
            cursor.execute(f'DROP TRIGGER IF EXISTS vectorplane_notify ON "{table}"')
            cursor.execute(
                f'CREATE TRIGGER vectorplane_notify AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
                "FOR EACH ROW EXECUTE FUNCTION vectorplane_notify_change()"
            )
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone():
            tables = ", ".join(f'"{t}"' for t in TABLES)
            cursor.execute(f'GRANT SELECT ON {tables} TO "{role}"')


def backwards(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f'DROP TRIGGER IF EXISTS vectorplane_notify ON "{table}"')
        cursor.execute("DROP FUNCTION IF EXISTS vectorplane_notify_change()")


class Migration(migrations.Migration):
    dependencies = [("tenants", "0002_seed_plans"), ("provisioning", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
