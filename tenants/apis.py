"""Management API views: one view per resource path, an input and an output serializer per
operation, business rules in services. Errors propagate to the one exception handler."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.contrib.auth import authenticate, get_user_model, login, logout
from django.db.models import OuterRef, QuerySet, Subquery
from django.middleware.csrf import get_token
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.pagination import PAGINATION_PARAMETERS, paginate, paginated, query_filters
from controlplane.api.schema import ROW_FILTER_SCHEMA, errors
from controlplane.api.serializers import QueryInputSerializer, StrictInputSerializer
from controlplane.api.views import BaseAPIView, TenantAPIView, client_ip
from controlplane.errors import ApplicationError, NotFoundError
from vectorplane.contract import names

from . import selectors, services
from .actors import Actor
from .models import (
    ApiKey,
    AuditEvent,
    Engine,
    Invitation,
    Membership,
    PaymentState,
    PersonalAccessToken,
    Role,
    Scope,
    Tenant,
    Tier,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User as DjangoUser

User = get_user_model()

def _bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "false").lower()
    if raw not in {"true", "false", "1", "0"}:
        raise ApplicationError(
            "validation_error", f"{name} must be true or false.", details={name: raw}
        )
    return raw in {"true", "1"}


# =========================================================================== auth


class UserOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.SerializerMethodField()
    is_operator = serializers.BooleanField(source="is_staff")

    def get_name(self, user: Any) -> str:
        return str(user.get_full_name())


class LoginInput(StrictInputSerializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=256, trim_whitespace=False)


# An account's e-mail address is its Django username (at most 150 characters): longer
# addresses (RFC 5321 allows 254) are refused at sign-up and invitation, never stored cut.
MAX_EMAIL_LENGTH = 150


class SignupInput(StrictInputSerializer):
    email = serializers.EmailField(max_length=MAX_EMAIL_LENGTH)
    password = serializers.CharField(min_length=8, max_length=256, trim_whitespace=False)
    name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class CsrfOutput(serializers.Serializer[Any]):
    csrf_token = serializers.CharField()


class CsrfApi(BaseAPIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="auth_csrf",
        tags=["auth"],
        description="Sets the CSRF cookie and returns the token to send as `X-CSRFToken` with "
        "session-authenticated unsafe requests.",
        responses={200: CsrfOutput},
    )
    def get(self, request: Request) -> Response:
        return Response({"csrf_token": get_token(request._request)})


class LoginApi(BaseAPIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="auth_login",
        tags=["auth"],
        description="Starts a session (cookie) for the console. Use tokens for scripts.",
        request=LoginInput,
        responses={200: UserOutput, **errors(400, 401)},
    )
    def post(self, request: Request) -> Response:
        data = LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=data.validated_data["email"].lower(),
            password=data.validated_data["password"],
        )
        if user is None:
            raise ApplicationError(
                "invalid_credentials", "Wrong email address or password.", status=401
            )
        login(request._request, user)
        services.audit_record(
            actor=Actor(
                user=user,
                ip=client_ip(request._request),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            ),
            action="user.logged_in",
            tenant=None,
            target_type="user",
            target_id=user.pk,
            target_label=user.get_username(),
        )
        return Response(UserOutput(user).data)


class LogoutApi(BaseAPIView):
    @extend_schema(
        operation_id="auth_logout",
        tags=["auth"],
        description="Ends the current session.",
        request=None,
        responses={204: None, **errors(401)},
    )
    def post(self, request: Request) -> Response:
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeOutput(serializers.Serializer[Any]):
    user = UserOutput(allow_null=True)
    api_key = serializers.DictField(allow_null=True)


class MeApi(BaseAPIView):
    @extend_schema(
        operation_id="auth_me",
        tags=["auth"],
        description="Who the credentials belong to: the user, or the API key and its tenant.",
        responses={200: MeOutput, **errors(401, 403)},
    )
    def get(self, request: Request) -> Response:
        actor = self.actor()
        if actor.api_key is not None:
            key = actor.api_key
            return Response(
                {
                    "user": None,
                    "api_key": {
                        "id": str(key.id),
                        "prefix": f"vpk_{key.prefix}",
                        "tenant": key.tenant.slug,
                        "scopes": key.scopes,
                    },
                }
            )
        return Response({"user": UserOutput(request.user).data, "api_key": None})


class SignupApi(BaseAPIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes = []

    @extend_schema(
        operation_id="auth_signup",
        tags=["auth"],
        description="Creates a user account and signs it in. Disabled when "
        "VECTORPLANE_ALLOW_SIGNUP=false.",
        request=SignupInput,
        responses={201: UserOutput, **errors(400, 403, 409)},
    )
    def post(self, request: Request) -> Response:
        data = SignupInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_signup(
            actor=Actor(
                ip=client_ip(request._request), user_agent=request.META.get("HTTP_USER_AGENT", "")
            ),
            **data.validated_data,
        )
        login(
            request._request,
            cast("DjangoUser", user),
            backend="django.contrib.auth.backends.ModelBackend",
        )
        return Response(UserOutput(user).data, status=status.HTTP_201_CREATED)


# =========================================================================== tenants


class TenantOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    status_reason = serializers.CharField()
    plan = serializers.CharField(source="plan.slug")
    role = serializers.SerializerMethodField(help_text="The caller's role in this tenant.")
    payment_state = serializers.ChoiceField(
        PaymentState.choices,
        help_text="`past_due`: a payment failed, everything works until the grace period ends; "
        "`payment_required`: writes are refused with 402 until an invoice is paid.",
    )
    payment_state_since = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_role(self, tenant: Tenant) -> str | None:
        role = getattr(tenant, "caller_role", None)
        if role is not None:
            return str(role)
        return self.context.get("role")


class TenantCreateInput(StrictInputSerializer):
    name = serializers.CharField(max_length=100)
    slug = serializers.CharField(max_length=40, required=False)
    plan = serializers.CharField(max_length=40, required=False, help_text="Operators only.")


class TenantUpdateInput(StrictInputSerializer):
    name = serializers.CharField(max_length=100, required=False)


class TenantListApi(BaseAPIView):
    @extend_schema(
        operation_id="tenants_list",
        tags=["tenants"],
        description="Tenants the caller belongs to (an admin key: its own tenant). Operators "
        "may pass `all=true` to list every tenant, deleted ones included.",
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("all", bool, description="Operators: every tenant."),
        ],
        responses={200: paginated(TenantOutput), **errors(400, 401, 403)},
    )
    def get(self, request: Request) -> Response:
        actor = self.actor()
        qs: QuerySet[Tenant] = selectors.tenant_list_for_actor(
            actor=actor, include_all=_bool_param(request, "all")
        )
        user = actor.authenticated_user
        if user is not None:
            qs = qs.annotate(
                caller_role=Subquery(
                    Membership.objects.unscoped()
                    .filter(tenant_id=OuterRef("pk"), user_id=user.pk)
                    .values("role")[:1]
                )
            )
        return paginate(
            request,
            qs,
            serializer_class=TenantOutput,
            context={"role": Role.ADMIN if actor.api_key is not None else None},
        )

    @extend_schema(
        operation_id="tenants_create",
        tags=["tenants"],
        description="Creates a tenant on the free plan; the caller becomes its owner. The slug "
        "is derived from the name unless given.",
        request=TenantCreateInput,
        responses={201: TenantOutput, **errors(400, 401, 403, 409)},
    )
    def post(self, request: Request) -> Response:
        data = TenantCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        tenant = services.tenant_create(
            actor=self.actor(),
            name=data.validated_data["name"],
            slug=data.validated_data.get("slug"),
            plan_slug=data.validated_data.get("plan"),
        )
        return Response(
            TenantOutput(tenant, context={"role": Role.OWNER}).data, status=status.HTTP_201_CREATED
        )


TENANT_ERRORS = errors(400, 401, 403, 404)


class TenantDetailApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER, "PATCH": Role.ADMIN, "DELETE": Role.ADMIN}

    @extend_schema(
        operation_id="tenants_retrieve",
        tags=["tenants"],
        description="One tenant. 404 when the caller has no access, whether or not it exists.",
        responses={200: TenantOutput, **TENANT_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        return Response(TenantOutput(self.tenant, context={"role": self.role}).data)

    @extend_schema(
        operation_id="tenants_update",
        tags=["tenants"],
        description="Renames the tenant (admins and owners).",
        request=TenantUpdateInput,
        responses={200: TenantOutput, **TENANT_ERRORS},
    )
    def patch(self, request: Request, tenant_slug: str) -> Response:
        data = TenantUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        tenant = services.tenant_update(
            actor=self.actor(), tenant=self.tenant, name=data.validated_data.get("name")
        )
        return Response(TenantOutput(tenant, context={"role": self.role}).data)

    @extend_schema(
        operation_id="tenants_destroy",
        tags=["tenants"],
        description="Deletes the tenant (owners): every key is revoked and pending invitations "
        "withdrawn; the slug stays reserved.",
        responses={204: None, **TENANT_ERRORS},
    )
    def delete(self, request: Request, tenant_slug: str) -> Response:
        services.tenant_delete(actor=self.actor(), tenant=self.tenant)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SuspendInput(StrictInputSerializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class TenantSuspendApi(TenantAPIView):
    @extend_schema(
        operation_id="tenants_suspend",
        tags=["tenants"],
        description="Operators: suspends the tenant. Its members keep read access; writes and "
        "data-plane access are refused with `tenant_suspended`.",
        request=SuspendInput,
        responses={200: TenantOutput, **TENANT_ERRORS},
    )
    def post(self, request: Request, tenant_slug: str) -> Response:
        data = SuspendInput(data=request.data)
        data.is_valid(raise_exception=True)
        tenant = services.tenant_suspend(
            actor=self.actor(), tenant=self.tenant, reason=data.validated_data["reason"]
        )
        return Response(TenantOutput(tenant, context={"role": self.role}).data)


class TenantReactivateApi(TenantAPIView):
    @extend_schema(
        operation_id="tenants_reactivate",
        tags=["tenants"],
        description="Operators: lifts a suspension.",
        request=None,
        responses={200: TenantOutput, **TENANT_ERRORS},
    )
    def post(self, request: Request, tenant_slug: str) -> Response:
        tenant = services.tenant_reactivate(actor=self.actor(), tenant=self.tenant)
        return Response(TenantOutput(tenant, context={"role": self.role}).data)


# =========================================================================== plans and limits


class LimitsFields(serializers.Serializer[Any]):
    max_indexes = serializers.IntegerField(min_value=0)
    max_vectors = serializers.IntegerField(min_value=0)
    max_storage_bytes = serializers.IntegerField(min_value=0)
    max_qps = serializers.IntegerField(min_value=0)
    max_dimension = serializers.IntegerField(min_value=1)
    max_upsert_batch = serializers.IntegerField(min_value=1)
    max_metadata_bytes = serializers.IntegerField(min_value=0)
    allowed_tiers = serializers.ListField(child=serializers.ChoiceField(Tier.choices))
    allowed_engines = serializers.ListField(child=serializers.ChoiceField(Engine.choices))
    max_clusters = serializers.IntegerField(
        min_value=0, help_text="Dedicated clusters at once (0: none); the plan's."
    )
    allowed_cluster_sizes = serializers.ListField(
        child=serializers.CharField(), help_text="Cluster sizes the plan allows (`cluster_sizes`)."
    )
    max_cluster_replicas = serializers.IntegerField(min_value=1, help_text="The plan's.")


class PlanOutput(LimitsFields):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    monthly_price_cents = serializers.IntegerField()
    is_public = serializers.BooleanField()


# Built with type(): a class attribute named `data` would shadow Serializer.data for mypy.
PlanListOutput = type("PlanListOutput", (serializers.Serializer,), {"data": PlanOutput(many=True)})


class PlanListApi(BaseAPIView):
    @extend_schema(
        operation_id="plans_list",
        tags=["plans"],
        description="Plans on offer and their limits. Operators also see private plans.",
        responses={200: PlanListOutput, **errors(401, 403)},
    )
    def get(self, request: Request) -> Response:
        plans = selectors.plan_list(include_private=self.actor().is_operator)
        return Response({"data": PlanOutput(plans, many=True).data})


class LimitsOutput(serializers.Serializer[Any]):
    plan = serializers.CharField()
    limits = LimitsFields()
    overridden = serializers.ListField(
        child=serializers.CharField(), help_text="Limits that a per-tenant override replaces."
    )


INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


class LimitsOverrideInput(StrictInputSerializer):
    max_indexes = serializers.IntegerField(
        min_value=0, max_value=INT32_MAX, required=False, allow_null=True
    )
    max_vectors = serializers.IntegerField(
        min_value=0, max_value=INT64_MAX, required=False, allow_null=True
    )
    max_storage_bytes = serializers.IntegerField(
        min_value=0, max_value=INT64_MAX, required=False, allow_null=True
    )
    max_qps = serializers.IntegerField(
        min_value=0, max_value=INT32_MAX, required=False, allow_null=True
    )
    max_dimension = serializers.IntegerField(
        min_value=1, max_value=65536, required=False, allow_null=True
    )
    max_upsert_batch = serializers.IntegerField(
        min_value=1, max_value=1000, required=False, allow_null=True
    )
    max_metadata_bytes = serializers.IntegerField(
        min_value=0, max_value=40960, required=False, allow_null=True
    )
    allowed_tiers = serializers.ListField(
        child=serializers.ChoiceField(Tier.choices), required=False, allow_null=True
    )
    allowed_engines = serializers.ListField(
        child=serializers.ChoiceField(Engine.choices), required=False, allow_null=True
    )
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


def _limits_response(tenant: Tenant) -> Response:
    eff = selectors.tenant_effective_limits(tenant=tenant)
    return Response({"plan": eff.plan, "limits": eff.limits, "overridden": eff.overridden})


class TenantLimitsApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER, "PUT": Role.ADMIN}

    @extend_schema(
        operation_id="tenants_limits_retrieve",
        tags=["plans"],
        description="The effective limits of the tenant: its plan's, with per-tenant overrides.",
        responses={200: LimitsOutput, **TENANT_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        return _limits_response(self.tenant)

    @extend_schema(
        operation_id="tenants_limits_override",
        tags=["plans"],
        description="Operators: replaces the tenant's overrides. Omitted or null fields fall "
        "back to the plan's limits.",
        request=LimitsOverrideInput,
        responses={200: LimitsOutput, **TENANT_ERRORS},
    )
    def put(self, request: Request, tenant_slug: str) -> Response:
        data = LimitsOverrideInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        reason = values.pop("reason", "")
        services.tenant_limits_override_set(
            actor=self.actor(), tenant=self.tenant, values=values, reason=reason
        )
        return _limits_response(self.tenant)


class PlanChangeInput(StrictInputSerializer):
    plan = serializers.CharField(max_length=40)


class TenantPlanApi(TenantAPIView):
    @extend_schema(
        operation_id="tenants_plan_change",
        tags=["plans"],
        description="Operators: moves the tenant to another plan.",
        request=PlanChangeInput,
        responses={200: TenantOutput, **TENANT_ERRORS},
    )
    def put(self, request: Request, tenant_slug: str) -> Response:
        data = PlanChangeInput(data=request.data)
        data.is_valid(raise_exception=True)
        tenant = services.tenant_change_plan(
            actor=self.actor(), tenant=self.tenant, plan_slug=data.validated_data["plan"]
        )
        return Response(TenantOutput(tenant, context={"role": self.role}).data)


# =========================================================================== members


class MemberOutput(serializers.Serializer[Any]):
    user_id = serializers.IntegerField()
    email = serializers.EmailField(source="user.email")
    name = serializers.SerializerMethodField()
    role = serializers.ChoiceField(Role.choices)
    created_at = serializers.DateTimeField()

    def get_name(self, membership: Membership) -> str:
        return str(membership.user.get_full_name())


class MemberUpdateInput(StrictInputSerializer):
    role = serializers.ChoiceField(Role.choices)


class MemberListApi(TenantAPIView):
    @extend_schema(
        operation_id="members_list",
        tags=["members"],
        description="Members of the tenant and their roles.",
        parameters=PAGINATION_PARAMETERS,
        responses={200: paginated(MemberOutput), **TENANT_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        return paginate(request, selectors.membership_list(), serializer_class=MemberOutput)


class MemberDetailApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER, "PATCH": Role.ADMIN, "DELETE": Role.VIEWER}

    @extend_schema(
        operation_id="members_retrieve",
        tags=["members"],
        description="One member.",
        responses={200: MemberOutput, **TENANT_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str, user_id: int) -> Response:
        return Response(MemberOutput(selectors.membership_get(user_id=user_id)).data)

    @extend_schema(
        operation_id="members_update",
        tags=["members"],
        description="Changes a member's role (admins; only owners grant or remove the owner "
        "role). The last owner cannot be demoted (`last_owner`).",
        request=MemberUpdateInput,
        responses={200: MemberOutput, **errors(400, 401, 403, 404, 409)},
    )
    def patch(self, request: Request, tenant_slug: str, user_id: int) -> Response:
        data = MemberUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_change_role(
            actor=self.actor(),
            tenant=self.tenant,
            membership=selectors.membership_get(user_id=user_id),
            role=data.validated_data["role"],
        )
        return Response(MemberOutput(membership).data)

    @extend_schema(
        operation_id="members_destroy",
        tags=["members"],
        description="Removes a member (admins; only owners remove owners), or leaves the "
        "tenant when it is the caller. The last owner cannot be removed (`last_owner`).",
        responses={204: None, **errors(401, 403, 404, 409)},
    )
    def delete(self, request: Request, tenant_slug: str, user_id: int) -> Response:
        services.membership_remove(
            actor=self.actor(),
            tenant=self.tenant,
            membership=selectors.membership_get(user_id=user_id),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# =========================================================================== invitations


class InvitationOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    role = serializers.ChoiceField(Role.choices)
    status = serializers.SerializerMethodField()
    invited_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    accepted_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)

    def get_status(self, invitation: Invitation) -> str:
        if invitation.accepted_at:
            return "accepted"
        if invitation.revoked_at:
            return "revoked"
        if invitation.expires_at <= timezone.now():
            return "expired"
        return "pending"

    def get_invited_by(self, invitation: Invitation) -> str | None:
        return invitation.invited_by.email if invitation.invited_by else None


class InvitationCreatedOutput(InvitationOutput):
    token = serializers.CharField(
        help_text="Shown only now. The invited user accepts with POST /api/v1/invitations/accept."
    )


class InvitationCreateInput(StrictInputSerializer):
    email = serializers.EmailField(max_length=MAX_EMAIL_LENGTH)
    role = serializers.ChoiceField(Role.choices, default=Role.MEMBER)


class InvitationListApi(TenantAPIView):
    minimum_role = {"GET": Role.ADMIN, "POST": Role.ADMIN}

    @extend_schema(
        operation_id="invitations_list",
        tags=["invitations"],
        description="Invitations of the tenant, newest first (admins).",
        parameters=PAGINATION_PARAMETERS,
        responses={200: paginated(InvitationOutput), **TENANT_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        qs = Invitation.objects.select_related("invited_by")
        return paginate(request, qs, serializer_class=InvitationOutput)

    @extend_schema(
        operation_id="invitations_create",
        tags=["invitations"],
        description="Invites an email address with a role. The token in the answer is the "
        "invitation: hand it to the person (no mail server is needed).",
        request=InvitationCreateInput,
        responses={201: InvitationCreatedOutput, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, tenant_slug: str) -> Response:
        data = InvitationCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, token = services.invitation_create(
            actor=self.actor(), tenant=self.tenant, **data.validated_data
        )
        body = dict(InvitationOutput(invitation).data)
        body["token"] = token
        return Response(body, status=status.HTTP_201_CREATED)


class InvitationDetailApi(TenantAPIView):
    minimum_role = {"DELETE": Role.ADMIN}

    @extend_schema(
        operation_id="invitations_revoke",
        tags=["invitations"],
        description="Withdraws a pending invitation.",
        responses={204: None, **TENANT_ERRORS},
    )
    def delete(self, request: Request, tenant_slug: str, invitation_id: Any) -> Response:
        invitation = Invitation.objects.filter(pk=invitation_id).first()
        if invitation is None:
            raise NotFoundError("invitation")
        services.invitation_revoke(actor=self.actor(), tenant=self.tenant, invitation=invitation)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationAcceptInput(StrictInputSerializer):
    token = serializers.CharField(max_length=200)


class InvitationAcceptOutput(serializers.Serializer[Any]):
    tenant = serializers.CharField(source="tenant.slug")
    role = serializers.ChoiceField(Role.choices)


class InvitationAcceptApi(BaseAPIView):
    @extend_schema(
        operation_id="invitations_accept",
        tags=["invitations"],
        description="Accepts an invitation as the signed-in user, whose email address must be "
        "the invited one.",
        request=InvitationAcceptInput,
        responses={200: InvitationAcceptOutput, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request) -> Response:
        data = InvitationAcceptInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.invitation_accept(
            actor=self.actor(), token=data.validated_data["token"]
        )
        return Response(InvitationAcceptOutput(membership).data)


# =========================================================================== API keys


@extend_schema_field(ROW_FILTER_SCHEMA)
class RowFilterField(serializers.JSONField):
    """A key's row filter (validated by the service with the filter language's rules)."""


class ApiKeyOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.SerializerMethodField(help_text="Public part, shown to recognise the key.")
    status = serializers.SerializerMethodField()
    scopes = serializers.ListField(child=serializers.ChoiceField(Scope.choices))
    index_names = serializers.ListField(
        child=serializers.CharField(), help_text="Empty: every index."
    )
    namespaces = serializers.ListField(
        child=serializers.CharField(), help_text="Empty: every namespace."
    )
    row_filter = RowFilterField(allow_null=True)
    id_prefix = serializers.CharField(
        help_text="Every id this key writes starts with it (empty: no restriction)."
    )
    expires_at = serializers.DateTimeField(allow_null=True)
    revoke_after = serializers.DateTimeField(
        allow_null=True, help_text="Set on a rotated key: when its grace period ends."
    )
    revoked_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    rotated_from = serializers.UUIDField(source="rotated_from_id", allow_null=True)
    created_at = serializers.DateTimeField()

    def get_prefix(self, key: ApiKey) -> str:
        return f"vpk_{key.prefix}"

    def get_status(self, key: ApiKey) -> str:
        usable, reason = selectors.api_key_is_usable(key)
        if usable:
            return "rotating" if key.revoke_after else "active"
        return reason


class ApiKeyCreatedOutput(ApiKeyOutput):
    key = serializers.CharField(help_text="The secret, shown only now; store it safely.")


class ApiKeyCreateInput(StrictInputSerializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(Scope.choices), min_length=1, max_length=3
    )
    index_names = serializers.ListField(
        child=serializers.RegexField(names.NAME_PATTERN, max_length=names.MAX_NAME_LENGTH),
        required=False,
        max_length=100,
        default=list,
    )
    namespaces = serializers.ListField(
        child=serializers.CharField(max_length=128, allow_blank=True),
        required=False,
        max_length=100,
        default=list,
    )
    row_filter = RowFilterField(required=False, allow_null=True, default=None)
    id_prefix = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=256,
        default="",
        trim_whitespace=False,
        help_text="Confines the key's writes (upsert, update, delete by id) to ids that start "
        "with it, e.g. `u42#`. Required with a row_filter and the write scope, so that end "
        "users' ids never collide and a key cannot probe ids outside its rows.",
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class ApiKeyRotateInput(StrictInputSerializer):
    grace_seconds = serializers.IntegerField(
        min_value=0,
        max_value=30 * 24 * 3600,
        required=False,
        help_text="How long the old key keeps working (default: the server's setting).",
    )


def _created_key_body(key: ApiKey, secret: str) -> dict[str, Any]:
    body = dict(ApiKeyOutput(key).data)
    body["key"] = secret
    return body


class ApiKeyListApi(TenantAPIView):
    minimum_role = {"GET": Role.MEMBER, "POST": Role.MEMBER}

    @extend_schema(
        operation_id="api_keys_list",
        tags=["api-keys"],
        description="The tenant's API keys (never their secrets), newest first.",
        parameters=PAGINATION_PARAMETERS,
        responses={200: paginated(ApiKeyOutput), **TENANT_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        return paginate(request, selectors.api_key_list(), serializer_class=ApiKeyOutput)

    @extend_schema(
        operation_id="api_keys_create",
        tags=["api-keys"],
        description="Mints a key. The secret is in this answer only. Members may mint read/write "
        "keys; the admin scope needs an admin or owner.",
        request=ApiKeyCreateInput,
        responses={201: ApiKeyCreatedOutput, **TENANT_ERRORS},
    )
    def post(self, request: Request, tenant_slug: str) -> Response:
        data = ApiKeyCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        key, secret = services.api_key_create(
            actor=self.actor(), tenant=self.tenant, **data.validated_data
        )
        return Response(_created_key_body(key, secret), status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(TenantAPIView):
    minimum_role = {"GET": Role.MEMBER}

    @extend_schema(
        operation_id="api_keys_retrieve",
        tags=["api-keys"],
        description="One API key (never its secret).",
        responses={200: ApiKeyOutput, **TENANT_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str, key_id: Any) -> Response:
        return Response(ApiKeyOutput(selectors.api_key_get(key_id=key_id)).data)


class ApiKeyRevokeApi(TenantAPIView):
    minimum_role = {"POST": Role.MEMBER}

    @extend_schema(
        operation_id="api_keys_revoke",
        tags=["api-keys"],
        description="Revokes a key at once. Members may revoke the keys they created.",
        request=None,
        responses={200: ApiKeyOutput, **TENANT_ERRORS},
    )
    def post(self, request: Request, tenant_slug: str, key_id: Any) -> Response:
        key = services.api_key_revoke(
            actor=self.actor(), tenant=self.tenant, api_key=selectors.api_key_get(key_id=key_id)
        )
        return Response(ApiKeyOutput(key).data)


class ApiKeyRotateApi(TenantAPIView):
    minimum_role = {"POST": Role.MEMBER}

    @extend_schema(
        operation_id="api_keys_rotate",
        tags=["api-keys"],
        description="Mints a replacement with the same name, scopes and restrictions; the old "
        "key keeps working for the grace period, then is revoked.",
        request=ApiKeyRotateInput,
        responses={201: ApiKeyCreatedOutput, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, tenant_slug: str, key_id: Any) -> Response:
        data = ApiKeyRotateInput(data=request.data)
        data.is_valid(raise_exception=True)
        key, secret = services.api_key_rotate(
            actor=self.actor(),
            tenant=self.tenant,
            api_key=selectors.api_key_get(key_id=key_id),
            grace_seconds=data.validated_data.get("grace_seconds"),
        )
        return Response(_created_key_body(key, secret), status=status.HTTP_201_CREATED)


# =========================================================================== audit


class AuditActorOutput(serializers.Serializer[Any]):
    type = serializers.CharField(source="actor_type")
    label = serializers.CharField(source="actor_label")  # type: ignore[assignment]
    user_id = serializers.IntegerField(source="actor_user_id", allow_null=True)
    api_key_id = serializers.UUIDField(source="actor_api_key_id", allow_null=True)
    via_token = serializers.BooleanField()


class AuditTargetOutput(serializers.Serializer[Any]):
    type = serializers.CharField(source="target_type")
    id = serializers.CharField(source="target_id")
    label = serializers.CharField(source="target_label")  # type: ignore[assignment]


class AuditEventOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    action = serializers.CharField()
    actor = AuditActorOutput(source="*")
    target = AuditTargetOutput(source="*")
    source_ip = serializers.IPAddressField(allow_null=True)
    user_agent = serializers.CharField()
    details = serializers.DictField()
    created_at = serializers.DateTimeField()


class AuditFilterInput(QueryInputSerializer):
    """Audit filters (`cursor` and `limit` are the pagination's)."""

    action = serializers.CharField(
        required=False, max_length=64, help_text="e.g. `api_key.created`, or `member.` for a kind."
    )
    actor_user_id = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    actor_api_key_id = serializers.UUIDField(required=False)
    target_type = serializers.CharField(required=False, max_length=32)
    target_id = serializers.CharField(required=False, max_length=64)
    since = serializers.DateTimeField(required=False, help_text="ISO 8601, inclusive.")
    until = serializers.DateTimeField(required=False, help_text="ISO 8601, exclusive.")


class AuditEventListApi(TenantAPIView):
    minimum_role = {"GET": Role.ADMIN}

    @extend_schema(
        operation_id="audit_events_list",
        tags=["audit"],
        description="The tenant's audit trail, newest first (admins). `action` matches exactly, "
        "or every action of a kind when it ends with a dot (`api_key.`).",
        parameters=[*PAGINATION_PARAMETERS, AuditFilterInput],
        responses={200: paginated(AuditEventOutput), **TENANT_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        filters = AuditFilterInput(data=query_filters(request))
        filters.is_valid(raise_exception=True)
        qs: QuerySet[AuditEvent] = selectors.audit_event_list(**filters.validated_data)
        return paginate(request, qs, serializer_class=AuditEventOutput)


# =========================================================================== personal tokens


class TokenOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_prefix(self, token: PersonalAccessToken) -> str:
        return f"vpp_{token.prefix}"


class TokenCreatedOutput(TokenOutput):
    token = serializers.CharField(help_text="The secret, shown only now.")


class TokenCreateInput(StrictInputSerializer):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class PersonalTokenListApi(BaseAPIView):
    @extend_schema(
        operation_id="personal_tokens_list",
        tags=["tokens"],
        description="The caller's personal access tokens.",
        parameters=PAGINATION_PARAMETERS,
        responses={200: paginated(TokenOutput), **errors(400, 401, 403)},
    )
    def get(self, request: Request) -> Response:
        user = self.actor().authenticated_user
        tokens = (
            selectors.personal_token_list(user_id=user.pk)
            if user is not None
            else PersonalAccessToken.objects.none()  # an API key has no tokens
        )
        # Paginated either way: `limit` and `cursor` are validated for every caller.
        return paginate(request, tokens, serializer_class=TokenOutput)

    @extend_schema(
        operation_id="personal_tokens_create",
        tags=["tokens"],
        description="Creates a token that acts as the signed-in user, with the user's roles in "
        "every tenant. Only from a session (a token cannot mint tokens).",
        request=TokenCreateInput,
        responses={201: TokenCreatedOutput, **errors(400, 401, 403)},
    )
    def post(self, request: Request) -> Response:
        data = TokenCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        token, secret = services.personal_token_create(actor=self.actor(), **data.validated_data)
        body = dict(TokenOutput(token).data)
        body["token"] = secret
        return Response(body, status=status.HTTP_201_CREATED)


class PersonalTokenDetailApi(BaseAPIView):
    @extend_schema(
        operation_id="personal_tokens_revoke",
        tags=["tokens"],
        description="Revokes one of the caller's tokens.",
        responses={204: None, **errors(401, 403, 404)},
    )
    def delete(self, request: Request, token_id: Any) -> Response:
        user = self.actor().authenticated_user
        token = (
            PersonalAccessToken.objects.filter(pk=token_id, user_id=user.pk).first()
            if user is not None
            else None
        )
        if token is None:
            raise NotFoundError("token")
        services.personal_token_revoke(actor=self.actor(), token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)
