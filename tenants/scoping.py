"""Tenant scoping that fails closed.

Every tenant-owned model uses `TenantScopedManager` as its default manager. Its querysets are
filtered to the tenant in scope, and building one with no tenant in scope raises
`TenantScopeRequired` instead of returning every tenant's rows (PostHog's team scoping,
NetBox's `restrict()`).

A tenant enters scope explicitly: the API's base view does it once per request after it has
checked the caller's access to the tenant named in the URL; Celery tasks do it with
`tenant_scope(tenant_id)`. The escape hatch is `Model.objects.unscoped()`, with a loud name, for
the Django admin (and operators' management commands), migrations, and named cross-tenant
lookups:

- the two that cannot know the tenant in advance: authenticating a key by its prefix
  (`selectors.api_key_get_for_authentication`), accepting an invitation by its token;
- those of background work, which then acts on each row inside `tenant_scope(row.tenant_id)`:
  the tenant of the cluster a Celery task was given by id
  (`provisioning.selectors.cluster_tenant_id`), the clusters reconcile's scans
  (`provisioning.selectors.clusters_due_for_reconcile`), the platform shutdown's
  (`provisioning.selectors.clusters_on_local_driver`), the hourly stored-vectors sample's
  (`provisioning.selectors.tenants_with_indexes`), the ANALYZE of freshly loaded index tables
  (`provisioning.selectors.pgvector_clusters_ready`: the databases to look at), the spend
  alerts' (`billing.alerts.alert_candidates`), the sweep of rotated keys
  (`services.api_keys_revoke_expired_grace`), and billing's hourly meter events and daily
  reconcile: the tenants with a Stripe customer (`billing.selectors.accounts_with_customer`),
  the meter events due to be sent (`billing.selectors.meter_events_due`), and the tenant a
  Stripe webhook's customer belongs to (`billing.selectors.tenant_of_customer`);
- the platform operators' console (`/api/v1/operator/...`, staff only, read-only): every
  tenant with its member count (`selectors.tenant_list_for_operators`), its index and cluster
  counts (`provisioning.selectors.operator_tenant_list`), every tenant's clusters
  (`provisioning.selectors.operator_cluster_list`). The vectors each tenant stores are still
  counted as that tenant, one tenant at a time, under the data tier's row-level security
  (`provisioning.selectors.stored_vectors_totals`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, Generic, TypeVar

from django.db import models

_current_tenant: ContextVar[uuid.UUID | None] = ContextVar("vectorplane_tenant", default=None)


class TenantScopeRequired(RuntimeError):
    """A tenant-scoped query was built with no tenant in scope."""


@contextmanager
def tenant_scope(tenant_id: uuid.UUID) -> Iterator[uuid.UUID]:
    if not isinstance(tenant_id, uuid.UUID):
        raise TypeError("tenant_scope() takes a tenant id (uuid.UUID)")
    token = _current_tenant.set(tenant_id)
    try:
        yield tenant_id
    finally:
        _current_tenant.reset(token)


def enter_tenant_scope(tenant_id: uuid.UUID) -> Token[uuid.UUID | None]:
    """For a scope that spans framework hooks (a request); pair with `exit_tenant_scope`."""
    return _current_tenant.set(tenant_id)


def exit_tenant_scope(token: Token[uuid.UUID | None]) -> None:
    _current_tenant.reset(token)


def current_tenant_id() -> uuid.UUID:
    tenant_id = _current_tenant.get()
    if tenant_id is None:
        raise TenantScopeRequired(
            "tenant-scoped query without a tenant in scope; wrap it in tenant_scope(tenant_id) "
            "or, for admin/migration code only, use .objects.unscoped()"
        )
    return tenant_id


def tenant_in_scope() -> uuid.UUID | None:
    return _current_tenant.get()


_M = TypeVar("_M", bound=models.Model)


class TenantScopedManager(models.Manager[_M], Generic[_M]):
    # Migrations get a plain manager: historical models must not depend on request state.
    use_in_migrations = False

    def get_queryset(self) -> models.QuerySet[_M]:
        tenant_id = current_tenant_id()
        return super().get_queryset().filter(tenant_id=tenant_id)

    def unscoped(self) -> models.QuerySet[_M]:
        """Every tenant's rows. For the admin, migrations and the named cross-tenant lookups
        of this module's docstring only."""
        return super().get_queryset()

    def create(self, **kwargs: Any) -> _M:
        tenant_id = current_tenant_id()
        given = kwargs.get("tenant_id") or getattr(kwargs.get("tenant"), "pk", None)
        if given is not None and given != tenant_id:
            raise TenantScopeRequired("creating a row for a tenant other than the one in scope")
        return super().create(**kwargs)
