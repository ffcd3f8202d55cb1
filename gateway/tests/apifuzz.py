"""The machinery of the generated-input tests (test_api_generated_inputs.py): the two OpenAPI
schemas read as JSON Schema, an oracle that says whether a value is valid where the schema puts
it, the mutations of every string, number and boolean field, and the checks of an answer.

Nothing here knows an operation: the base requests live in apiworld.py. A *mutation* replaces
one value of a valid request (a body field, a map key, a path or query parameter) by a hostile
one, written as raw JSON (so that `NaN`, `Infinity` and `"\\ud800"` reach the server exactly
as an attacker would send them) or raw percent-encoded URL text (`%00`, `%ED%A0%80`). Whether
the mutated request is valid is decided by validating it against the operation's schema, with
two additions the schemas cannot say: no string may hold NUL or a lone surrogate, and JSON's
non-numbers are never valid.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import httpx
import jsonschema
import referencing
import yaml
from referencing.jsonschema import DRAFT202012

REPO = Path(__file__).resolve().parents[2]
MANAGEMENT_SCHEMA = REPO / "docs" / "openapi.yaml"
GATEWAY_SCHEMA = REPO / "docs" / "gateway-openapi.yaml"
ERRORS_DOC = REPO / "docs" / "ERRORS.md"

# A string field without maxLength is still tried at 10x this (and reported: every string
# field should state its bound).
SENSIBLE_MAX_LENGTH = 1000
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


# ============================================================================ schemas


@functools.cache
def load_schema(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


@functools.cache
def documented_codes() -> frozenset[str]:
    """The codes of docs/ERRORS.md's table (second column, every `code` in it)."""
    codes: set[str] = set()
    for line in ERRORS_DOC.read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and cells[1].isdigit():
            codes.update(re.findall(r"`([a-z_]+)`", cells[2]))
    return frozenset(codes)


@dataclass(frozen=True)
class Operation:
    api: str  # "management" or "gateway"
    operation_id: str
    method: str  # upper case
    path: str  # the template, e.g. /api/v1/tenants/{tenant_slug}
    pointer: str  # JSON pointer of the operation object in the schema document
    spec: dict[str, Any] = field(hash=False, compare=False)
    parameters: tuple[dict[str, Any], ...] = field(hash=False, compare=False)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node and isinstance(node["$ref"], str) and node["$ref"].startswith("#/"):
        target: Any = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def operations(api: str) -> dict[str, Operation]:
    doc = load_schema(MANAGEMENT_SCHEMA if api == "management" else GATEWAY_SCHEMA)
    found: dict[str, Operation] = {}
    for path, item in doc["paths"].items():
        shared = [_resolve(doc, p) for p in item.get("parameters", [])]
        for method in HTTP_METHODS:
            if method not in item:
                continue
            spec = item[method]
            own = [_resolve(doc, p) for p in spec.get("parameters", [])]
            names = {(p["in"], p["name"]) for p in own}
            params = tuple(own + [p for p in shared if (p["in"], p["name"]) not in names])
            found[spec["operationId"]] = Operation(
                api=api,
                operation_id=spec["operationId"],
                method=method.upper(),
                path=path,
                pointer=f"/paths/{_escape(path)}/{method}",
                spec=spec,
                parameters=params,
            )
    return found


def body_schema_pointer(op: Operation) -> str | None:
    """The JSON pointer of the operation's application/json request body schema."""
    doc = load_schema(MANAGEMENT_SCHEMA if op.api == "management" else GATEWAY_SCHEMA)
    body = op.spec.get("requestBody")
    if body is None:
        return None
    pointer = op.pointer + "/requestBody"
    if "$ref" in body:
        pointer = body["$ref"][1:]
        body = _resolve(doc, body)
    if "application/json" not in body.get("content", {}):
        return None
    return pointer + "/content/application~1json/schema"


# ============================================================================ the oracle


