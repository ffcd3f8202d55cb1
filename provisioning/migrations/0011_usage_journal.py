"""The gateway's usage journals (issue 11): the applied byte offset of each, written with the
counts it covers. The gateway reads, inserts, updates and deletes these rows."""

from django.db import migrations, models

from vectorplane import config


def grant_gateway(apps, schema_editor):
    role = config.env_str("VECTORPLANE_GATEWAY_DB_ROLE", config.GATEWAY_DB_USER)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone():
            cursor.execute(
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON "provisioning_usagejournal" TO "{role}"'
            )


class Migration(migrations.Migration):
    dependencies = [("provisioning", "0010_metrics")]

    operations = [
        migrations.CreateModel(
            name="UsageJournal",
            fields=[
                ("journal_id", models.UUIDField(primary_key=True, serialize=False)),
                ("applied_offset", models.BigIntegerField(default=0)),
                ("host", models.CharField(blank=True, default="", max_length=255)),
                ("updated_at", models.DateTimeField()),
            ],
            options={"ordering": ("-updated_at",)},
        ),
        migrations.RunPython(grant_gateway, migrations.RunPython.noop),
    ]
