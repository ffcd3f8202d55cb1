"""Create, once, the demo operator, the demo tenant and the demo API key; print how to use them.

Run by `python -m vectorplane run` after migrations. Idempotent: later runs reuse the account
and tenant, print the login again (its password is kept in the state folder, 0600), and do not
show the key's secret again (it was shown once; mint another with `--new-key`).

It lives in the project package (`controlplane`), not in `tenants`: it sets up the platform as a
whole (a tenant and its first index), and the base app knows nothing of the apps built on it.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from provisioning.models import Index
from provisioning.services.indexes import index_create
from tenants.actors import Actor
from tenants.models import ApiKey, Scope, Tenant
from tenants.scoping import tenant_scope
from tenants.services import api_key_create, tenant_create
from vectorplane import config

DEMO_EMAIL = "admin@vectorplane.local"
DEMO_TENANT = "demo"


class Command(BaseCommand):
    help = "Create the demo operator, tenant and API key (once) and print how to use them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--new-key", action="store_true", help="Mint another demo key.")
        parser.add_argument(
            "--json", action="store_true", help="Print a JSON document instead of text."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        state = config.state_dir()
        state.mkdir(parents=True, exist_ok=True)
        password_file = state / "secrets" / "demo-operator-password"
        User = get_user_model()
        key_secret: str | None = None
        with transaction.atomic():
            user = User.objects.filter(username=DEMO_EMAIL).first()
            if user is None:
                password = os.environ.get("VECTORPLANE_DEMO_PASSWORD") or secrets.token_urlsafe(12)
                user = User.objects.create_superuser(
                    username=DEMO_EMAIL, email=DEMO_EMAIL, password=password
                )
                _write_secret(password_file, password)
            actor = Actor(user=user)
            tenant = Tenant.objects.filter(slug=DEMO_TENANT).first()
            if tenant is None:
                # On `pro`: the demo tenant may order dedicated clusters (docs/clusters.md).
                tenant = tenant_create(actor=actor, name="Demo", slug=DEMO_TENANT, plan_slug="pro")
            with tenant_scope(tenant.id):
                has_key = ApiKey.objects.filter(name="demo").exists()
                has_index = Index.objects.filter(name="demo").exclude(status="deleted").exists()
            if not has_index:
                index_create(actor=actor, tenant=tenant, name="demo", dimension=3, text_field=True)
            if not has_key or options["new_key"]:
                _key, key_secret = api_key_create(
                    actor=actor,
                    tenant=tenant,
                    name="demo",
                    scopes=[Scope.READ, Scope.WRITE, Scope.ADMIN],
                )
        password_text = (
            password_file.read_text().strip() if password_file.exists() else "(set elsewhere)"
        )
        base = settings.VECTORPLANE_PUBLIC_URL.rstrip("/")
        info = {
            "console_url": f"{base}/console/",
            "admin_url": f"{base}/admin/",
            "api_url": f"{base}/api/v1/",
            "docs_url": f"{base}/api/v1/docs",
            "login": {"email": DEMO_EMAIL, "password": password_text},
            "tenant": tenant.slug,
            "api_key": key_secret,
        }
        if options["json"]:
            self.stdout.write(json.dumps(info))
            return
        line = "=" * 72
        key_text = (
            f"{key_secret}\n    (shown only this once: copy it now)"
            if key_secret
            else "created on the first run and shown then only;\n"
            "    mint another: .venv/bin/python manage.py vectorplane_bootstrap --new-key"
        )
        export = (
            f"export VECTORPLANE_KEY='{key_secret}'"
            if key_secret
            else "export VECTORPLANE_KEY=...   # your key (the demo key was shown on the first run)"
        )
        py_key = f"'{key_secret}'" if key_secret else "os.environ['VECTORPLANE_KEY']"
        gw = f"{config.gateway_public_url().rstrip('/')}/v1/indexes/demo"
        billing = (
            "on (Stripe: STRIPE_SECRET_KEY is set; README, Billing)"
            if config.env_str("STRIPE_SECRET_KEY", "")
            else "off (no STRIPE_SECRET_KEY: plans are assigned by operators)"
        )
        self.stdout.write(
            f"\n{line}\n Vectorplane is starting\n{line}\n"
            f"  Console         {info['console_url']}\n"
            f"  Django admin    {info['admin_url']}  (platform operators)\n"
            f"  API             {info['api_url']}\n"
            f"  API docs        {info['docs_url']}\n"
            f"  Login           {DEMO_EMAIL} / {password_text}\n"
            f"  Demo tenant     {tenant.slug}\n"
            f"  Demo API key    {key_text}\n\n"
            f"  Gateway         {config.gateway_public_url()}  (index `demo`: 3 dims, cosine)\n"
            f"  Billing         {billing}\n"
            f"\n  Try it (copy-paste):\n"
            f"    {export}\n"
            f'    curl -s -w "\\n" -X POST {gw}/vectors/upsert -H "Api-Key: $VECTORPLANE_KEY" \\\n'
            f"      -H 'Content-Type: application/json' -d '{{\"vectors\": [\n"
            f'        {{"id": "a", "values": [1, 0, 0], "metadata": {{"genre": "drama"}}}},\n'
            f'        {{"id": "b", "values": [0, 1, 0], "metadata": {{"genre": "comedy"}}}}]}}\'\n'
            f'    curl -s -w "\\n" -X POST {gw}/query -H "Api-Key: $VECTORPLANE_KEY" \\\n'
            f"      -H 'Content-Type: application/json' \\\n"
            f'      -d \'{{"vector": [1, 0, 0], "topK": 2, "includeMetadata": true, '
            f'"filter": {{"genre": {{"$eq": "drama"}}}}}}\'\n'
            f"\n  With the pinecone client (pip install pinecone):\n"
            f"    import os; from pinecone import Pinecone\n"
            f"    pc = Pinecone(api_key={py_key}, host='{base}')\n"
            f"    index = pc.Index('demo')\n"
            f"    index.upsert(vectors=[{{'id': 'c', 'values': [0, 0, 1]}}])\n"
            f"    print(index.query(vector=[0, 0, 1], top_k=1))\n"
            f"{line}\n"
        )


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
