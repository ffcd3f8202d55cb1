from django.urls import path

from . import apis

T = "tenants/<slug:tenant_slug>"

urlpatterns = [
    path("auth/csrf", apis.CsrfApi.as_view(), name="auth-csrf"),
    path("auth/login", apis.LoginApi.as_view(), name="auth-login"),
    path("auth/logout", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/signup", apis.SignupApi.as_view(), name="auth-signup"),
    path("auth/me", apis.MeApi.as_view(), name="auth-me"),
    path("plans", apis.PlanListApi.as_view(), name="plans"),
    path("tenants", apis.TenantListApi.as_view(), name="tenants"),
    path(f"{T}", apis.TenantDetailApi.as_view(), name="tenant"),
    path(f"{T}/suspend", apis.TenantSuspendApi.as_view(), name="tenant-suspend"),
    path(f"{T}/reactivate", apis.TenantReactivateApi.as_view(), name="tenant-reactivate"),
    path(f"{T}/plan", apis.TenantPlanApi.as_view(), name="tenant-plan"),
    path(f"{T}/limits", apis.TenantLimitsApi.as_view(), name="tenant-limits"),
    path(f"{T}/members", apis.MemberListApi.as_view(), name="members"),
    path(f"{T}/members/<int:user_id>", apis.MemberDetailApi.as_view(), name="member"),
    path(f"{T}/invitations", apis.InvitationListApi.as_view(), name="invitations"),
    path(
        f"{T}/invitations/<uuid:invitation_id>",
        apis.InvitationDetailApi.as_view(),
        name="invitation",
    ),
    path("invitations/accept", apis.InvitationAcceptApi.as_view(), name="invitation-accept"),
    path(f"{T}/api-keys", apis.ApiKeyListApi.as_view(), name="api-keys"),
    path(f"{T}/api-keys/<uuid:key_id>", apis.ApiKeyDetailApi.as_view(), name="api-key"),
    path(
        f"{T}/api-keys/<uuid:key_id>/revoke", apis.ApiKeyRevokeApi.as_view(), name="api-key-revoke"
    ),
    path(
        f"{T}/api-keys/<uuid:key_id>/rotate", apis.ApiKeyRotateApi.as_view(), name="api-key-rotate"
    ),
    path(f"{T}/audit-events", apis.AuditEventListApi.as_view(), name="audit-events"),
    path("personal-access-tokens", apis.PersonalTokenListApi.as_view(), name="tokens"),
    path(
        "personal-access-tokens/<uuid:token_id>",
        apis.PersonalTokenDetailApi.as_view(),
        name="token",
    ),
]