def _as_json_schema(node: Any, *, oas30: bool, urn: str) -> Any:
    """A copy of an OpenAPI document usable as JSON Schema 2020-12: local `$ref`s made absolute
    (`urn:...#/...`) so that any sub-schema can be validated on its own, and (OpenAPI 3.0)
    `nullable: true` spelled as JSON Schema does."""
    if isinstance(node, list):
        return [_as_json_schema(v, oas30=oas30, urn=urn) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _as_json_schema(v, oas30=oas30, urn=urn) for k, v in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        out["$ref"] = urn + ref
    if oas30 and out.pop("nullable", False):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


def _max_bytes(validator: Any, limit: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if isinstance(instance, str):
        try:
            size = len(instance.encode())
        except UnicodeEncodeError:
            yield jsonschema.ValidationError("not valid Unicode (lone surrogate)")
            return
        if size > limit:
            yield jsonschema.ValidationError(f"{size} UTF-8 bytes is over {limit}")


def _integer_range(validator: Any, kind: Any, instance: Any, schema: Any) -> Iterator[Any]:
    # A JSON integer token (parsed as int, not float) must fit a signed 64-bit integer.
    if (
        kind == "int64"
        and isinstance(instance, int)
        and not isinstance(instance, bool)
        and not -(2**63) <= instance < 2**63
    ):
        yield jsonschema.ValidationError(f"{instance} does not fit a signed 64-bit integer")


_FORMATS = jsonschema.FormatChecker(())


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?", value):
        raise ValueError(value)
    datetime.fromisoformat(value)
    return True


@_FORMATS.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    if isinstance(value, str):
        uuid.UUID(value)
    return True


@_FORMATS.checks("email", raises=ValueError)
def _email(value: object) -> bool:
    if isinstance(value, str):
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_email

        try:
            validate_email(value)
        except ValidationError as exc:
            raise ValueError(value) from exc
    return True


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    {"x-max-bytes": _max_bytes, "x-integer-range": _integer_range},
)


def _inline(doc: Any, urn: str) -> Any:
    """`doc` with every `$ref` replaced by what it points at, but for references back into a
    schema being inlined (a filter's `$and`), which stay references. Validating a 16,000-item
    array then costs no reference lookups."""

    def target(ref: str) -> Any:
        node: Any = doc
        for part in ref[len(urn) + 2 :].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def walk(node: Any, active: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(v, active) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(urn + "#/") and ref not in active:
            rest = {k: v for k, v in node.items() if k != "$ref"}
            inlined = walk(target(ref), (*active, ref))
            if not rest:
                return inlined
            return {"allOf": [inlined, walk(rest, active)]}
        return {k: walk(v, active) for k, v in node.items()}

    return walk(doc, ())


def _fixed_dimension(node: Any, dimension: int) -> Any:
    """Vectors marked `x-dimension` (the index's dimension) made exactly `dimension` long."""
    if isinstance(node, list):
        return [_fixed_dimension(v, dimension) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _fixed_dimension(v, dimension) for k, v in node.items()}
    if out.get("x-dimension"):
        out["minItems"] = out["maxItems"] = dimension
    return out


class Oracle:
    """Validates values against the schema at a JSON pointer of one API's document (for the
    gateway, as it applies to an index of `dimension` dimensions)."""

    def __init__(self, api: str, dimension: int | None = None) -> None:
        self.api = api
        self.urn = f"urn:vectorplane:{api}"
        path = MANAGEMENT_SCHEMA if api == "management" else GATEWAY_SCHEMA
        doc = copy.deepcopy(load_schema(path))
        if dimension is not None:
            doc = _fixed_dimension(doc, dimension)
        converted = _as_json_schema(doc, oas30=api == "management", urn=self.urn)
        self.doc = _inline(converted, self.urn)
        self.registry: referencing.Registry[Any] = referencing.Registry().with_resource(
            self.urn, DRAFT202012.create_resource(self.doc)
        )

    def ref(self, pointer: str) -> dict[str, Any]:
        return {"$ref": f"{self.urn}#{pointer}"}

    def node(self, schema: dict[str, Any]) -> dict[str, Any]:
        """`schema` with its `$ref` chain followed."""
        seen = 0
        while isinstance(schema.get("$ref"), str) and seen < 50:
            ref = schema["$ref"]
            assert ref.startswith(self.urn + "#/"), ref
            target: Any = self.doc
            for part in ref[len(self.urn) + 2 :].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest} if rest else target
            seen += 1
        return schema

    def errors(self, schema: dict[str, Any], value: Any) -> list[str]:
        validator = _Validator(schema, registry=self.registry, format_checker=_FORMATS)
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"[:300]
                for e in validator.iter_errors(value)]  # fmt: skip

    def is_valid(self, schema: dict[str, Any], value: Any) -> bool:
        return not self.errors(schema, value)

    # -- what applies where -------------------------------------------------------------

    def applicable(
        self, schema: dict[str, Any], value: Any, depth: int = 0
    ) -> list[dict[str, Any]]:
        """The (sub)schemas that constrain `value` here: the schema, its allOf members, and the
        first anyOf/oneOf branch that accepts the value."""
        if depth > 20:
            return []
        node = self.node(schema)
        found = [node]
        for sub in node.get("allOf", []):
            found += self.applicable(sub, value, depth + 1)
        for keyword in ("anyOf", "oneOf"):
            branches = node.get(keyword, [])
            accepting = [b for b in branches if self.is_valid(b, value)]
            if accepting:
                found += self.applicable(accepting[0], value, depth + 1)
        return found

    def child(self, parent: dict[str, Any], value: Any, key: Any) -> dict[str, Any]:
        """The schema of `value[key]` (a property, a map value, an array item), or of the key
        itself when `key` is a KeyOf."""
        parts: list[dict[str, Any]] = []
        for node in self.applicable(parent, value):
            if isinstance(key, KeyOf):
                if isinstance(node.get("propertyNames"), dict):
                    parts.append(node["propertyNames"])
            elif isinstance(key, int):
                if isinstance(node.get("items"), dict):
                    parts.append(node["items"])
            elif key in node.get("properties", {}):
                parts.append(node["properties"][key])
            elif isinstance(node.get("additionalProperties"), dict):
                parts.append(node["additionalProperties"])
        if isinstance(key, KeyOf):
            parts.append({"type": "string"})
        return {"allOf": parts} if parts else {}

    def required(self, parent: dict[str, Any], value: Any) -> set[str]:
        return {r for node in self.applicable(parent, value) for r in node.get("required", [])}

    def facts(self, schema: dict[str, Any], value: Any) -> Facts:
        """The string/number constraints that apply to a leaf value."""
        facts = Facts()
        for node in self.applicable(schema, value):
            if "maxLength" in node:
                facts.max_length = min(facts.max_length or 10**12, node["maxLength"])
            if "x-max-bytes" in node:
                facts.max_bytes = min(facts.max_bytes or 10**12, node["x-max-bytes"])
            for key in ("format", "pattern"):
                if key in node:
                    setattr(facts, key, node[key])
            if "enum" in node or "const" in node:
                facts.enum = True
            types = node.get("type")
            if types == "integer" or (isinstance(types, list) and "integer" in types):
                facts.integer = True
            if "maxItems" in node:
                facts.max_items = min(facts.max_items or 10**12, node["maxItems"])
            if node.get("uniqueItems"):
                facts.unique_items = True
        return facts


