"""Django REST Framework and OpenAPI (drf-spectacular) settings."""

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "controlplane.api.authentication.TokenAuthentication",
        "controlplane.api.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["controlplane.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "controlplane.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": [],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Vectorplane management API",
    "DESCRIPTION": (
        "Control-plane API of Vectorplane: tenants, members, invitations, API keys, "
        "personal access tokens, plans, effective limits and audit events. Every error is "
        '`{"error": {"code", "message", "details"}}` with a stable code (see the README).'
    ),
    "VERSION": "1.0.0",
    # 3.1: JSON Schema 2020-12 (propertyNames for tag keys, null as a type), as the gateway's.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "tenants.models.Role",
        "TenantStatusEnum": "tenants.models.TenantStatus",
        "ScopeEnum": "tenants.models.Scope",
        "TierEnum": "tenants.models.Tier",
        "EngineEnum": "tenants.models.Engine",
        "MetricEnum": "provisioning.models.Metric",
        "ClusterStatusEnum": "provisioning.models.ClusterStatus",
        "HealthPartEnum": "controlplane.health.PARTS",
        "HealthStatusEnum": "controlplane.health.STATUSES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "controlplane.api.schema.require_operation_docs",
        "controlplane.api.schema.describe_path_parameters",
        "controlplane.api.schema.include_filter_schema",
    ],
    "TAGS": [
        {"name": "auth", "description": "Sessions, sign-up and the current user."},
        {"name": "tenants", "description": "Organisations that own indexes, keys and members."},
        {"name": "members", "description": "Who belongs to a tenant, and with which role."},
        {"name": "invitations", "description": "Invite people to a tenant by email address."},
        {"name": "api-keys", "description": "Keys for the data plane and the management API."},
        {"name": "tokens", "description": "Personal access tokens for the management API."},
        {"name": "plans", "description": "Plans, limits and per-tenant overrides."},
        {"name": "audit", "description": "Who did what, when and from where."},
        {"name": "indexes", "description": "Vector indexes and where their data plane answers."},
        {"name": "pinecone", "description": "Pinecone's control-plane API, for its clients."},
        {"name": "billing", "description": "Plans bought, usage billed, payment state (Stripe)."},
    ],
}
CSRF_FAILURE_VIEW = "controlplane.api.errors.csrf_failure"
