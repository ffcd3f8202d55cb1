"""docs/gateway-openapi.yaml, the data plane's OpenAPI description: valid OpenAPI 3.1, every
operation documented with the one error shape and documented codes, the routes it describes
are the gateway's routes, its limits are the gateway's constants (so they cannot drift), and
the gateway serves it without credentials at /openapi.yaml and /openapi.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gateway import app as gateway_app
from gateway.tests import apifuzz
from gateway.tests.conftest import Gateway
from vectorplane.contract import filters, limits

SCHEMA_PATH = apifuzz.GATEWAY_SCHEMA
DATA_OPERATIONS = {"upsert", "query", "fetch", "fetch_post", "update", "delete",
                   "list_vectors", "describe_index_stats", "describe_index_stats_get"}  # fmt: skip
# 414 (a URL over the HTTP server's limit) is answered by the server itself, without a body.
ERROR_STATUSES = {"400", "401", "403", "404", "429", "500", "503"}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SCHEMA_PATH.read_text())
    return loaded


def at(doc: dict[str, Any], pointer: str) -> Any:
    node: Any = doc
    for part in pointer.strip("/").split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def test_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    import drf_spectacular

    meta_path = Path(drf_spectacular.__file__).parent / "validation" / "openapi_3_1_schema.json"
    meta = json.loads(meta_path.read_text())
    errors = sorted(jsonschema.Draft202012Validator(meta).iter_errors(doc), key=str)
    assert not errors, [f"{e.json_path}: {e.message}" for e in errors[:5]]
    assert doc["openapi"].startswith("3.1")
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)  # raises, naming the problem


def test_every_operation_is_documented(doc: dict[str, Any]) -> None:
    """A tag, an operation id, a description; data operations need the API key and document
    every error status with the error shape (414, the HTTP server's own, has no body); the
    rest say they need no credentials."""
    seen = 0
    for path, item in doc["paths"].items():
        for method in apifuzz.HTTP_METHODS:
            if method not in item:
                continue
            op, seen = item[method], seen + 1
            where = f"{method.upper()} {path}"
            assert op.get("tags") and op.get("operationId") and op.get("description"), where
            base = op["operationId"].removesuffix("_host")
            if base in DATA_OPERATIONS:
                assert "security" not in op, f"{where}: data operations take the API key"
                assert set(op["responses"]) >= ERROR_STATUSES, where
                for status in ERROR_STATUSES:
                    response = apifuzz._resolve(doc, op["responses"][status])
                    schema = response["content"]["application/json"]["schema"]
                    target = apifuzz._resolve(doc, schema)
                    assert target["allOf"][0] == {"$ref": "#/components/schemas/Error"}, where
            else:
                assert op.get("security") == [], f"{where}: say that it needs no credentials"
    assert seen == 23


def _codes(doc: dict[str, Any]) -> dict[str, set[str]]:
    found = {}
    for name, schema in doc["components"]["schemas"].items():
        if name.startswith("Error") and name != "Error":
            code = schema["properties"]["error"]["properties"]["code"]
            found[name[5:]] = set(code.get("enum", [code.get("const")]))
    return found


def test_error_codes_are_documented(doc: dict[str, Any]) -> None:
    """Every code the schema lets the gateway answer is in docs/ERRORS.md, under its status."""
    rows: dict[str, set[str]] = {}
    for line in apifuzz.ERRORS_DOC.read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and cells[1].isdigit():
            for code in re.findall(r"`([a-z_]+)`", cells[2]):
                rows.setdefault(code, set()).add(cells[1])
    missing = [f"{status} {code}" for status, codes in _codes(doc).items() for code in codes
               if status not in rows.get(code, set())]  # fmt: skip
    assert not missing, f"not in docs/ERRORS.md: {sorted(missing)}"


def test_the_routes_are_the_gateways(doc: dict[str, Any]) -> None:
    """What the schema describes is what gateway/app.py routes, and the reverse."""
    routed = set()
    for route in gateway_app.build_routes():
        for method in route.methods or ():
            if method != "HEAD":
                routed.add((method, route.path))
    documented = {(m.upper(), path) for path, item in doc["paths"].items()
                  for m in apifuzz.HTTP_METHODS if m in item}  # fmt: skip
    assert documented == routed, {"undocumented": routed - documented,
                                  "not routed": documented - routed}  # fmt: skip


# ============================================================================ limits


def constant(name: str) -> int:
    """A limit of the data plane (vectorplane/contract/limits.py, which the gateway's
    validation enforces)."""
    found = getattr(limits, name, None)
    assert found is not None, f"vectorplane.contract.limits has no {name}"
    return int(found)


S = "/components/schemas"
LIMITS: list[tuple[str, str]] = [
    ("MAX_BATCH", f"{S}/UpsertRequest/properties/vectors/maxItems"),
    ("MAX_BATCH", f"{S}/DeleteRequest/properties/ids/anyOf/0/maxItems"),
    ("MAX_TOP_K", f"{S}/QueryRequest/properties/topK/maximum"),
    ("MAX_EF_SEARCH", f"{S}/QueryRequest/properties/efSearch/maximum"),
    ("MAX_ID_BYTES", f"{S}/Id/x-max-bytes"),
    ("MAX_ID_BYTES", f"{S}/Id/maxLength"),
    ("MAX_ID_BYTES", "/components/parameters/Prefix/schema/x-max-bytes"),
    ("MAX_NAMESPACE_BYTES", f"{S}/Namespace/x-max-bytes"),
    ("MAX_NAMESPACE_BYTES", f"{S}/Namespace/maxLength"),
    ("MAX_FETCH_IDS", "/components/parameters/FetchIds/schema/maxItems"),
    ("MAX_LIST_LIMIT", "/components/parameters/ListLimit/schema/maximum"),
    ("MAX_METADATA_BYTES", f"{S}/Metadata/x-max-bytes"),
    ("MAX_SPARSE_INDEX", f"{S}/SparseValues/properties/indices/items/maximum"),
    ("MAX_SPARSE_NONZEROS", f"{S}/SparseValues/properties/indices/maxItems"),
    ("MAX_SPARSE_NONZEROS", f"{S}/SparseValues/properties/values/maxItems"),
    ("MAX_TEXT_BYTES", f"{S}/Text/x-max-bytes"),
    ("MAX_TEXT_BYTES", f"{S}/Text/maxLength"),
    *[
        ("MAX_BODY_BYTES", f"/components/requestBodies/{name}/x-max-bytes")
        for name in ("Fetch", "Upsert", "Query", "Update", "Delete", "Stats")
    ],
]
FILTER_LIMITS: list[tuple[str, str]] = [
    ("MAX_DEPTH", f"{S}/Filter/x-max-depth"),
    ("MAX_CONDITIONS", f"{S}/Filter/x-max-conditions"),
    ("MAX_IN_VALUES", f"{S}/FilterValues/maxItems"),
    ("MAX_FIELD_BYTES", f"{S}/Filter/propertyNames/x-max-bytes"),
    ("MAX_FIELD_BYTES", f"{S}/Filter/propertyNames/maxLength"),
    ("MAX_LITERAL_BYTES", f"{S}/FilterValue/anyOf/0/maxLength"),
    ("MAX_LITERAL_BYTES", f"{S}/FilterValue/anyOf/0/x-max-bytes"),
]


@pytest.mark.parametrize(("name", "pointer"), LIMITS, ids=[f"{n}-{p}" for n, p in LIMITS])
def test_limit_is_the_gateways(doc: dict[str, Any], name: str, pointer: str) -> None:
    assert at(doc, pointer) == constant(name), f"{pointer} is not the gateway's {name}"


@pytest.mark.parametrize(("name", "pointer"), FILTER_LIMITS,
                         ids=[f"{n}-{p}" for n, p in FILTER_LIMITS])  # fmt: skip
def test_filter_limit_is_the_filter_languages(doc: dict[str, Any], name: str, pointer: str) -> None:
    assert at(doc, pointer) == getattr(filters, name), f"{pointer} is not filters.{name}"


def test_integer_range_and_float32_bound(doc: dict[str, Any]) -> None:
    assert at(doc, f"{S}/Int64/minimum") == -(2**63)
    assert at(doc, f"{S}/Int64/maximum") == 2**63 - 1
    assert at(doc, f"{S}/Float32/maximum") == -at(doc, f"{S}/Float32/minimum") == 3.4028235e38


def test_the_widest_vector_is_the_widest_index(doc: dict[str, Any]) -> None:
    """A vector is at most as long as the widest index the management API creates."""
    management = apifuzz.load_schema(apifuzz.MANAGEMENT_SCHEMA)
    widest = at(management, f"{S}/IndexCreateInputRequest/properties/dimension/maximum")
    assert at(doc, f"{S}/DenseVector/maxItems") == widest
    assert at(doc, f"{S}/QueryVector/maxItems") == widest


# ============================================================================ served


def test_served_without_credentials(gateway: Gateway) -> None:
    text = SCHEMA_PATH.read_bytes()
    as_yaml = gateway.get("/openapi.yaml", None)
    assert as_yaml.status_code == 200, as_yaml.text
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert as_yaml.content == text
    as_json = gateway.get("/openapi.json", None)
    assert as_json.status_code == 200, as_json.text
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json() == json.loads(json.dumps(yaml.safe_load(text)))


def test_an_install_without_the_file_serves_no_schema(tmp_path: Path) -> None:
    assert gateway_app.openapi_routes(tmp_path / "missing.yaml") == []
