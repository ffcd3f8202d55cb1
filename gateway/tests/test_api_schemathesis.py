"""schemathesis over both schemas (docs/openapi.yaml for the management and Pinecone control-plane
API, docs/gateway-openapi.yaml for the data plane), against the same real servers as
test_api_generated_inputs.py: for every operation, a few generated requests that fit the schema
(positive) and a few that do not (negative), derandomized (the same cases on every run).

Checks on every answer: not a server error, the status code and the content type are documented
for the operation, the body matches the documented response schema (so a 4xx is the error shape
with a code the schema lists for that status); and for negative cases, that the request is
refused with a 4xx (schema-invalid data is never accepted).

Scope, and why:

- Path parameters are the world's real resources (a random tenant slug only ever answers 404,
  which tests nothing); the generated-input layer mutates them. Operations that destroy or
  change what they act on (delete, revoke, suspend, change the plan or the limits, rotate) get a
  fresh resource for every generated case, so they stay repeatable and never break the others.
- Positive data is not required to succeed ("positive data acceptance" is not checked): the
  schema cannot say which ids exist, which plan slugs are real or which names are taken.
- The data plane's schema is applied to the test index (3 dimensions: vectors of another length
  are `dimension_mismatch`, which the schema says through `x-dimension`).
- Personal access tokens are created from a signed-in session only; with the token the other
  operations use, that operation answers 403 (documented), which is what is checked here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.tests import apifuzz
from gateway.tests.apiworld import World
from gateway.tests.conftest import Gateway, Platform, Server, ensure_plans, unique
from tenants.tests.factories import UserFactory

EXAMPLES = 5  # per operation and mode
DIMENSION = 3


def _gateway_doc() -> dict[str, Any]:
    doc = copy.deepcopy(apifuzz.load_schema(apifuzz.GATEWAY_SCHEMA))
    fixed: dict[str, Any] = apifuzz._fixed_dimension(doc, DIMENSION)
    return fixed


SCHEMAS = {
    "management": schemathesis.openapi.from_dict(
        copy.deepcopy(apifuzz.load_schema(apifuzz.MANAGEMENT_SCHEMA))
    ),
    "gateway": schemathesis.openapi.from_dict(_gateway_doc()),
}
def _operations(schema: Any) -> dict[str, Any]:
    found = (result.ok() for result in schema.get_all_operations())
    return {op.definition.raw["operationId"]: op for op in found}


OPERATIONS = {api: _operations(schema) for api, schema in SCHEMAS.items()}

# Operations whose path parameters must name a fresh resource for every case.
PathParams = Callable[[World], dict[str, str]]


def _tenant(w: World) -> dict[str, str]:
    return {"tenant_slug": w.slug}


FRESH: dict[str, PathParams] = {
    "tenants_destroy": lambda w: {"tenant_slug": w.fresh_slug()},
    "tenants_suspend": lambda w: {"tenant_slug": w.fresh_slug()},
    "tenants_reactivate": lambda w: {"tenant_slug": w.fresh_suspended_slug()},
    "tenants_plan_change": lambda w: {"tenant_slug": w.fresh_slug()},
    "tenants_limits_override": lambda w: {"tenant_slug": w.fresh_slug()},
    "tenants_update": lambda w: {"tenant_slug": w.fresh_slug()},
    "clusters_create": lambda w: {"tenant_slug": w.fresh_slug()},
    "api_keys_revoke": lambda w: {"tenant_slug": w.slug, "key_id": w.fresh_key_id()},
    "api_keys_rotate": lambda w: {"tenant_slug": w.slug, "key_id": w.fresh_key_id()},
    "personal_tokens_revoke": lambda w: {"token_id": w.fresh_token_id()},
    "members_destroy": lambda w: {"tenant_slug": w.slug, "user_id": w.fresh_member_id()},
    "members_update": lambda w: {"tenant_slug": w.slug, "user_id": w.fresh_member_id()},
    "invitations_revoke": lambda w: {"tenant_slug": w.slug,
                                     "invitation_id": w.fresh_invitation_id()},
    "indexes_destroy": lambda w: {"tenant_slug": w.slug, "index_name": w.fresh_index_name()},
    "indexes_configure": lambda w: {"tenant_slug": w.slug, "index_name": w.fresh_index_name()},
    "pinecone_indexes_delete": lambda w: {"index_name": w.fresh_index_name()},
    "pinecone_indexes_configure": lambda w: {"index_name": w.fresh_index_name()},
    # The world's evaluation is on an index of its own.
    "indexes_evaluations_retrieve": lambda w: {"tenant_slug": w.slug,
                                               "index_name": w.evaluated_index,
                                               "evaluation_id": w.evaluation_id},
    "clusters_resize": lambda w: dict(zip(("tenant_slug", "cluster_name"), w.fresh_cluster(),
                                          strict=True)),
    "clusters_destroy": lambda w: dict(zip(("tenant_slug", "cluster_name"), w.fresh_cluster(),
                                           strict=True)),
}  # fmt: skip


def path_parameters(w: World, api: str, operation_id: str) -> dict[str, str]:
    if operation_id in FRESH:
        return FRESH[operation_id](w)
    op = OPERATIONS[api][operation_id]
    names = {p.name for p in op.path_parameters}
    known = {
        "tenant_slug": w.slug,
        "key_id": w.key_id,
        "user_id": w.member_id,
        "index_name": w.index_name,
        "cluster_name": w.cluster_name,
        "index": w.gindex_name,
    }
    return {name: known[name] for name in names}


def credentials(w: World, api: str, operation_id: str) -> dict[str, str]:
    """The credentials the schema declares: the gateway's `Api-Key`, the management API's
    bearer token (the operator's token; Pinecone's paths take the tenant's admin key)."""
    if api == "gateway":
        return w.gateway_auth()
    if operation_id.startswith("pinecone_"):
        return w.bearer(w.key)
    return w.operator_auth()


def has_inputs(api: str, op: Any) -> bool:
    """Whether a negative case can be made: a body, a query or header parameter, or
    credentials to leave out (path parameters are the world's, fixed)."""
    spec = op.definition.raw
    security = spec.get("security", SCHEMAS[api].raw_schema.get("security"))
    return bool(
        "requestBody" in spec
        or any(p.location != "path" for p in op.iter_parameters())
        or (security and security != [{}] and security != [])
    )


CASES = [
    pytest.param(api, operation_id, mode, id=f"{api}-{operation_id}-{mode.value}")
    for api in SCHEMAS
    for operation_id, op in OPERATIONS[api].items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or has_inputs(api, op)
]


@pytest.fixture(scope="module")
def world(
    django_db_blocker: Any, gateway: Gateway, control_plane_server: Server
) -> Iterator[World]:
    with django_db_blocker.unblock():
        ensure_plans()
        operator = UserFactory(email=f"{unique('ops')}@example.test", is_staff=True)
        platform = Platform(operator=operator)
        made = World(platform, control_plane_server.url, gateway)
        try:
            yield made
        finally:
            made.close()
            platform.release()


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as made:
        yield made


@pytest.mark.parametrize(("api", "operation_id", "mode"), CASES)
def test_schemathesis(
    api: str,
    operation_id: str,
    mode: GenerationMode,
    world: World,
    session: requests.Session,
    gateway_server: Server,
    control_plane_server: Server,
) -> None:
    op = OPERATIONS[api][operation_id]
    schema = SCHEMAS[api]
    base_url = (gateway_server if api == "gateway" else control_plane_server).url
    auth = credentials(world, api, operation_id)
    host = {"Host": world.gateway_host()} if operation_id.endswith("_host") else {}
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]  # fmt: skip
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    fixed = path_parameters(world, api, operation_id)
    strategy = op.as_strategy(generation_mode=mode, path_parameters=fixed)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        if operation_id in FRESH:
            case.path_parameters = {**(case.path_parameters or {}),
                                    **FRESH[operation_id](world)}  # fmt: skip
        # A case that leaves the credentials out (negative) is sent without them.
        headers = {**host, **({} if schema.is_security_param_negated(case) else auth)}
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
        case.validate_response(response, checks=checks, headers=headers)

    run()


def test_every_operation_is_generated() -> None:
    for api in SCHEMAS:
        documented = set(apifuzz.operations(api))
        assert set(OPERATIONS[api]) == documented, api