@dataclass
class Facts:
    max_length: int | None = None
    max_bytes: int | None = None
    format: str | None = None
    pattern: str | None = None
    enum: bool = False
    integer: bool = False
    max_items: int | None = None
    unique_items: bool = False


# ============================================================================ raw JSON


@dataclass(frozen=True)
class Raw:
    """JSON text put verbatim in a body (a token no JSON encoder writes)."""

    text: str


@dataclass(frozen=True)
class KeyOf:
    """A path step that targets a map's key rather than its value."""

    key: str


def dumps(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            key = k.text if isinstance(k, Raw) else json.dumps(k)
            items.append(f"{key}: {dumps(v)}")
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def _parsed(value: Any) -> Any:
    """What a JSON parser makes of a body with Raw parts (None where it cannot parse)."""
    if isinstance(value, Raw):
        return json.loads(value.text)
    if isinstance(value, dict):
        return {(json.loads(k.text) if isinstance(k, Raw) else k): _parsed(v)
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [_parsed(v) for v in value]
    return value


# ============================================================================ mutations


Step = str | int | KeyOf


@dataclass(frozen=True)
class Mutation:
    """One hostile value at one place of a request."""

    where: str  # "body", "path" or "query"
    target: tuple[Step, ...]  # body: the path of steps; path/query: (parameter name,)
    name: str  # nul, surrogate, long, at_max_length, nan, ...
    token: str  # raw JSON (body) or raw percent-encoded text (path, query)
    always_invalid: bool = False  # NUL, lone surrogates, non-JSON numbers: never valid
    grow: int = 0  # over_max_items: the array's new length
    # A float token with an integral value (-0.0) where an integer is expected: JSON Schema
    # calls it an integer, a strict server may still refuse it (either answer is right).
    integral_float: bool = False

    @property
    def label(self) -> str:
        return f"{self.where}.{render_target(self.target)}-{self.name}"


def render_target(target: tuple[Step, ...]) -> str:
    out = ""
    for step in target:
        if isinstance(step, KeyOf):
            out += "{key}"
        elif isinstance(step, int):
            out += f"[{step}]"
        else:
            out += ("." if out else "") + step
    return out or "(body)"


def field_name(target: tuple[Step, ...]) -> str:
    """The dotted name used by meaning tables: list positions become `[]`."""
    out = ""
    for step in target:
        if isinstance(step, KeyOf):
            out += "{key}"
        elif isinstance(step, int):
            out += "[]"
        else:
            out += ("." if out else "") + step
    return out


def fill(facts: Facts, length: int, uniq: str) -> str:
    """A string of exactly `length` characters that is valid here but for its length (an
    e-mail address stays one, a name its pattern), starting with `uniq` where it fits."""
    if facts.format == "email":
        local = (uniq + "a" * 64)[: min(64, max(1, length - 8))]
        rest = length - len(local) - 1 - len(".test")
        labels = []
        while rest > 0:
            size = min(63, rest)
            if rest - size == 1:  # no empty label at the end
                size -= 1
            labels.append("b" * size)
            rest -= size + 1
        return local + "@" + ".".join(labels) + ".test"
    return (uniq + "a" * length)[:length]


def string_mutations(
    target: tuple[Step, ...], where: str, base: str, facts: Facts, uniq: str, *, is_key: bool
) -> list[Mutation]:
    def m(name: str, value: str, *, invalid: bool = False) -> Mutation:
        return Mutation(where, target, name, json.dumps(value), always_invalid=invalid)

    middle = len(base) // 2
    surrogate = json.dumps(base[:middle])[:-1] + "\\ud800" + json.dumps(base[middle:])[1:]
    out = [
        m("nul", base[:middle] + "\x00" + base[middle:], invalid=True),
        Mutation(where, target, "surrogate", surrogate, always_invalid=True),
    ]
    bound = facts.max_length or SENSIBLE_MAX_LENGTH
    if not facts.enum and facts.format not in ("uuid", "date-time"):
        out.append(m("long", fill(facts, 10 * bound, uniq)))
        if facts.max_length is not None:
            out.append(m("at_max_length", fill(facts, facts.max_length, uniq)))
        if facts.max_bytes is not None and facts.max_bytes // 3 + 1 <= bound:
            out.append(m("over_max_bytes", "\u20ac" * (facts.max_bytes // 3 + 1)))
    else:
        out.append(m("long", base * (10 * bound // max(1, len(base)) + 1)))
    if not is_key:
        out.append(Mutation(where, target, "number", "0"))
    return out


def number_mutations(target: tuple[Step, ...], base: int | float, facts: Facts) -> list[Mutation]:
    def m(name: str, token: str, *, invalid: bool = False) -> Mutation:
        integral = facts.integer and name in ("minus_zero", "2_pow_63_float")
        return Mutation("body", target, name, token, always_invalid=invalid,
                        integral_float=integral)  # fmt: skip

    out = [
        m("nan", "NaN", invalid=True),
        m("infinity", "Infinity", invalid=True),
        m("minus_infinity", "-Infinity", invalid=True),
        m("1e39", "1e39"),
        m("minus_zero", "-0.0"),
        m("2_pow_63_integer", str(2**63)),
        m("2_pow_63_float", "9.223372036854775808e18"),
        m("string", json.dumps(str(base))),
        m("true", "true"),
    ]
    if facts.integer:
        out.append(m("fraction", "0.5"))
    return out


def boolean_mutations(target: tuple[Step, ...]) -> list[Mutation]:
    return [
        Mutation("body", target, "string", '"true"'),
        Mutation("body", target, "number", "1"),
    ]


def body_mutations(oracle: Oracle, schema: dict[str, Any], body: Any, uniq: str) -> list[Mutation]:
    """Every mutation of a base body: its leaves, map keys, arrays' lengths, optional fields
    sent as null, an unknown field, and bodies that are not objects."""
    out: list[Mutation] = [
        Mutation("body", (), "array_body", "[1]"),
        Mutation("body", (), "string_body", '""'),
    ]
    if isinstance(body, dict):
        out.append(Mutation("body", ("zz_unknown_field",), "unknown_field", "1"))

    def walk(node_schema: dict[str, Any], value: Any, target: tuple[Step, ...]) -> None:
        if isinstance(value, dict):
            required = oracle.required(node_schema, value)
            pairs = _paired_arrays(oracle, node_schema, value)
            for key, item in value.items():
                here = (*target, key)
                sub = oracle.child(node_schema, value, key)
                if key not in required:
                    out.append(Mutation("body", here, "null", "null"))
                if key in pairs:
                    continue
                walk(sub, item, here)
            for key in pairs[:1]:
                facts = oracle.facts(oracle.child(node_schema, value, key), value[key])
                if facts.max_items is not None:
                    out.append(Mutation("body", (*target, "+".join(pairs)), "over_max_items",
                                        "", grow=facts.max_items + 1))  # fmt: skip
            # A map's keys share one schema: the first key stands for all.
            for key in [k for k in value if _is_map(oracle, node_schema, value, k)][:1]:
                keys = oracle.child(node_schema, value, KeyOf(key))
                facts = oracle.facts(keys, key)
                out.extend(string_mutations((*target, KeyOf(key)), "body", key, facts,
                                            uniq, is_key=True))  # fmt: skip
            for key in pairs:
                items = value[key]
                for index, item in enumerate(items[:1]):
                    walk(oracle.child(oracle.child(node_schema, value, key), items, index),
                         item, (*target, key, index))  # fmt: skip
        elif isinstance(value, list):
            facts = oracle.facts(node_schema, value)
            out.append(Mutation("body", target, "empty_list", "[]"))
            if value and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                out.append(Mutation("body", target, "all_zeros", dumps([0] * len(value))))
            if facts.max_items is not None and value:
                out.append(Mutation("body", target, "over_max_items", "", grow=facts.max_items + 1))
            for index, item in enumerate(value[:1]):
                walk(oracle.child(node_schema, value, index), item, (*target, index))
        elif isinstance(value, bool):
            out.extend(boolean_mutations(target))
        elif isinstance(value, int | float):
            out.extend(number_mutations(target, value, oracle.facts(node_schema, value)))
        elif isinstance(value, str):
            facts = oracle.facts(node_schema, value)
            out.extend(string_mutations(target, "body", value, facts, uniq, is_key=False))

    walk(schema, body, ())
    return out


def _is_map(oracle: Oracle, schema: dict[str, Any], value: dict[str, Any], key: str) -> bool:
    """Whether `key` is a free key of a map (additionalProperties), not a declared property."""
    nodes = oracle.applicable(schema, value)
    declared = any(key in n.get("properties", {}) for n in nodes)
    free = any(isinstance(n.get("additionalProperties"), dict) or "propertyNames" in n
               for n in nodes)  # fmt: skip
    return free and not declared


def _paired_arrays(oracle: Oracle, schema: dict[str, Any], value: dict[str, Any]) -> list[str]:
    """Arrays of one object that must keep the same length (a sparse vector's `indices` and
    `values`): both grow together in an over_max_items mutation."""
    arrays = [k for k, v in value.items() if isinstance(v, list) and v]
    if len(arrays) != 2 or len(value[arrays[0]]) != len(value[arrays[1]]):
        return []
    limits = {oracle.facts(oracle.child(schema, value, k), value[k]).max_items for k in arrays}
    return sorted(arrays) if len(limits) == 1 and None not in limits else []


def apply_body(body: Any, mutation: Mutation) -> Any:
    """The base body with the mutation applied (Raw parts where the token is not JSON an
    encoder would write)."""
    if not mutation.target:
        return Raw(mutation.token)
    out = copy.deepcopy(body)
    *parents, last = mutation.target
    node = out
    for step in parents:
        node = node[step]
    if mutation.name == "over_max_items":
        # A list position (an array of arrays: `queries[0]`), or field names joined by `+`.
        keys: list[Any] = [last] if isinstance(last, int) else str(last).split("+")
        for key in keys:
            node[key] = _grown(node[key], mutation.grow)
    elif isinstance(last, KeyOf):
        items = list(node.items())
        node.clear()
        for k, v in items:
            node[Raw(mutation.token) if k == last.key else k] = v
    elif mutation.name == "unknown_field":
        node[last] = 1
    else:
        node[last] = Raw(mutation.token)
    return out


def _grown(items: list[Any], length: int) -> list[Any]:
    """`items` made `length` long with distinct members where the list needs them."""
    first = items[0]
    if isinstance(first, bool) or not isinstance(first, int | str | dict):
        return [first] * length
    if isinstance(first, int):
        return list(range(length))
    if isinstance(first, str):
        return [f"{first}-{i}" for i in range(length)]
    if "id" in first:
        return [{**first, "id": f"{first['id']}-{i}"} for i in range(length)]
    return [first] * length


def parsed_body(body: Any) -> Any:
    return _parsed(body)


def param_mutations(param: dict[str, Any], oracle: Oracle, base: str, uniq: str) -> list[Mutation]:
    """Mutations of one path or query parameter (raw percent-encoded text)."""
    where = param["in"]
    schema = param.get("schema", {})
    node = oracle.node(_as_json_schema(schema, oas30=oracle.api == "management", urn=oracle.urn))
    is_array = node.get("type") == "array"
    item_schema = oracle.node(node["items"]) if is_array else node
    facts = oracle.facts(item_schema, base)
    kind = item_schema.get("type")
    target = (param["name"],)

    def m(name: str, text: str, *, invalid: bool = False, raw: bool = False) -> Mutation:
        return Mutation(where, target, name, text if raw else quote(text, safe=""),
                        always_invalid=invalid, integral_float=name == "minus_zero")  # fmt: skip

    middle = len(base) // 2
    out = [
        m("nul", quote(base[:middle], safe="") + "%00" + quote(base[middle:], safe=""),
          invalid=True, raw=True),
        m("surrogate", quote(base[:middle], safe="") + "%ED%A0%80" + quote(base[middle:], safe=""),
          invalid=True, raw=True),
    ]  # fmt: skip
    if kind == "integer":
        for name, text in [("empty", ""), ("word", "abc"), ("nan", "NaN"), ("infinity", "Infinity"),
                           ("minus_infinity", "-Infinity"), ("1e39", "1e39"),
                           ("minus_zero", "-0.0"), ("2_pow_63", str(2**63)), ("fraction", "0.5"),
                           ("true", "true")]:  # fmt: skip
            if name != "empty" or where == "query":  # an empty path segment is another URL
                out.append(m(name, text))
    elif kind == "boolean":
        out += [m("empty", ""), m("word", "abc"), m("number", "2")][0 if where == "query" else 1 :]
    else:
        bound = facts.max_length or SENSIBLE_MAX_LENGTH
        if facts.format in ("uuid", "date-time") or facts.enum:
            out.append(m("long", (base * (10 * bound))[: 10 * bound]))
            if facts.format == "uuid" or kind == "integer":
                out.append(m("word", "abc"))
        else:
            out.append(m("long", fill(facts, 10 * bound, uniq)))
            if facts.max_length is not None:
                out.append(m("at_max_length", fill(facts, facts.max_length, uniq)))
            if facts.max_bytes is not None and facts.max_bytes // 3 + 1 <= bound:
                out.append(m("over_max_bytes", "\u20ac" * (facts.max_bytes // 3 + 1)))
    if is_array and node.get("maxItems") is not None:
        out.append(Mutation(where, target, "over_max_items", "", grow=node["maxItems"] + 1))
    return out


def param_value(param: dict[str, Any], text: str) -> tuple[bool, Any]:
    """The value a server makes of a parameter's raw text, typed as the schema says, and
    whether it could be made at all (`-0.0` is not an integer literal in a URL)."""
    try:
        raw = unquote_to_bytes(text).decode()
    except UnicodeDecodeError:
        return False, None
    node = param.get("schema", {})
    kind = node.get("items", {}).get("type") if node.get("type") == "array" else node.get("type")
    if kind == "integer":
        if not re.fullmatch(r"-?[0-9]+", raw):
            return False, None
        return True, int(raw)
    if kind == "boolean":
        if raw not in ("true", "false"):
            return False, None
        return True, raw == "true"
    return True, raw


# ============================================================================ answers


@dataclass
class Sent:
    """A request as sent, for the failure message (a copy-paste reproduction)."""

    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]

    def describe(self) -> str:
        body = "" if self.body is None else self.body[:400].decode(errors="replace")
        if self.body is not None and len(self.body) > 400:
            body += f"... ({len(self.body)} bytes)"
        shown = {k: v for k, v in self.headers.items() if k.lower() == "host"}
        url = self.url if len(self.url) < 400 else self.url[:400] + f"... ({len(self.url)} chars)"
        return f"{self.method} {url} {shown or ''} {body}".rstrip()


def describe_answer(response: httpx.Response) -> str:
    text = response.text[:500]
    return f"{response.status_code} {response.headers.get('content-type', '-')} {text!r}"


def last_traceback(log: str) -> str:
    """The end of the last traceback in a server's log: where it was raised, and what."""
    start = log.rfind("Traceback (most recent call last)")
    if start < 0:
        return "(no traceback in the server log)"
    lines = [line for line in log[start:].splitlines() if line.strip()]
    frames = [line.strip() for line in lines if line.lstrip().startswith("File ")]
    ours = [f for f in frames if "site-packages" not in f][-2:]
    end = next((line for line in lines[1:] if not line.startswith(" ")), lines[-1])
    return " <- ".join(reversed(ours)) + f" :: {end.strip()}"


def check_answer(
    response: httpx.Response,
    sent: Sent,
    *,
    invalid: bool,
    meaning: frozenset[str] = frozenset(),
    why: str = "",
    server_log: Callable[[], str] | None = None,
) -> None:
    """The answer to a request is never a server error, every error is the documented shape
    with a documented code, a schema-invalid request is refused with a 4xx, and a valid one
    succeeds (or answers one of the codes that document what that value means here)."""
    status = response.status_code
    where = f"\n  request: {sent.describe()}\n  answer:  {describe_answer(response)}"
    if status >= 500 and server_log is not None:
        where += f"\n  server:  {last_traceback(server_log())}"
    assert status < 500, f"server error{where}"
    code = None
    if status >= 400:
        assert response.headers.get("content-type", "").startswith("application/json"), (
            f"error without a JSON body{where}"
        )
        body = response.json()
        assert isinstance(body, dict) and set(body) == {"error"}, f"not the error shape{where}"
        error = body["error"]
        assert isinstance(error, dict) and set(error) == {"code", "message", "details"}, (
            f"not the error shape{where}"
        )
        assert isinstance(error["details"], dict) and isinstance(error["message"], str), where
        code = error["code"]
        assert code in documented_codes(), f"code {code!r} is not in docs/ERRORS.md{where}"
    if invalid:
        assert 400 <= status < 500, f"accepted a request the schema refuses ({why}){where}"
    else:
        assert 200 <= status < 300 or code in meaning, (
            f"refused a request the schema allows{where}"
        )

