"""The gateway reads clusters (endpoint, encrypted credentials) to route dedicated indexes, and
hears of their changes like the other cached tables (see 0002_gateway_access)."""

from django.db import migrations

from vectorplane import config


def forwards(apps, schema_editor):
    role = config.env_str("VECTORPLANE_GATEWAY_DB_ROLE", config.GATEWAY_DB_USER)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute('DROP TRIGGER IF EXISTS vectorplane_notify ON "provisioning_cluster"')
        cursor.execute(
            'CREATE TRIGGER vectorplane_notify AFTER INSERT OR UPDATE OR DELETE ON '
            '"provisioning_cluster" FOR EACH ROW EXECUTE FUNCTION vectorplane_notify_change()'
        )
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone():
            cursor.execute(f'GRANT SELECT ON "provisioning_cluster" TO "{role}"')


def backwards(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute('DROP TRIGGER IF EXISTS vectorplane_notify ON "provisioning_cluster"')


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0005_cluster"), ("tenants", "0005_plan_cluster_limits")]
    operations = [migrations.RunPython(forwards, backwards)]
