"""Who is asking, and may they: the API key, the tenant's state and rate, the index named.

Each step answers with the gateway's error shape (`gateway/errors.py`); the order matters for
what a caller can learn: a key restricted to some indexes is refused *before* the index is
looked up, so it cannot tell which names exist; another tenant's host form answers like an
unknown index.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import UTC, datetime

from starlette.requests import Request

from vectorplane.contract import hosts, names

from .errors import GatewayError, not_found_index
from .registry import IndexInfo, KeyInfo
from .runtime import Gateway


async def authenticate(gw: Gateway, request: Request) -> KeyInfo:
    """The key of `Api-Key: vpk_...` (or `Authorization: Bearer vpk_...`): a cached prefix
    lookup and one HMAC. Raises 401 (unknown, revoked, expired) or 403 (tenant suspended)."""
    raw = request.headers.get("api-key")
    if raw is None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            raw = auth[7:]
    if not raw:
        raise GatewayError(401, "unauthenticated", "Send your API key in the Api-Key header.")
    raw = raw.strip()
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != "vpk" or len(parts[1]) != 12 or len(raw) > 200:
        raise GatewayError(401, "invalid_credentials", "The API key is not valid.")
    key = await gw.registry.key(parts[1])
    digest = hmac.new(gw.pepper, raw.encode(), hashlib.sha256).hexdigest()
    if key is None or not hmac.compare_digest(digest, key.secret_hash):
        raise GatewayError(401, "invalid_credentials", "The API key is not valid.")
    now = datetime.now(UTC)
    if key.revoked_at is not None or (key.revoke_after is not None and key.revoke_after <= now):
        raise GatewayError(401, "api_key_revoked", "This API key is revoked.")
    if key.expires_at is not None and key.expires_at <= now:
        raise GatewayError(401, "api_key_expired", "This API key is expired.")
    if key.tenant_status == "deleted":
        raise GatewayError(401, "api_key_revoked", "This API key is revoked.")
    if key.tenant_status == "suspended":
        raise GatewayError(403, "tenant_suspended", "This tenant is suspended.")
    return key


async def throttle(gw: Gateway, key: KeyInfo) -> None:
    """The tenant's request rate (one limit across gateway processes: gateway/ratelimit.py);
    429 `rate_limited` with `Retry-After` past it."""
    limits = await gw.registry.limits(key.tenant_id)
    wait = await gw.limiter.admit(key.tenant_id, limits.max_qps)
    if wait is not None:
        raise GatewayError(
            429,
            "rate_limited",
            f"Your plan allows {limits.max_qps} requests per second.",
            {"max_qps": limits.max_qps},
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def host_index(gw: Gateway, request: Request, key: KeyInfo) -> str | None:
    """The index of a host-form request (`{index}-{tenant}.{domain}`), or None when the request
    is not in the host form."""
    label = hosts.host_label(request.headers.get("host", ""), gw.host_suffix)
    if label is None:
        return None
    index = hosts.index_of_label(label, key.tenant_slug)
    if index is None:
        # Another tenant's host (or a made-up one): the same answer as an unknown index.
        raise not_found_index(label)
    return index


def require_scope(key: KeyInfo, scope: str) -> None:
    """The key has the operation's scope; and a write of a tenant whose payment is overdue past
    its grace period is refused with 402 `payment_required` (Pinecone's code), reads still
    answer."""
    if scope not in key.scopes:
        raise GatewayError(
            403,
            "insufficient_scope",
            f"This API key lacks the {scope} scope.",
            {"required_scope": scope, "scopes": sorted(key.scopes)},
        )
    if scope == "write" and key.tenant_payment_state == "payment_required":
        raise GatewayError(
            402,
            "payment_required",
            "Writes are paused: this tenant's payment is overdue. Pay the open invoice in the "
            "console's Billing page; writes resume within a second of the payment.",
            {"payment_state": key.tenant_payment_state},
        )


async def resolve_index(gw: Gateway, key: KeyInfo, name: str) -> IndexInfo:
    """The key's tenant's ready index of that name. A key restricted to other indexes gets 403
    before any lookup (it cannot probe names); a name that cannot exist (wrong characters, NUL,
    too long) and an unknown one both answer 404."""
    if key.index_names and name not in key.index_names:
        raise GatewayError(
            403, "index_forbidden", "This API key may not use that index.", {"index": name}
        )
    if not names.is_name(name):  # it cannot exist (nor reach PostgreSQL with NUL)
        raise not_found_index(name)
    index = await gw.registry.index(key.tenant_id, name)
    if index is None:
        raise not_found_index(name)
    return index
