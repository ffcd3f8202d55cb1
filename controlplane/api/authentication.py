"""Management API authentication: API keys with the admin scope, personal access tokens, and
sessions (with CSRF) for the console.

`Authorization: Bearer <secret>` carries either kind of token; `Api-Key: <secret>` (Pinecone's
header) carries an API key.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from tenants import credentials
from tenants.models import ApiKey, PersonalAccessToken, TenantStatus
from tenants.selectors import (
    api_key_get_for_authentication,
    api_key_is_usable,
    personal_token_get_for_authentication,
)
from tenants.services import api_key_touch, personal_token_touch


class CredentialError(exceptions.AuthenticationFailed):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.vectorplane_code = code


class KeyPrincipal(AnonymousUser):
    """`request.user` when an API key authenticated: not a person, never staff."""

    def __init__(self, api_key: ApiKey) -> None:
        super().__init__()
        self.api_key = api_key

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    def __str__(self) -> str:
        return f"api key vpk_{self.api_key.prefix}"


class TokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="vectorplane"'

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = request.META.get("HTTP_API_KEY")
        if raw is None:
            header = request.META.get("HTTP_AUTHORIZATION", "")
            if not header:
                return None
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer":
                return None
            raw = value
        raw = raw.strip()
        parsed = credentials.parse(raw)
        if parsed is None:
            raise CredentialError("invalid_credentials", "The key or token is not valid.")
        if parsed.kind == credentials.KEY_KIND:
            return self._authenticate_key(parsed)
        if parsed.kind == credentials.TOKEN_KIND:
            return self._authenticate_token(parsed)
        raise CredentialError("invalid_credentials", "The key or token is not valid.")

    def _authenticate_key(self, parsed: credentials.ParsedSecret) -> tuple[Any, Any]:
        key = api_key_get_for_authentication(prefix=parsed.prefix)
        if key is None or not credentials.matches(parsed.whole, key.secret_hash):
            raise CredentialError("invalid_credentials", "The key or token is not valid.")
        usable, reason = api_key_is_usable(key)
        if not usable:
            raise CredentialError(f"api_key_{reason}", f"This API key is {reason}.")
        if key.tenant.status == TenantStatus.DELETED:
            raise CredentialError("api_key_revoked", "This API key is revoked.")
        api_key_touch(api_key=key)
        return KeyPrincipal(key), key

    def _authenticate_token(self, parsed: credentials.ParsedSecret) -> tuple[Any, Any]:
        token = personal_token_get_for_authentication(prefix=parsed.prefix)
        if token is None or not credentials.matches(parsed.whole, token.secret_hash):
            raise CredentialError("invalid_credentials", "The key or token is not valid.")
        if token.revoked_at is not None:
            raise CredentialError("token_revoked", "This access token is revoked.")
        if token.expires_at is not None and token.expires_at <= timezone.now():
            raise CredentialError("token_expired", "This access token is expired.")
        if not token.user.is_active:
            raise CredentialError("invalid_credentials", "The key or token is not valid.")
        personal_token_touch(token=token)
        return token.user, token


class CsrfFailed(exceptions.PermissionDenied):
    vectorplane_code = "csrf_failed"


class CsrfSessionAuthentication(authentication.SessionAuthentication):
    """Session auth for the console; CSRF enforced on unsafe methods (DRF's behaviour), failing
    with its own code so a client can tell a missing token from a missing role."""

    def enforce_csrf(self, request: Request) -> None:
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as exc:
            raise CsrfFailed(exc.detail) from exc


def request_auth(request: Request) -> ApiKey | PersonalAccessToken | None:
    auth = request.auth
    if isinstance(auth, ApiKey | PersonalAccessToken):
        return auth
    return None
