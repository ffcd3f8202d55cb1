"""Where the data plane answers for an index: built by the control plane (`describe_index`'s
`host`), parsed by the gateway (the host form of a request).

- path form (the default): `{gateway URL}/v1/indexes/{index}`; the tenant is the API key's;
- host form (Pinecone's): `{scheme}://{index}-{tenant slug}.{domain}`, a wildcard DNS name
  pointing at the gateway. Index names and slugs are DNS labels (`names`), and a slug has no
  `.`, so the last `-{slug}` of the first label splits it unambiguously for a known tenant.
"""

from __future__ import annotations


def index_host(
    *, index_name: str, tenant_slug: str, routing: str, domain: str, scheme: str,
    gateway_url: str,
) -> str:  # fmt: skip
    """The `host` of an index: the host form when `routing` is `host`, else the path form."""
    if routing == "host":
        return f"{scheme}://{index_name}-{tenant_slug}.{domain}"
    return f"{gateway_url.rstrip('/')}/v1/indexes/{index_name}"


def host_suffix(domain: str) -> str:
    """What a host-form request's host ends with (`""`: no host form configured)."""
    return "." + domain.lower() if domain else ""


def host_label(host_header: str, suffix: str) -> str | None:
    """The `{index}-{tenant}` label of a Host header in the host form, or None when the request
    is not in the host form (no domain configured, or another host)."""
    host = host_header.split(":")[0].lower()
    if not suffix or not host.endswith(suffix):
        return None
    return host[: -len(suffix)]


def index_of_label(label: str, tenant_slug: str) -> str | None:
    """The index a host label names for this tenant, or None when it names another tenant's
    (or nothing): the same answer as an unknown index."""
    suffix = "-" + tenant_slug
    if not label.endswith(suffix) or len(label) == len(suffix):
        return None
    return label[: -len(suffix)]
