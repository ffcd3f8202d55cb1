"""Seed the default plans. Limits are starting points an operator can edit in the admin."""

from django.db import migrations

GiB = 1024**3

PLANS = [
    {
        "slug": "free",
        "name": "Free",
        "description": "For trying Vectorplane: a few small indexes on the shared tier.",
        "max_indexes": 3,
        "max_vectors": 100_000,
        "max_storage_bytes": 1 * GiB,
        "max_qps": 10,
        "max_dimension": 2000,
        "max_upsert_batch": 100,
        "max_metadata_bytes": 10 * 1024,
        "allowed_tiers": ["shared"],
        "allowed_engines": ["pgvector"],
        "monthly_price_cents": 0,
        "is_public": True,
        "sort_order": 10,
    },
    {
        "slug": "starter",
        "name": "Starter",
        "description": "Production workloads on the shared tier.",
        "max_indexes": 10,
        "max_vectors": 2_000_000,
        "max_storage_bytes": 20 * GiB,
        "max_qps": 50,
        "max_dimension": 4000,
        "max_upsert_batch": 500,
        "max_metadata_bytes": 40 * 1024,
        "allowed_tiers": ["shared"],
        "allowed_engines": ["pgvector"],
        "monthly_price_cents": 2_500,
        "is_public": True,
        "sort_order": 20,
    },
    {
        "slug": "pro",
        "name": "Pro",
        "description": "Dedicated pgvector or Qdrant clusters and higher limits.",
        "max_indexes": 50,
        "max_vectors": 50_000_000,
        "max_storage_bytes": 500 * GiB,
        "max_qps": 500,
        "max_dimension": 4000,
        "max_upsert_batch": 1000,
        "max_metadata_bytes": 40 * 1024,
        "allowed_tiers": ["shared", "dedicated"],
        "allowed_engines": ["pgvector", "qdrant"],
        "monthly_price_cents": 25_000,
        "is_public": True,
        "sort_order": 30,
    },
    {
        "slug": "enterprise",
        "name": "Enterprise",
        "description": "Negotiated limits; set per tenant with overrides.",
        "max_indexes": 1000,
        "max_vectors": 2_000_000_000,
        "max_storage_bytes": 20_000 * GiB,
        "max_qps": 5000,
        "max_dimension": 16000,
        "max_upsert_batch": 1000,
        "max_metadata_bytes": 40 * 1024,
        "allowed_tiers": ["shared", "dedicated"],
        "allowed_engines": ["pgvector", "qdrant"],
        "monthly_price_cents": 0,
        "is_public": False,
        "sort_order": 40,
    },
]


def seed(apps, schema_editor):
    Plan = apps.get_model("tenants", "Plan")
    for plan in PLANS:
        Plan.objects.update_or_create(slug=plan["slug"], defaults=plan)


def unseed(apps, schema_editor):
    Plan = apps.get_model("tenants", "Plan")
    Plan.objects.filter(slug__in=[p["slug"] for p in PLANS], tenants__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
