"""Base views: the actor of every request, and the tenant named in the URL, checked once."""

from __future__ import annotations

import ipaddress
from contextvars import Token
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest
from rest_framework import exceptions, permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from controlplane.errors import ApplicationError, PermissionDeniedError
from tenants.actors import Actor
from tenants.models import ROLE_RANK, ApiKey, PersonalAccessToken, Role, Scope, Tenant
from tenants.scoping import enter_tenant_scope, exit_tenant_scope
from tenants.selectors import tenant_get_for_actor


def _as_ip(value: str) -> str | None:
    """`value` as an IP address, accepting the `ip:port` and `[v6]:port` forms some proxies
    write; None for anything else (`unknown`, obfuscated identifiers)."""
    value = value.strip()
    candidates = [value]
    if value.startswith("[") and "]" in value:
        candidates.append(value[1 : value.index("]")])
    elif value.count(":") == 1:
        candidates.append(value.split(":", 1)[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def client_ip(request: HttpRequest) -> str | None:
    """The socket peer, or the address `VECTORPLANE_NUM_PROXIES` trusted proxies reported.
    Never raises and never returns a value the audit log's `inet` column would refuse."""
    proxies = settings.VECTORPLANE_NUM_PROXIES
    if proxies > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if len(hops) >= proxies:
            reported = _as_ip(hops[-proxies])
            if reported is not None:
                return reported
    return _as_ip(request.META.get("REMOTE_ADDR") or "")


class ManagementAccess(permissions.BasePermission):
    """Authenticated, and an API key must carry the admin scope to use the management API."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if isinstance(request.auth, ApiKey) and Scope.ADMIN not in request.auth.scopes:
            raise ApplicationError(
                "insufficient_scope",
                "This API key lacks the admin scope needed by the management API.",
                status=403,
                details={"required_scope": Scope.ADMIN, "scopes": request.auth.scopes},
            )
        return True


class BaseAPIView(APIView):
    permission_classes = [ManagementAccess]

    def actor(self) -> Actor:
        request = self.request
        auth = request.auth
        api_key = auth if isinstance(auth, ApiKey) else None
        return Actor(
            user=None if api_key is not None else request.user,
            api_key=api_key,
            via_token=isinstance(auth, PersonalAccessToken),
            ip=client_ip(request._request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        )


class TenantAPIView(BaseAPIView):
    """A view under `/api/v1/tenants/<tenant_slug>/...`.

    After authentication it loads the tenant named in the URL, answers 404 when the caller has
    no access to it (whether or not it exists), 403 when the caller's role is below
    `minimum_role[method]`, and then puts the tenant in scope for the rest of the request.
    """

    # Per HTTP method; default for unlisted methods: admin.
    minimum_role: dict[str, str] = {"GET": Role.VIEWER}

    tenant: Tenant
    role: str
    _scope_token: Token[UUID | None] | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        method = (request.method or "GET").lower()
        if method not in self.http_method_names or not hasattr(self, method):
            # 405 depends on the route only: the same for every role and every tenant.
            raise exceptions.MethodNotAllowed(request.method or "")
        tenant, role = tenant_get_for_actor(actor=self.actor(), slug=kwargs["tenant_slug"])
        # HEAD and OPTIONS read what GET reads.
        key = "GET" if method in {"head", "options"} else method.upper()
        needed = self.minimum_role.get(key, Role.ADMIN)
        if ROLE_RANK[role] < ROLE_RANK[needed]:
            raise PermissionDeniedError(
                f"This needs the {needed} role or higher in this tenant; you are {role}.",
                details={"required_role": needed, "role": role},
            )
        self.tenant, self.role = tenant, role
        self._scope_token = enter_tenant_scope(tenant.id)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            if self._scope_token is not None:
                exit_tenant_scope(self._scope_token)
                self._scope_token = None
