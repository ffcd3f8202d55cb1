"""Which plans may run dedicated clusters, how many, of which sizes (editable in the admin)."""

from django.db import migrations

CLUSTERS = {
    "free": {"max_clusters": 0, "allowed_cluster_sizes": [], "max_cluster_replicas": 1},
    "starter": {"max_clusters": 0, "allowed_cluster_sizes": [], "max_cluster_replicas": 1},
    "pro": {"max_clusters": 2, "allowed_cluster_sizes": ["xs", "s", "m"], "max_cluster_replicas": 3},
    "enterprise": {
        "max_clusters": 20,
        "allowed_cluster_sizes": ["xs", "s", "m", "l", "xl"],
        "max_cluster_replicas": 5,
    },
}


def forwards(apps, schema_editor):
    Plan = apps.get_model("tenants", "Plan")
    for slug, values in CLUSTERS.items():
        Plan.objects.filter(slug=slug).update(**values)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0004_plan_clusters")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
