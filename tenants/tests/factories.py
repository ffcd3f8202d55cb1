"""Factories for the tenants app. Rows that belong to a tenant are created through the
services where a rule matters (keys: hashing), or directly inside `tenant_scope`."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model

from tenants import services
from tenants.actors import Actor
from tenants.models import ApiKey, Membership, Plan, Role, Scope, Tenant
from tenants.scoping import tenant_scope

User = get_user_model()

PASSWORD = "correct horse battery staple 42"


class UserFactory(factory.django.DjangoModelFactory[Any]):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    username = factory.SelfAttribute("email")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation  # type: ignore[untyped-decorator]
    def _save(obj: Any, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            obj.save()


def make_tenant(*, owner: Any = None, name: str = "Acme", slug: str | None = None) -> Tenant:
    owner = owner or UserFactory()
    return services.tenant_create(actor=Actor(user=owner), name=name, slug=slug)


def add_member(tenant: Tenant, user: Any = None, role: str = Role.MEMBER) -> Any:
    user = user or UserFactory()
    with tenant_scope(tenant.id):
        Membership.objects.create(tenant=tenant, user=user, role=role)
    return user


def make_key(
    tenant: Tenant,
    *,
    by: Any = None,
    scopes: list[str] | None = None,
    name: str = "key",
) -> tuple[ApiKey, str]:
    """A key minted through the service (so it is hashed) by an owner of the tenant."""
    if by is None:
        with tenant_scope(tenant.id):
            by = Membership.objects.filter(role=Role.OWNER).first().user  # type: ignore[union-attr]
    return services.api_key_create(
        actor=Actor(user=by),
        tenant=tenant,
        name=name,
        scopes=scopes or [Scope.READ, Scope.WRITE],
    )


def plan(slug: str) -> Plan:
    return Plan.objects.get(slug=slug)
