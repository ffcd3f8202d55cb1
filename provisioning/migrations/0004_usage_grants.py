"""The gateway writes hourly usage: INSERT/UPDATE on that one table (and its id sequence)."""

from django.db import migrations

from vectorplane import config


def forwards(apps, schema_editor):
    role = config.env_str("VECTORPLANE_GATEWAY_DB_ROLE", config.GATEWAY_DB_USER)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone():
            cursor.execute(
                f'GRANT SELECT, INSERT, UPDATE ON "provisioning_usagerecord" TO "{role}"'
            )
            cursor.execute(f'GRANT USAGE ON SEQUENCE "provisioning_usagerecord_id_seq" TO "{role}"')


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0003_usage")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
