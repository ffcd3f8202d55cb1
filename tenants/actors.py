"""Who is acting: a user (by session or personal token), an API key, or the system."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from .models import ApiKey


@dataclass(frozen=True)
class Actor:
    user: AbstractBaseUser | AnonymousUser | None = None
    api_key: ApiKey | None = None
    via_token: bool = False
    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def system(cls) -> Actor:
        return cls()

    @property
    def is_system(self) -> bool:
        return self.user is None and self.api_key is None

    @property
    def authenticated_user(self) -> AbstractBaseUser | None:
        user = self.user
        if user is None or not user.is_authenticated:
            return None
        return user

    @property
    def is_operator(self) -> bool:
        user = self.authenticated_user
        return bool(user is not None and user.is_active and getattr(user, "is_staff", False))

    @property
    def label(self) -> str:
        if self.api_key is not None:
            return f"key {self.api_key.name} (vpk_{self.api_key.prefix})"
        user = self.authenticated_user
        if user is not None:
            return str(user.get_username())
        return "system"
