"""Reads of indexes (tenant in scope)."""

from __future__ import annotations

from django.db.models import QuerySet

from controlplane.errors import NotFoundError
from vectorplane import config

from .models import Index, IndexStatus


def index_list() -> QuerySet[Index]:
    return Index.objects.exclude(status=IndexStatus.DELETED)


def index_get(*, name: str) -> Index:
    index = index_list().filter(name=name).first()
    if index is None:
        raise NotFoundError("index", details={"index": name})
    return index


def index_host(index: Index, *, tenant_slug: str) -> str:
    """Where the data plane answers for this index: the path form by default
    (`http://gateway/v1/indexes/{name}`, tenant taken from the key), or Pinecone's
    host-per-index form (`https://{name}-{tenant}.{domain}`) when
    VECTORPLANE_GATEWAY_ROUTING=host."""
    if config.env_str("VECTORPLANE_GATEWAY_ROUTING", "path") == "host":
        domain = config.env_str("VECTORPLANE_GATEWAY_DOMAIN")
        scheme = config.env_str("VECTORPLANE_GATEWAY_SCHEME", "https")
        return f"{scheme}://{index.name}-{tenant_slug}.{domain}"
    return f"{config.gateway_public_url().rstrip('/')}/v1/indexes/{index.name}"
