"""Qdrant REST JSON -> qdrant_edge objects, directly (no pydantic), and Edge results -> JSON.

Every converter takes the decoded JSON value and `where`, the dotted path of that value in the
request body, so that a 400 names the part it rejects (`filter.must[2].match: ...`). Unknown
fields are rejected as Qdrant rejects them (its request types deny unknown fields); fields Qdrant
knows but this host cannot honour (shard keys, lookups in other collections, query by point id,
...) are rejected with `errors.unsupported`, never silently ignored.

Field names, defaults and shapes follow `qdrant_client/http/models/models.py` (the REST schema).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import qdrant_edge as qe

from .errors import ApiError, bad_request, from_edge, unsupported

JSON = Any
PointId = int | uuid.UUID | str

U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1
DEFAULT_LIMIT = 10
# Qdrant's default `k` for {"fusion": "rrf"} (qdrant_client.hybrid.fusion mirrors the server).
DEFAULT_RRF_K = 2
DEFAULT_MMR_DIVERSITY = 0.5

# Qdrant's defaults, reported by GET /collections/{name} for what a request left unspecified.
DEFAULT_HNSW: dict[str, Any] = {
    "m": 16,
    "ef_construct": 100,
    "full_scan_threshold": 10000,
    "max_indexing_threads": 0,
    "on_disk": False,
}
DEFAULT_OPTIMIZERS: dict[str, Any] = {
    "deleted_threshold": 0.2,
    "vacuum_min_vector_number": 1000,
    "default_segment_number": 0,
    "max_segment_size": None,
    "memmap_threshold": None,
    "indexing_threshold": 10000,
    "flush_interval_sec": 5,
    "max_optimization_threads": None,
}


# ============================================================================ small helpers


def _obj(value: JSON, where: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise bad_request(f"{where or 'body'}: expected an object, got {_kind(value)}")
    return value


def _kind(value: JSON) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def check_keys(obj: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    if obj.keys() <= allowed:
        return
    unknown = sorted(set(obj) - allowed)
    raise bad_request(f"{where or 'body'}: unknown field `{unknown[0]}`")


def _reject_present(obj: Mapping[str, Any], fields: Mapping[str, str], where: str) -> None:
    """Fields of Qdrant's schema that this host cannot serve: 400 if set (null is absent)."""
    for key, what in fields.items():
        if obj.get(key) is not None:
            raise unsupported(f"`{_at(where, key)}` ({what})")


_SHARDING = {"shard_key": "custom sharding; the local host has one shard per collection"}


def _bool(value: JSON, where: str, default: bool) -> bool:
    if value is None:
        return default
    if type(value) is not bool:
        raise bad_request(f"{where}: expected a boolean, got {_kind(value)}")
    return value


def _opt_bool(value: JSON, where: str) -> bool | None:
    if value is None:
        return None
    return _bool(value, where, False)


def _int(value: JSON, where: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    if type(value) is not int:
        raise bad_request(f"{where}: expected an integer, got {_kind(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise bad_request(f"{where}: value {value} invalid, must be {bound}")
    return value


def _opt_int(
    value: JSON, where: str, *, minimum: int = 0, maximum: int | None = None
) -> int | None:
    if value is None:
        return None
    return _int(value, where, minimum=minimum, maximum=maximum)


def _float(value: JSON, where: str) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise bad_request(f"{where}: expected a number, got {_kind(value)}")


def _opt_float(value: JSON, where: str) -> float | None:
    if value is None:
        return None
    return _float(value, where)


def _str(value: JSON, where: str) -> str:
    if type(value) is not str:
        raise bad_request(f"{where}: expected a string, got {_kind(value)}")
    return value


def _str_list(value: JSON, where: str) -> list[str]:
    if type(value) is not list or not all(type(v) is str for v in value):
        raise bad_request(f"{where}: expected an array of strings")
    return value


def _enum(value: JSON, where: str, choices: Mapping[str, Any]) -> Any:
    if type(value) is not str or value not in choices:
        allowed = ", ".join(map(repr, choices))
        raise bad_request(f"{where}: expected one of {allowed}, got {value!r}")
    return choices[value]


T = TypeVar("T")


def edge_call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Construct an Edge object, turning its validation errors into a 400."""
    try:
        return fn(*args, **kwargs)
    except ApiError:
        raise
    except Exception as exc:
        raise from_edge(exc) from exc


# ============================================================================ point ids


def point_id(value: JSON, where: str) -> PointId:
    """An unsigned 64-bit integer or a UUID (any form the uuid module reads, as Qdrant's parser
    does), normalised to the hyphenated lowercase form Qdrant answers with."""
    if type(value) is int:
        if 0 <= value <= U64_MAX:
            return value
    elif type(value) is str:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise bad_request(
        f"{where}: {value!r} is not a valid point id, only unsigned integers and UUIDs are allowed"
    )


def point_ids(value: JSON, where: str) -> list[PointId]:
    if type(value) is not list:
        raise bad_request(f"{where}: expected an array of point ids, got {_kind(value)}")
    return [point_id(v, f"{where}[{i}]") for i, v in enumerate(value)]


# ============================================================================ vectors


def sparse_vector(obj: dict[str, Any], where: str) -> qe.SparseVector:
    """Validated here, not by Edge: a length mismatch makes the engine panic after the WAL
    append, which leaves a shard that panics again on every restart."""
    check_keys(obj, _SPARSE_KEYS, where)
    indices = obj.get("indices")
    values = obj.get("values")
    if type(indices) is not list or type(values) is not list:
        raise bad_request(f"{where}: a sparse vector needs `indices` and `values` arrays")
    if len(indices) != len(values):
        raise bad_request(f"{where}: `indices` and `values` must have the same length")
    for i in indices:
        if type(i) is not int or not 0 <= i <= U32_MAX:
            raise bad_request(f"{where}.indices: {i!r} is not an unsigned 32-bit integer")
    if len(set(indices)) != len(indices):
        raise bad_request(f"{where}.indices: must be unique")
    for v in values:
        if type(v) is not float and type(v) is not int:
            raise bad_request(f"{where}.values: {v!r} is not a number")
    return edge_call(qe.SparseVector, indices, values)


_SPARSE_KEYS = frozenset({"indices", "values"})
_INFERENCE_KEYS = frozenset({"text", "image", "object", "model", "options"})


def dense_or_multi(value: list[Any], where: str) -> list[Any]:
    """A dense vector passes through untouched (Edge checks its numbers and dimension); a
    multivector's rows must agree in length (a ragged one makes the engine panic)."""
    if value and type(value[0]) is list:
        width = len(value[0])
        for row in value:
            if type(row) is not list or len(row) != width or not row:
                raise bad_request(f"{where}: every vector of a multivector must have one length")
    return value


def _vector(value: JSON, where: str) -> Any:
    if type(value) is list:
        return dense_or_multi(value, where)
    if type(value) is dict:
        if value.keys() & _INFERENCE_KEYS:
            raise unsupported(f"inference (`{where}` is a document/image/object)")
        return sparse_vector(value, where)
    raise bad_request(f"{where}: expected a vector, got {_kind(value)}")


def point_vector(value: JSON, where: str) -> Any:
    """VectorStruct: a list (the unnamed vector, dense or multi) or {name: vector}."""
    if type(value) is list:
        return dense_or_multi(value, where)
    if type(value) is dict:
        out: dict[str, Any] = {}
        for name, v in value.items():
            if type(v) is list:
                out[name] = dense_or_multi(v, f"{where}.{name}")
            else:
                out[name] = _vector(v, f"{where}.{name}")
        return out
    raise bad_request(f"{where}: expected a vector or an object of named vectors")


def _payload(value: JSON, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if type(value) is not dict:
        raise bad_request(f"{where}: a payload must be an object")
    return value


# ============================================================================ selectors


def with_payload(value: JSON, where: str, default: bool) -> Any:
    if value is None:
        return default
    if type(value) is bool:
        return value
    if type(value) is list:
        return _str_list(value, where)
    obj = _obj(value, where)
    if obj.keys() == {"include"}:
        return qe.PayloadSelector.Include(_str_list(obj["include"], f"{where}.include"))
    if obj.keys() == {"exclude"}:
        return qe.PayloadSelector.Exclude(_str_list(obj["exclude"], f"{where}.exclude"))
    raise bad_request(f"{where}: expected a boolean, an array of keys, {{include}} or {{exclude}}")


def with_vector(value: JSON, where: str, default: bool) -> bool | list[str]:
    if value is None:
        return default
    if type(value) is bool:
        return value
    return _str_list(value, where)


# ============================================================================ filters

_FILTER_KEYS = frozenset({"must", "should", "must_not", "min_should"})
_FIELD_KEYS = frozenset(
    {
        "key",
        "match",
        "range",
        "geo_bounding_box",
        "geo_radius",
        "geo_polygon",
        "values_count",
        "is_empty",
        "is_null",
    }
)
_RANGE_KEYS = frozenset({"lt", "gt", "gte", "lte"})


def filter_(value: JSON, where: str) -> qe.Filter:
    obj = _obj(value, where)
    check_keys(obj, _FILTER_KEYS, where)
    return qe.Filter(
        must=_conditions(obj.get("must"), _at(where, "must")),
        should=_conditions(obj.get("should"), _at(where, "should")),
        must_not=_conditions(obj.get("must_not"), _at(where, "must_not")),
        min_should=_min_should(obj.get("min_should"), _at(where, "min_should")),
    )


def opt_filter(value: JSON, where: str) -> qe.Filter | None:
    return None if value is None else filter_(value, where)


def _conditions(value: JSON, where: str) -> list[Any] | None:
    if value is None:
        return None
    if type(value) is dict:  # Qdrant accepts a single condition in place of a list
        return [condition(value, where)]
    if type(value) is not list:
        raise bad_request(f"{where}: expected a condition or an array of conditions")
    return [condition(c, f"{where}[{i}]") for i, c in enumerate(value)]


def _min_should(value: JSON, where: str) -> qe.MinShould | None:
    if value is None:
        return None
    obj = _obj(value, where)
    check_keys(obj, frozenset({"conditions", "min_count"}), where)
    conditions = _conditions(obj.get("conditions"), _at(where, "conditions"))
    if conditions is None:
        raise bad_request(f"{where}: `conditions` is required")
    return qe.MinShould(conditions, _int(obj.get("min_count"), _at(where, "min_count")))


def condition(value: JSON, where: str) -> Any:
    obj = _obj(value, where)
    if "key" in obj:
        return _field_condition(obj, where)
    if "is_empty" in obj:
        return qe.IsEmptyCondition(_payload_field(obj, "is_empty", where))
    if "is_null" in obj:
        return qe.IsNullCondition(_payload_field(obj, "is_null", where))
    if "has_id" in obj:
        check_keys(obj, frozenset({"has_id"}), where)
        return qe.HasIdCondition(set(point_ids(obj["has_id"], _at(where, "has_id"))))
    if "has_vector" in obj:
        check_keys(obj, frozenset({"has_vector"}), where)
        return qe.HasVectorCondition(_str(obj["has_vector"], _at(where, "has_vector")))
    if "nested" in obj:
        check_keys(obj, frozenset({"nested"}), where)
        nested = _obj(obj["nested"], _at(where, "nested"))
        check_keys(nested, frozenset({"key", "filter"}), _at(where, "nested"))
        return qe.NestedCondition(
            _str(nested.get("key"), _at(where, "nested.key")),
            filter_(nested.get("filter"), _at(where, "nested.filter")),
        )
    if "slice" in obj:
        raise unsupported(f"the slice condition (`{where}`)")
    if obj.keys() <= _FILTER_KEYS:
        return filter_(obj, where)
    raise bad_request(f"{where}: unknown condition with fields {sorted(obj)}")


def _payload_field(obj: dict[str, Any], kind: str, where: str) -> str:
    check_keys(obj, frozenset({kind}), where)
    inner = _obj(obj[kind], _at(where, kind))
    check_keys(inner, frozenset({"key"}), _at(where, kind))
    return _str(inner.get("key"), _at(where, f"{kind}.key"))


def _field_condition(obj: dict[str, Any], where: str) -> qe.FieldCondition:
    check_keys(obj, _FIELD_KEYS, where)
    key = _str(obj["key"], _at(where, "key"))
    match = obj.get("match")
    range_ = obj.get("range")
    values_count = obj.get("values_count")
    radius = obj.get("geo_radius")
    box = obj.get("geo_bounding_box")
    polygon = obj.get("geo_polygon")
    is_empty = _opt_bool(obj.get("is_empty"), _at(where, "is_empty"))
    is_null = _opt_bool(obj.get("is_null"), _at(where, "is_null"))
    if all(
        v is None for v in (match, range_, values_count, radius, box, polygon, is_empty, is_null)
    ):
        raise bad_request(f"{where}: at least one field condition must be specified")
    return qe.FieldCondition(
        key,
        match=None if match is None else _match(match, _at(where, "match")),
        range=None if range_ is None else _range(range_, _at(where, "range")),
        geo_bounding_box=None if box is None else _geo_box(box, _at(where, "geo_bounding_box")),
        geo_radius=None if radius is None else _geo_radius(radius, _at(where, "geo_radius")),
        geo_polygon=None if polygon is None else _geo_polygon(polygon, _at(where, "geo_polygon")),
        values_count=None
        if values_count is None
        else _values_count(values_count, _at(where, "values_count")),
        is_empty=is_empty,
        is_null=is_null,
    )


_TEXT_MATCHES: dict[str, Callable[[str], Any]] = {
    "text": qe.MatchText,
    "text_any": qe.MatchTextAny,
    "phrase": qe.MatchPhrase,
    "prefix": qe.MatchPrefix,
    "substring": qe.MatchSubstring,
}


def _match(value: JSON, where: str) -> Any:
    obj = _obj(value, where)
    if len(obj) != 1:
        raise bad_request(
            f"{where}: expected exactly one of value, any, except, text, text_any, phrase, "
            f"prefix, substring; got {sorted(obj)}"
        )
    ((kind, arg),) = obj.items()
    at = _at(where, kind)
    if kind == "value":
        if type(arg) is bool:
            # qdrant_edge 0.9 reads a Python bool as the integer 0/1 (bool is an int subclass),
            # so {"value": true} would never match a boolean payload; numpy.bool_ is read as a
            # boolean.
            import numpy

            return qe.MatchValue(numpy.bool_(arg))  # type: ignore[arg-type]
        if type(arg) is int or type(arg) is str:
            return qe.MatchValue(arg)
        raise bad_request(f"{at}: expected a string, an integer or a boolean, got {_kind(arg)}")
    if kind in _TEXT_MATCHES:
        return _TEXT_MATCHES[kind](_str(arg, at))
    if kind == "any":
        return qe.MatchAny(_any_variants(arg, at))
    if kind == "except":
        return qe.MatchExcept(_any_variants(arg, at))
    raise bad_request(f"{where}: unknown match kind `{kind}`")


def _any_variants(value: JSON, where: str) -> list[Any]:
    if type(value) is list and (
        all(type(v) is str for v in value) or all(type(v) is int for v in value)
    ):
        return value
    raise bad_request(f"{where}: expected an array of strings or an array of integers")


def _range(value: JSON, where: str) -> Any:
    obj = _obj(value, where)
    check_keys(obj, _RANGE_KEYS, where)
    bounds = {k: v for k, v in obj.items() if v is not None}
    if all(type(v) is int or type(v) is float for v in bounds.values()):
        return qe.RangeFloat(**{k: float(v) for k, v in bounds.items()})
    if all(type(v) is str for v in bounds.values()):
        return edge_call(qe.RangeDateTime, **bounds)
    raise bad_request(f"{where}: bounds must be all numbers or all RFC 3339 date-times")


def _values_count(value: JSON, where: str) -> qe.ValuesCount:
    obj = _obj(value, where)
    check_keys(obj, _RANGE_KEYS, where)
    return qe.ValuesCount(**{k: _int(v, _at(where, k)) for k, v in obj.items() if v is not None})


def geo_point(value: JSON, where: str) -> qe.GeoPoint:
    obj = _obj(value, where)
    check_keys(obj, frozenset({"lon", "lat"}), where)
    lon = _float(obj.get("lon"), _at(where, "lon"))
    lat = _float(obj.get("lat"), _at(where, "lat"))
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise bad_request(f"{where}: lon must be within [-180, 180] and lat within [-90, 90]")
    return qe.GeoPoint(lon=lon, lat=lat)


def _geo_radius(value: JSON, where: str) -> qe.GeoRadius:
    obj = _obj(value, where)
    check_keys(obj, frozenset({"center", "radius"}), where)
    return qe.GeoRadius(
        geo_point(obj.get("center"), _at(where, "center")),
        _float(obj.get("radius"), _at(where, "radius")),
    )


def _geo_box(value: JSON, where: str) -> qe.GeoBoundingBox:
    obj = _obj(value, where)
    check_keys(obj, frozenset({"top_left", "bottom_right"}), where)
    return qe.GeoBoundingBox(
        geo_point(obj.get("top_left"), _at(where, "top_left")),
        geo_point(obj.get("bottom_right"), _at(where, "bottom_right")),
    )


def _line_string(value: JSON, where: str) -> list[qe.GeoPoint]:
    obj = _obj(value, where)
    check_keys(obj, frozenset({"points"}), where)
    points = obj.get("points")
    if type(points) is not list:
        raise bad_request(f"{where}.points: expected an array of geo points")
    return [geo_point(p, f"{where}.points[{i}]") for i, p in enumerate(points)]


def _geo_polygon(value: JSON, where: str) -> qe.GeoPolygon:
    obj = _obj(value, where)
    check_keys(obj, frozenset({"exterior", "interiors"}), where)
    interiors = obj.get("interiors")
    if interiors is not None and type(interiors) is not list:
        raise bad_request(f"{where}.interiors: expected an array of line strings")
    return edge_call(
        qe.GeoPolygon,
        _line_string(obj.get("exterior"), _at(where, "exterior")),
        None
        if interiors is None
        else [_line_string(x, f"{where}.interiors[{i}]") for i, x in enumerate(interiors)],
    )


# ============================================================================ queries

_QUERY_KEYS = frozenset(
    {
        "shard_key",
        "prefetch",
        "query",
        "using",
        "filter",
        "params",
        "score_threshold",
        "limit",
        "offset",
        "with_vector",
        "with_payload",
        "lookup_from",
    }
)
_PREFETCH_KEYS = frozenset(
    {"prefetch", "query", "using", "filter", "params", "score_threshold", "limit", "lookup_from"}
)
_LOOKUP = {"lookup_from": "vectors looked up in another collection"}
_UNSUPPORTED_QUERIES = {
    "recommend": "the recommend query",
    "discover": "the discover query",
    "context": "the context query",
    "relevance_feedback": "the relevance feedback query",
    "text": "the BM25 text query",
}


class Query:
    """A converted QueryRequest, and whether the client asked for vectors (Edge returns them
    for MMR queries even when not asked, Qdrant does not)."""

    __slots__ = ("request", "with_vector")

    def __init__(self, request: qe.QueryRequest, with_vector: bool) -> None:
        self.request = request
        self.with_vector = with_vector


def query_request(value: JSON, where: str = "") -> Query:
    obj = _obj(value, where)
    check_keys(obj, _QUERY_KEYS, where)
    _reject_present(obj, {**_SHARDING, **_LOOKUP}, where)
    limit = _limit(obj.get("limit"), _at(where, "limit"))
    using = _using(obj.get("using"), _at(where, "using"))
    query = obj.get("query")
    vectors = with_vector(obj.get("with_vector"), _at(where, "with_vector"), False)
    request = qe.QueryRequest(
        limit=limit,
        offset=_opt_int(obj.get("offset"), _at(where, "offset")),
        query=None if query is None else scoring_query(query, using, _at(where, "query"), limit),
        prefetches=_prefetches(obj.get("prefetch"), _at(where, "prefetch")),
        with_vector=vectors,
        with_payload=with_payload(obj.get("with_payload"), _at(where, "with_payload"), False),
        filter=opt_filter(obj.get("filter"), _at(where, "filter")),
        score_threshold=_opt_float(obj.get("score_threshold"), _at(where, "score_threshold")),
        params=search_params(obj.get("params"), _at(where, "params")),
    )
    return Query(request, vectors is not False)


def query_batch(value: JSON) -> list[Query]:
    obj = _obj(value, "")
    check_keys(obj, frozenset({"searches"}), "")
    searches = obj.get("searches")
    if type(searches) is not list:
        raise bad_request("searches: expected an array of query requests")
    return [query_request(s, f"searches[{i}]") for i, s in enumerate(searches)]


def _limit(value: JSON, where: str) -> int:
    return DEFAULT_LIMIT if value is None else _int(value, where)


def _using(value: JSON, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _prefetches(value: JSON, where: str) -> list[qe.Prefetch] | None:
    if value is None:
        return None
    if type(value) is dict:
        return [_prefetch(value, where)]
    if type(value) is not list:
        raise bad_request(f"{where}: expected a prefetch or an array of prefetches")
    return [_prefetch(p, f"{where}[{i}]") for i, p in enumerate(value)]


def _prefetch(value: JSON, where: str) -> qe.Prefetch:
    obj = _obj(value, where)
    check_keys(obj, _PREFETCH_KEYS, where)
    _reject_present(obj, _LOOKUP, where)
    limit = _limit(obj.get("limit"), _at(where, "limit"))
    using = _using(obj.get("using"), _at(where, "using"))
    query = obj.get("query")
    return qe.Prefetch(
        limit=limit,
        query=None if query is None else scoring_query(query, using, _at(where, "query"), limit),
        prefetches=_prefetches(obj.get("prefetch"), _at(where, "prefetch")),
        params=search_params(obj.get("params"), _at(where, "params")),
        filter=opt_filter(obj.get("filter"), _at(where, "filter")),
        score_threshold=_opt_float(obj.get("score_threshold"), _at(where, "score_threshold")),
    )


def _vector_input(value: JSON, where: str) -> Any:
    if type(value) is int or type(value) is str:
        raise unsupported(f"query by point id (`{where}`)")
    return _vector(value, where)


def scoring_query(value: JSON, using: str | None, where: str, limit: int) -> Any:
    """QueryInterface: a bare vector, or one of the Query variants."""
    if type(value) is list:
        return qe.Query.Nearest(dense_or_multi(value, where), using)
    if type(value) is int or type(value) is str:
        raise unsupported(f"query by point id (`{where}`)")
    obj = _obj(value, where)
    if "indices" in obj:
        return qe.Query.Nearest(sparse_vector(obj, where), using)
    if "nearest" in obj:
        check_keys(obj, frozenset({"nearest", "mmr"}), where)
        vector = _vector_input(obj["nearest"], _at(where, "nearest"))
        if obj.get("mmr") is None:
            return qe.Query.Nearest(vector, using)
        return _mmr(obj["mmr"], vector, using, _at(where, "mmr"), limit)
    if "fusion" in obj:
        check_keys(obj, frozenset({"fusion"}), where)
        fusion = _enum(obj["fusion"], _at(where, "fusion"), {"rrf": "rrf", "dbsf": "dbsf"})
        return qe.Fusion.Rrf(k=DEFAULT_RRF_K) if fusion == "rrf" else qe.Fusion.Dbsf()
    if "rrf" in obj:
        check_keys(obj, frozenset({"rrf"}), where)
        rrf = _obj(obj["rrf"], _at(where, "rrf"))
        check_keys(rrf, frozenset({"k", "weights"}), _at(where, "rrf"))
        k = _opt_int(rrf.get("k"), _at(where, "rrf.k"), minimum=1)
        weights = rrf.get("weights")
        if weights is not None:
            weights = [_float(w, f"{where}.rrf.weights[{i}]") for i, w in enumerate(weights)]
        return qe.Fusion.Rrf(k=DEFAULT_RRF_K if k is None else k, weights=weights)
    if "formula" in obj:
        check_keys(obj, frozenset({"formula", "defaults"}), where)
        defaults = obj.get("defaults")
        if defaults is not None:
            _obj(defaults, _at(where, "defaults"))
        return edge_call(
            qe.Formula, expression(obj["formula"], _at(where, "formula")), defaults=defaults
        )
    if "order_by" in obj:
        check_keys(obj, frozenset({"order_by"}), where)
        return order_by(obj["order_by"], _at(where, "order_by"))
    if "sample" in obj:
        check_keys(obj, frozenset({"sample"}), where)
        _enum(obj["sample"], _at(where, "sample"), {"random": None})
        return qe.Sample.Random
    for key, what in _UNSUPPORTED_QUERIES.items():
        if key in obj:
            raise unsupported(f"{what} (`{where}`)")
    if obj.keys() & _INFERENCE_KEYS:
        raise unsupported(f"inference (`{where}` is a document/image/object)")
    raise bad_request(f"{where}: unknown query with fields {sorted(obj)}")


def _mmr(value: JSON, vector: Any, using: str | None, where: str, limit: int) -> qe.Mmr:
    obj = _obj(value, where)
    check_keys(obj, frozenset({"diversity", "candidates_limit"}), where)
    diversity = _opt_float(obj.get("diversity"), _at(where, "diversity"))
    if diversity is None:
        diversity = DEFAULT_MMR_DIVERSITY
    if not 0.0 <= diversity <= 1.0:
        raise bad_request(f"{where}.diversity: must be within [0, 1]")
    candidates = _opt_int(obj.get("candidates_limit"), _at(where, "candidates_limit"))
    # Qdrant's `diversity` is 1 - MMR's lambda (the weight of relevance).
    return qe.Mmr(vector, 1.0 - diversity, limit if candidates is None else candidates, using)


def order_by(value: JSON, where: str) -> qe.OrderBy:
    if type(value) is str:
        return qe.OrderBy(value)
    obj = _obj(value, where)
    check_keys(obj, frozenset({"key", "direction", "start_from"}), where)
    direction = obj.get("direction")
    start = obj.get("start_from")
    if start is not None and type(start) not in (int, float, str):
        raise bad_request(f"{where}.start_from: expected a number or a date-time")
    return edge_call(
        qe.OrderBy,
        _str(obj.get("key"), _at(where, "key")),
        direction=None
        if direction is None
        else _enum(direction, _at(where, "direction"), _DIRECTIONS),
        start_from=start,
    )


_DIRECTIONS = {"asc": qe.Direction.Asc, "desc": qe.Direction.Desc}
_UNARY: dict[str, Callable[[Any], Any]] = {
    "neg": qe.Expression.Neg,
    "abs": qe.Expression.Abs,
    "sqrt": qe.Expression.Sqrt,
    "exp": qe.Expression.Exp,
    "log10": qe.Expression.Log10,
    "ln": qe.Expression.Ln,
    "acosh": qe.Expression.Acosh,
}
_NARY: dict[str, Callable[[list[Any]], Any]] = {
    "mult": qe.Expression.Mult,
    "sum": qe.Expression.Sum,
    "max": qe.Expression.Max,
    "min": qe.Expression.Min,
}
_DECAYS = {"lin_decay": qe.DecayKind.Lin, "exp_decay": qe.DecayKind.Exp,
           "gauss_decay": qe.DecayKind.Gauss}  # fmt: skip
_EXPRESSION_KEYS = frozenset(
    {*_UNARY, *_NARY, *_DECAYS, "div", "pow", "datetime", "datetime_key", "geo_distance"}
)


def expression(value: JSON, where: str) -> Any:
    """A formula Expression: a number, a variable (`$score`, `$score[1]`, a payload key), a
    condition (1.0 when it holds), or one operator object."""
    if type(value) is int or type(value) is float:
        return qe.Expression.Constant(float(value))
    if type(value) is str:
        return qe.Expression.Variable(value)
    obj = _obj(value, where)
    if len(obj) != 1 or not obj.keys() <= _EXPRESSION_KEYS:
        return qe.Expression.Condition(condition(obj, where))
    ((op, arg),) = obj.items()
    at = _at(where, op)
    if op in _UNARY:
        return _UNARY[op](expression(arg, at))
    if op in _NARY:
        if type(arg) is not list or not arg:
            raise bad_request(f"{at}: expected a non-empty array of expressions")
        return _NARY[op]([expression(e, f"{at}[{i}]") for i, e in enumerate(arg)])
    if op == "div":
        params = _obj(arg, at)
        check_keys(params, frozenset({"left", "right", "by_zero_default"}), at)
        return qe.Expression.Div(
            expression(params.get("left"), _at(at, "left")),
            expression(params.get("right"), _at(at, "right")),
            _opt_float(params.get("by_zero_default"), _at(at, "by_zero_default")),
        )
    if op == "pow":
        params = _obj(arg, at)
        check_keys(params, frozenset({"base", "exponent"}), at)
        return qe.Expression.Pow(
            expression(params.get("base"), _at(at, "base")),
            expression(params.get("exponent"), _at(at, "exponent")),
        )
    if op == "datetime":
        return edge_call(qe.Expression.Datetime, _str(arg, at))
    if op == "datetime_key":
        return qe.Expression.DatetimeKey(_str(arg, at))
    if op == "geo_distance":
        params = _obj(arg, at)
        check_keys(params, frozenset({"origin", "to"}), at)
        return qe.Expression.GeoDistance(
            geo_point(params.get("origin"), _at(at, "origin")), _str(params.get("to"), at + ".to")
        )
    params = _obj(arg, at)  # a decay
    check_keys(params, frozenset({"x", "target", "scale", "midpoint"}), at)
    target = params.get("target")
    return edge_call(
        qe.Expression.Decay,
        _DECAYS[op],
        expression(params.get("x"), _at(at, "x")),
        target=None if target is None else expression(target, _at(at, "target")),
        midpoint=_opt_float(params.get("midpoint"), _at(at, "midpoint")),
        scale=_opt_float(params.get("scale"), _at(at, "scale")),
    )


def search_params(value: JSON, where: str) -> qe.SearchParams | None:
    if value is None:
        return None
    obj = _obj(value, where)
    check_keys(
        obj,
        frozenset({"hnsw_ef", "exact", "quantization", "indexed_only", "acorn", "idf"}),
        where,
    )
    _reject_present(obj, {"idf": "IDF statistics over a filtered corpus"}, where)
    quantization = obj.get("quantization")
    if quantization is not None:
        q = _obj(quantization, _at(where, "quantization"))
        check_keys(q, frozenset({"ignore", "rescore", "oversampling"}), _at(where, "quantization"))
        quantization = qe.QuantizationSearchParams(
            ignore=_bool(q.get("ignore"), _at(where, "quantization.ignore"), False),
            rescore=_opt_bool(q.get("rescore"), _at(where, "quantization.rescore")),
            oversampling=_opt_float(q.get("oversampling"), _at(where, "quantization.oversampling")),
        )
    acorn = obj.get("acorn")
    if acorn is not None:
        a = _obj(acorn, _at(where, "acorn"))
        check_keys(a, frozenset({"enable", "max_selectivity"}), _at(where, "acorn"))
        acorn = qe.AcornSearchParams(
            enable=_bool(a.get("enable"), _at(where, "acorn.enable"), False),
            max_selectivity=_opt_float(
                a.get("max_selectivity"), _at(where, "acorn.max_selectivity")
            ),
        )
    return qe.SearchParams(
        hnsw_ef=_opt_int(obj.get("hnsw_ef"), _at(where, "hnsw_ef")),
        exact=_bool(obj.get("exact"), _at(where, "exact"), False),
        quantization=quantization,
        indexed_only=_bool(obj.get("indexed_only"), _at(where, "indexed_only"), False),
        acorn=acorn,
    )


# ============================================================================ reads


def retrieve_request(value: JSON) -> tuple[list[PointId], Any, bool | list[str]]:
    obj = _obj(value, "")
    check_keys(obj, frozenset({"shard_key", "ids", "with_payload", "with_vector"}), "")
    _reject_present(obj, _SHARDING, "")
    return (
        point_ids(obj.get("ids"), "ids"),
        with_payload(obj.get("with_payload"), "with_payload", True),
        with_vector(obj.get("with_vector"), "with_vector", False),
    )


def scroll_request(value: JSON) -> tuple[qe.ScrollRequest, bool]:
    """The request, and whether it orders by a payload key (then there is no next page offset)."""
    obj = _obj(value if value is not None else {}, "")
    check_keys(
        obj,
        frozenset(
            {"shard_key", "offset", "limit", "filter", "with_payload", "with_vector", "order_by"}
        ),
        "",
    )
    _reject_present(obj, _SHARDING, "")
    offset = obj.get("offset")
    order = obj.get("order_by")
    return (
        qe.ScrollRequest(
            offset=None if offset is None else point_id(offset, "offset"),
            limit=_limit(obj.get("limit"), "limit"),
            filter=opt_filter(obj.get("filter"), "filter"),
            with_payload=with_payload(obj.get("with_payload"), "with_payload", True),
            with_vector=with_vector(obj.get("with_vector"), "with_vector", False),
            order_by=None if order is None else order_by(order, "order_by"),
        ),
        order is not None,
    )


def count_request(value: JSON) -> qe.CountRequest:
    obj = _obj(value if value is not None else {}, "")
    check_keys(obj, frozenset({"shard_key", "filter", "exact"}), "")
    _reject_present(obj, _SHARDING, "")
    return qe.CountRequest(
        exact=_bool(obj.get("exact"), "exact", True),
        filter=opt_filter(obj.get("filter"), "filter"),
    )


def facet_request(value: JSON) -> qe.FacetRequest:
    obj = _obj(value, "")
    check_keys(obj, frozenset({"shard_key", "key", "limit", "filter", "exact"}), "")
    _reject_present(obj, _SHARDING, "")
    return qe.FacetRequest(
        _str(obj.get("key"), "key"),
        limit=_limit(obj.get("limit"), "limit"),
        exact=_bool(obj.get("exact"), "exact", False),
        filter=opt_filter(obj.get("filter"), "filter"),
    )


# ============================================================================ writes

_POINT_KEYS = frozenset({"id", "vector", "payload"})
_UPSERT_KEYS = frozenset({"points", "batch", "shard_key", "update_filter", "update_mode"})
_UPDATE_MODES = {
    "upsert": qe.UpdateMode.Upsert,
    "insert_only": qe.UpdateMode.InsertOnly,
    "update_only": qe.UpdateMode.UpdateOnly,
}


def upsert_operation(value: JSON, where: str = "") -> qe.UpdateOperation:
    """PointInsertOperations: {"points": [...]} or {"batch": {"ids", "vectors", "payloads"}}."""
    obj = _obj(value, where)
    check_keys(obj, _UPSERT_KEYS, where)
    _reject_present(obj, _SHARDING, where)
    if ("points" in obj) == ("batch" in obj):
        raise bad_request(f"{where or 'body'}: expected either `points` or `batch`")
    points = (
        _points_list(obj["points"], _at(where, "points"))
        if "points" in obj
        else _points_batch(obj["batch"], _at(where, "batch"))
    )
    mode = obj.get("update_mode")
    return qe.UpdateOperation.upsert_points(
        points,
        condition=opt_filter(obj.get("update_filter"), _at(where, "update_filter")),
        update_mode=None if mode is None else _enum(mode, _at(where, "update_mode"), _UPDATE_MODES),
    )


def _points_list(value: JSON, where: str) -> list[qe.Point]:
    if type(value) is not list:
        raise bad_request(f"{where}: expected an array of points")
    points = []
    for i, p in enumerate(value):
        at = f"{where}[{i}]"
        if type(p) is not dict or not p.keys() <= _POINT_KEYS:
            check_keys(_obj(p, at), _POINT_KEYS, at)
        if "id" not in p or "vector" not in p:
            raise bad_request(f"{at}: `id` and `vector` are required")
        points.append(
            edge_call(
                qe.Point,
                point_id(p["id"], f"{at}.id"),
                point_vector(p["vector"], f"{at}.vector"),
                _payload(p.get("payload"), f"{at}.payload"),
            )
        )
    return points


def _points_batch(value: JSON, where: str) -> list[qe.Point]:
    obj = _obj(value, where)
    check_keys(obj, frozenset({"ids", "vectors", "payloads"}), where)
    ids = point_ids(obj.get("ids"), _at(where, "ids"))
    n = len(ids)
    vectors = obj.get("vectors")
    columns: list[Any]
    if type(vectors) is list:
        if len(vectors) != n:
            raise bad_request(f"{where}.vectors: expected {n} vectors, one per id")
        columns = [_vector(v, f"{where}.vectors[{i}]") for i, v in enumerate(vectors)]
    elif type(vectors) is dict:
        named: dict[str, list[Any]] = {}
        for name, column in vectors.items():
            if type(column) is not list or len(column) != n:
                raise bad_request(f"{where}.vectors.{name}: expected {n} vectors, one per id")
            named[name] = [_vector(v, f"{where}.vectors.{name}[{i}]") for i, v in enumerate(column)]
        columns = [{name: named[name][i] for name in named} for i in range(n)]
    else:
        raise bad_request(f"{where}.vectors: expected an array of vectors or an object of arrays")
    payloads = obj.get("payloads")
    if payloads is None:
        payloads = [None] * n
    elif type(payloads) is not list or len(payloads) != n:
        raise bad_request(f"{where}.payloads: expected {n} payloads, one per id")
    return [
        edge_call(qe.Point, ids[i], columns[i], _payload(payloads[i], f"{where}.payloads[{i}]"))
        for i in range(n)
    ]


def _selector(obj: dict[str, Any], where: str) -> list[PointId] | qe.Filter:
    """PointsSelector fields: the point ids, or the filter."""
    points = obj.get("points")
    filt = obj.get("filter")
    if points is not None and filt is not None:
        raise bad_request(f"{where or 'body'}: give either `points` or `filter`, not both")
    if points is not None:
        return point_ids(points, _at(where, "points"))
    if filt is not None:
        return filter_(filt, _at(where, "filter"))
    raise bad_request(f"{where or 'body'}: either `points` or `filter` is required")


def delete_points_operation(value: JSON, where: str = "") -> qe.UpdateOperation:
    obj = _obj(value, where)
    check_keys(obj, frozenset({"points", "filter", "shard_key"}), where)
    _reject_present(obj, _SHARDING, where)
    selected = _selector(obj, where)
    if isinstance(selected, qe.Filter):
        return qe.UpdateOperation.delete_points_by_filter(selected)
    return qe.UpdateOperation.delete_points(selected)


def set_payload_operation(value: JSON, *, overwrite: bool, where: str = "") -> qe.UpdateOperation:
    obj = _obj(value, where)
    check_keys(obj, frozenset({"payload", "points", "filter", "shard_key", "key"}), where)
    _reject_present(obj, _SHARDING, where)
    payload = _payload(obj.get("payload"), _at(where, "payload"))
    if payload is None:
        raise bad_request(f"{_at(where, 'payload')}: is required")
    key = obj.get("key")
    key = None if key is None else _str(key, _at(where, "key"))
    selected = _selector(obj, where)
    if isinstance(selected, qe.Filter):
        if overwrite:
            return qe.UpdateOperation.overwrite_payload_by_filter(selected, payload, key)
        return qe.UpdateOperation.set_payload_by_filter(selected, payload, key)
    if overwrite:
        return qe.UpdateOperation.overwrite_payload(selected, payload, key)
    return qe.UpdateOperation.set_payload(selected, payload, key)


def delete_payload_operation(value: JSON, where: str = "") -> qe.UpdateOperation:
    obj = _obj(value, where)
    check_keys(obj, frozenset({"keys", "points", "filter", "shard_key"}), where)
    _reject_present(obj, _SHARDING, where)
    keys = _str_list(obj.get("keys"), _at(where, "keys"))
    selected = _selector(obj, where)
    if isinstance(selected, qe.Filter):
        return qe.UpdateOperation.delete_payload_by_filter(selected, keys)
    return qe.UpdateOperation.delete_payload(selected, keys)


def clear_payload_operation(value: JSON, where: str = "") -> qe.UpdateOperation:
    obj = _obj(value, where)
    check_keys(obj, frozenset({"points", "filter", "shard_key"}), where)
    _reject_present(obj, _SHARDING, where)
    selected = _selector(obj, where)
    if isinstance(selected, qe.Filter):
        return qe.UpdateOperation.clear_payload_by_filter(selected)
    return qe.UpdateOperation.clear_payload(selected)


def update_vectors_operation(value: JSON, where: str = "") -> qe.UpdateOperation:
    obj = _obj(value, where)
    check_keys(obj, frozenset({"points", "shard_key", "update_filter"}), where)
    _reject_present(obj, _SHARDING, where)
    points = obj.get("points")
    if type(points) is not list:
        raise bad_request(f"{_at(where, 'points')}: expected an array of point vectors")
    converted = []
    for i, p in enumerate(points):
        at = f"{_at(where, 'points')}[{i}]"
        p = _obj(p, at)
        check_keys(p, frozenset({"id", "vector"}), at)
        converted.append(
            qe.PointVectors(
                point_id(p.get("id"), f"{at}.id"), point_vector(p.get("vector"), f"{at}.vector")
            )
        )
    return qe.UpdateOperation.update_vectors(
        converted, condition=opt_filter(obj.get("update_filter"), _at(where, "update_filter"))
    )


def delete_vectors_operation(value: JSON, where: str = "") -> qe.UpdateOperation:
    obj = _obj(value, where)
    check_keys(obj, frozenset({"points", "filter", "vector", "shard_key"}), where)
    _reject_present(obj, _SHARDING, where)
    names = _str_list(obj.get("vector"), _at(where, "vector"))
    selected = _selector(obj, where)
    if isinstance(selected, qe.Filter):
        return qe.UpdateOperation.delete_vectors_by_filter(selected, names)
    return qe.UpdateOperation.delete_vectors(selected, names)


_BATCH_OPERATIONS: dict[str, Callable[[JSON, str], qe.UpdateOperation]] = {
    "upsert": upsert_operation,
    "delete": delete_points_operation,
    "set_payload": lambda v, w: set_payload_operation(v, overwrite=False, where=w),
    "overwrite_payload": lambda v, w: set_payload_operation(v, overwrite=True, where=w),
    "delete_payload": delete_payload_operation,
    "clear_payload": clear_payload_operation,
    "update_vectors": update_vectors_operation,
    "delete_vectors": delete_vectors_operation,
}


def batch_operations(value: JSON) -> list[qe.UpdateOperation]:
    """UpdateOperations: {"operations": [{"upsert": ...}, {"delete": ...}, ...]}."""
    obj = _obj(value, "")
    check_keys(obj, frozenset({"operations"}), "")
    operations = obj.get("operations")
    if type(operations) is not list:
        raise bad_request("operations: expected an array of update operations")
    converted = []
    for i, op in enumerate(operations):
        at = f"operations[{i}]"
        op = _obj(op, at)
        if len(op) != 1 or next(iter(op)) not in _BATCH_OPERATIONS:
            raise bad_request(f"{at}: expected one of {', '.join(_BATCH_OPERATIONS)}")
        ((kind, body),) = op.items()
        converted.append(_BATCH_OPERATIONS[kind](body, f"{at}.{kind}"))
    return converted


# ============================================================================ payload indexes

_MEMORY = {"cold": qe.Memory.Cold, "cached": qe.Memory.Cached, "pinned": qe.Memory.Pinned}
SCHEMA_TYPES = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "integer": qe.PayloadSchemaType.Integer,
    "float": qe.PayloadSchemaType.Float,
    "geo": qe.PayloadSchemaType.Geo,
    "text": qe.PayloadSchemaType.Text,
    "bool": qe.PayloadSchemaType.Bool,
    "datetime": qe.PayloadSchemaType.Datetime,
    "uuid": qe.PayloadSchemaType.Uuid,
}
_COMMON_INDEX = ("on_disk", "enable_hnsw", "nested")
_INDEX_FIELDS: dict[str, tuple[str, ...]] = {
    "keyword": ("is_tenant", "prefix", *_COMMON_INDEX),
    "integer": ("lookup", "range", "is_principal", *_COMMON_INDEX),
    "float": ("is_principal", *_COMMON_INDEX),
    "geo": _COMMON_INDEX,
    "bool": _COMMON_INDEX,
    "datetime": ("is_principal", *_COMMON_INDEX),
    "uuid": ("is_tenant", *_COMMON_INDEX),
    "text": ("tokenizer", "min_token_len", "max_token_len", "lowercase", "ascii_folding",
             "phrase_matching", "stopwords", "stemmer", "scoring", *_COMMON_INDEX),
}  # fmt: skip
_INDEX_PARAMS: dict[str, Callable[..., Any]] = {
    "keyword": qe.KeywordIndexParams,
    "integer": qe.IntegerIndexParams,
    "float": qe.FloatIndexParams,
    "geo": qe.GeoIndexParams,
    "bool": qe.BoolIndexParams,
    "datetime": qe.DatetimeIndexParams,
    "uuid": qe.UuidIndexParams,
    "text": qe.TextIndexParams,
}
_TOKENIZERS = {
    "prefix": qe.TokenizerType.Prefix,
    "whitespace": qe.TokenizerType.Whitespace,
    "word": qe.TokenizerType.Word,
    "multilingual": qe.TokenizerType.Multilingual,
    "code": qe.TokenizerType.Code,
}


def create_index_request(value: JSON) -> tuple[str, Any, JSON]:
    """CreateFieldIndex -> (field name, Edge schema, the schema as given, for GET)."""
    obj = _obj(value, "")
    check_keys(obj, frozenset({"field_name", "field_schema"}), "")
    field = _str(obj.get("field_name"), "field_name")
    schema = obj.get("field_schema")
    if schema is None:
        raise bad_request("field_schema: is required (the local host does not infer index types)")
    if type(schema) is str:
        return field, _enum(schema, "field_schema", SCHEMA_TYPES), schema
    params = _obj(schema, "field_schema")
    kind = _enum(params.get("type"), "field_schema.type", {k: k for k in SCHEMA_TYPES})
    allowed = _INDEX_FIELDS[kind]
    check_keys(params, frozenset({"type", "memory", *allowed}), "field_schema")
    kwargs: dict[str, Any] = {}
    for key in allowed:
        v = params.get(key)
        if v is None:
            continue
        at = f"field_schema.{key}"
        if key == "nested":
            kwargs[key] = _str(v, at)
        elif key in ("min_token_len", "max_token_len"):
            kwargs[key] = _int(v, at)
        elif key == "tokenizer":
            kwargs[key] = _enum(v, at, _TOKENIZERS)
        elif key == "stopwords":
            kwargs[key] = _stopwords(v, at)
        elif key == "stemmer":
            kwargs[key] = _stemmer(v, at)
        elif key == "scoring":
            kwargs[key] = _text_scoring(v, at)
        else:
            kwargs[key] = _bool(v, at, False)
    if params.get("memory") is not None:
        kwargs["memory"] = _enum(params["memory"], "field_schema.memory", _MEMORY)
    return field, edge_call(_INDEX_PARAMS[kind], **kwargs), schema


def _language(value: JSON, where: str, enum: Any) -> Any:
    name = _str(value, where)
    member = getattr(enum, name.capitalize(), None) if name.isalpha() else None
    if member is None:
        raise bad_request(f"{where}: unknown language {name!r}")
    return member


def _stopwords(value: JSON, where: str) -> Any:
    if type(value) is str:
        return _language(value, where, qe.Language)
    obj = _obj(value, where)
    check_keys(obj, frozenset({"languages", "custom"}), where)
    languages = obj.get("languages")
    custom = obj.get("custom")
    return qe.StopwordsSet(
        languages=None
        if languages is None
        else {_language(x, f"{where}.languages", qe.Language) for x in languages},
        custom=None if custom is None else set(_str_list(custom, f"{where}.custom")),
    )


def _stemmer(value: JSON, where: str) -> Any:
    obj = _obj(value, where)
    kind = obj.get("type")
    if kind == "none":
        check_keys(obj, frozenset({"type"}), where)
        return qe.DisabledStemmer()
    if kind == "snowball":
        check_keys(obj, frozenset({"type", "language"}), where)
        return qe.SnowballParams(
            _language(obj.get("language"), f"{where}.language", qe.SnowballLanguage)
        )
    raise bad_request(f"{where}.type: expected 'snowball' or 'none'")


def _text_scoring(value: JSON, where: str) -> Any:
    if type(value) is bool:
        return value
    obj = _obj(value, where)
    check_keys(obj, frozenset({"type"}), where)
    _enum(obj.get("type"), f"{where}.type", {"bm25": None})
    return qe.TextScoringParams(qe.TextScoringType.Bm25)


# ============================================================================ collections

_DISTANCES = {
    "Cosine": qe.Distance.Cosine,
    "Euclid": qe.Distance.Euclid,
    "Dot": qe.Distance.Dot,
    "Manhattan": qe.Distance.Manhattan,
}
_DATATYPES = {
    "float32": qe.VectorStorageDatatype.Float32,
    "float16": qe.VectorStorageDatatype.Float16,
    "uint8": qe.VectorStorageDatatype.Uint8,
    "turbo8": qe.VectorStorageDatatype.Turbo8,
    "turbo16": qe.VectorStorageDatatype.Turbo16,
}
_HNSW_KEYS = frozenset(
    {"m", "ef_construct", "full_scan_threshold", "max_indexing_threads", "on_disk",
     "payload_m", "inline_storage", "memory"}
)  # fmt: skip
_VECTOR_KEYS = frozenset(
    {"size", "distance", "hnsw_config", "quantization_config", "on_disk", "memory", "datatype",
     "multivector_config"}
)  # fmt: skip
_CREATE_KEYS = frozenset(
    {"vectors", "shard_number", "sharding_method", "replication_factor",
     "write_consistency_factor", "on_disk_payload", "hnsw_config", "wal_config",
     "optimizers_config", "quantization_config", "sparse_vectors", "strict_mode_config",
     "metadata", "init_from"}
)  # fmt: skip
_OPTIMIZER_KEYS = frozenset(DEFAULT_OPTIMIZERS) | {"prevent_unoptimized"}
_EDGE_OPTIMIZER_KEYS = (
    "deleted_threshold",
    "vacuum_min_vector_number",
    "default_segment_number",
    "max_segment_size",
    "indexing_threshold",
    "prevent_unoptimized",
)


class CollectionSettings:
    """What PUT /collections/{name} asked for: the Edge config to create the shard with, the
    JSON that GET /collections/{name} reports, and the knobs the host itself honours."""

    def __init__(self, edge: qe.EdgeConfig, config: dict[str, Any]) -> None:
        self.edge = edge
        self.config = config


def _hnsw_diff(value: JSON, where: str) -> dict[str, Any]:
    obj = _obj(value, where)
    check_keys(obj, _HNSW_KEYS, where)
    out: dict[str, Any] = {}
    for key, v in obj.items():
        if v is None:
            continue
        at = _at(where, key)
        if key in ("on_disk", "inline_storage"):
            out[key] = _bool(v, at, False)
        elif key == "memory":
            out[key] = _enum(v, at, {k: k for k in _MEMORY})
        else:
            out[key] = _int(v, at, minimum=4 if key == "ef_construct" else 0)
    return out


def _edge_hnsw(config: Mapping[str, Any]) -> qe.HnswIndexConfig:
    memory = config.get("memory")
    return qe.HnswIndexConfig(
        m=config["m"],
        ef_construct=config["ef_construct"],
        full_scan_threshold=config["full_scan_threshold"],
        max_indexing_threads=config.get("max_indexing_threads") or 0,
        on_disk=config.get("on_disk"),
        payload_m=config.get("payload_m"),
        inline_storage=config.get("inline_storage"),
        memory=None if memory is None else _MEMORY[memory],
    )


_RATIOS = ("x4", "x8", "x16", "x32", "x64")


def _quantization(value: JSON, where: str) -> Any:
    obj = _obj(value, where)
    if len(obj) != 1:
        raise bad_request(f"{where}: expected one of scalar, product, binary")
    ((kind, arg),) = obj.items()
    at = _at(where, kind)
    params = _obj(arg, at)
    memory = params.get("memory")
    memory = None if memory is None else _enum(memory, _at(at, "memory"), _MEMORY)
    always_ram = _opt_bool(params.get("always_ram"), _at(at, "always_ram"))
    if kind == "scalar":
        check_keys(params, frozenset({"type", "quantile", "always_ram", "memory"}), at)
        _enum(params.get("type"), _at(at, "type"), {"int8": None})
        return qe.ScalarQuantizationConfig(
            qe.ScalarType.Int8,
            quantile=_opt_float(params.get("quantile"), _at(at, "quantile")),
            always_ram=always_ram,
            memory=memory,
        )
    if kind == "product":
        check_keys(params, frozenset({"compression", "always_ram", "memory"}), at)
        ratios = {r: getattr(qe.CompressionRatio, r.upper()) for r in _RATIOS}
        return qe.ProductQuantizationConfig(
            _enum(params.get("compression"), _at(at, "compression"), ratios),
            always_ram=always_ram,
            memory=memory,
        )
    if kind == "binary":
        check_keys(params, frozenset({"always_ram", "memory", "encoding", "query_encoding"}), at)
        encodings = {
            "one_bit": qe.BinaryQuantizationEncoding.OneBit,
            "two_bits": qe.BinaryQuantizationEncoding.TwoBits,
            "one_and_half_bits": qe.BinaryQuantizationEncoding.OneAndHalfBits,
        }
        query_encodings = {
            "default": qe.BinaryQuantizationQueryEncoding.Default,
            "binary": qe.BinaryQuantizationQueryEncoding.Binary,
            "scalar4bits": qe.BinaryQuantizationQueryEncoding.Scalar4Bits,
            "scalar8bits": qe.BinaryQuantizationQueryEncoding.Scalar8Bits,
        }
        encoding = params.get("encoding")
        query_encoding = params.get("query_encoding")
        return qe.BinaryQuantizationConfig(
            always_ram=always_ram,
            encoding=None if encoding is None else _enum(encoding, _at(at, "encoding"), encodings),
            query_encoding=None
            if query_encoding is None
            else _enum(query_encoding, _at(at, "query_encoding"), query_encodings),
            memory=memory,
        )
    if kind == "turbo":
        raise unsupported(f"TurboQuant quantization (`{where}`)")
    raise bad_request(f"{where}: unknown quantization `{kind}`")


def _vector_params(
    value: JSON, where: str, hnsw: Mapping[str, Any]
) -> tuple[qe.EdgeVectorParams, dict[str, Any]]:
    obj = _obj(value, where)
    check_keys(obj, _VECTOR_KEYS, where)
    out: dict[str, Any] = {
        "size": _int(obj.get("size"), _at(where, "size"), minimum=1, maximum=65536),
        "distance": _enum(obj.get("distance"), _at(where, "distance"), {k: k for k in _DISTANCES}),
    }
    kwargs: dict[str, Any] = {}
    if obj.get("hnsw_config") is not None:
        out["hnsw_config"] = _hnsw_diff(obj["hnsw_config"], _at(where, "hnsw_config"))
        kwargs["hnsw_config"] = _edge_hnsw({**hnsw, **out["hnsw_config"]})
    if obj.get("quantization_config") is not None:
        kwargs["quantization_config"] = _quantization(
            obj["quantization_config"], _at(where, "quantization_config")
        )
        out["quantization_config"] = obj["quantization_config"]
    if obj.get("on_disk") is not None:
        out["on_disk"] = kwargs["on_disk"] = _bool(obj["on_disk"], _at(where, "on_disk"), False)
    if obj.get("memory") is not None:
        out["memory"] = obj["memory"]
        kwargs["memory"] = _enum(obj["memory"], _at(where, "memory"), _MEMORY)
    if obj.get("datatype") is not None:
        out["datatype"] = obj["datatype"]
        kwargs["datatype"] = _enum(obj["datatype"], _at(where, "datatype"), _DATATYPES)
    if obj.get("multivector_config") is not None:
        mv = _obj(obj["multivector_config"], _at(where, "multivector_config"))
        check_keys(mv, frozenset({"comparator"}), _at(where, "multivector_config"))
        _enum(mv.get("comparator"), _at(where, "multivector_config.comparator"), {"max_sim": 0})
        out["multivector_config"] = {"comparator": "max_sim"}
        kwargs["multivector_config"] = qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim)
    params = qe.EdgeVectorParams(out["size"], _DISTANCES[out["distance"]], **kwargs)
    return params, out


def _sparse_params(value: JSON, where: str) -> tuple[qe.EdgeSparseVectorParams, dict[str, Any]]:
    obj = _obj(value, where)
    check_keys(obj, frozenset({"index", "modifier"}), where)
    out: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    if obj.get("modifier") is not None:
        modifier = _enum(obj["modifier"], _at(where, "modifier"), {"none": None, "idf": "idf"})
        out["modifier"] = obj["modifier"]
        if modifier == "idf":
            kwargs["modifier"] = qe.Modifier.Idf
    if obj.get("index") is not None:
        index = _obj(obj["index"], _at(where, "index"))
        check_keys(
            index,
            frozenset({"full_scan_threshold", "on_disk", "memory", "datatype"}),
            _at(where, "index"),
        )
        out["index"] = {k: v for k, v in index.items() if v is not None}
        at = _at(where, "index")
        if index.get("full_scan_threshold") is not None:
            kwargs["full_scan_threshold"] = _int(index["full_scan_threshold"], at)
        if index.get("on_disk") is not None:
            kwargs["on_disk"] = _bool(index["on_disk"], _at(at, "on_disk"), False)
        if index.get("memory") is not None:
            kwargs["memory"] = _enum(index["memory"], _at(at, "memory"), _MEMORY)
        if index.get("datatype") is not None:
            kwargs["datatype"] = _enum(index["datatype"], _at(at, "datatype"), _DATATYPES)
    return qe.EdgeSparseVectorParams(**kwargs), out


def collection_settings(value: JSON) -> CollectionSettings:
    """CreateCollection -> Edge config + the CollectionConfig JSON to report.

    Accepted and ignored (harmless on one node): `wal_config` (Edge sizes its own WAL),
    `shard_number` (one Edge shard per collection, reported as 1), `optimizers_config`
    fields `memmap_threshold` (deprecated) and `max_optimization_threads` other than 0.
    Refused: replication and write consistency above 1, custom sharding, strict mode, init_from.
    """
    obj = _obj(value if value is not None else {}, "")
    check_keys(obj, _CREATE_KEYS, "")
    _reject_present(
        obj,
        {
            "init_from": "copying another collection",
            "strict_mode_config": "strict mode",
        },
        "",
    )
    _int(obj.get("shard_number", 1) or 1, "shard_number", minimum=1)
    for key in ("replication_factor", "write_consistency_factor"):
        if _int(obj.get(key) or 1, key, minimum=1) != 1:
            raise unsupported(f"`{key}` above 1 (the local host is one node without replicas)")
    if obj.get("sharding_method") not in (None, "auto"):
        raise unsupported("custom sharding (`sharding_method`)")

    hnsw = dict(DEFAULT_HNSW)
    if obj.get("hnsw_config") is not None:
        hnsw.update(_hnsw_diff(obj["hnsw_config"], "hnsw_config"))

    vectors = obj.get("vectors")
    edge_vectors: Any = None
    vectors_out: Any = {}
    if vectors is not None:
        vectors = _obj(vectors, "vectors")
        if type(vectors.get("size")) is int:  # one unnamed vector
            edge_vectors, vectors_out = _vector_params(vectors, "vectors", hnsw)
        else:
            edge_vectors, vectors_out = {}, {}
            for name, params in vectors.items():
                edge_vectors[name], vectors_out[name] = _vector_params(
                    params, f"vectors.{name}", hnsw
                )

    sparse_in = obj.get("sparse_vectors")
    edge_sparse: dict[str, qe.EdgeSparseVectorParams] = {}
    sparse_out: dict[str, Any] = {}
    if sparse_in is not None:
        for name, params in _obj(sparse_in, "sparse_vectors").items():
            edge_sparse[name], sparse_out[name] = _sparse_params(params, f"sparse_vectors.{name}")
    if not edge_vectors and not edge_sparse:
        raise bad_request("a collection needs at least one dense or sparse vector")

    optimizers = dict(DEFAULT_OPTIMIZERS)
    edge_optimizers: qe.EdgeOptimizersConfig | None = None
    if obj.get("optimizers_config") is not None:
        given = _obj(obj["optimizers_config"], "optimizers_config")
        check_keys(given, _OPTIMIZER_KEYS, "optimizers_config")
        for key, v in given.items():
            if v is None:
                continue
            at = f"optimizers_config.{key}"
            if key == "deleted_threshold":
                optimizers[key] = _float(v, at)
            elif key == "prevent_unoptimized":
                optimizers[key] = _bool(v, at, False)
            elif key == "max_optimization_threads" and v == "auto":
                optimizers[key] = None
            else:
                optimizers[key] = _int(v, at, minimum=1 if key == "flush_interval_sec" else 0)
        edge_kwargs = {k: given[k] for k in _EDGE_OPTIMIZER_KEYS if given.get(k) is not None}
        if edge_kwargs:
            edge_optimizers = qe.EdgeOptimizersConfig(**edge_kwargs)

    quantization = obj.get("quantization_config")
    edge_quantization = None
    if quantization is not None:
        edge_quantization = _quantization(quantization, "quantization_config")
    on_disk_payload = _bool(obj.get("on_disk_payload"), "on_disk_payload", True)
    metadata = obj.get("metadata")
    if metadata is not None:
        _obj(metadata, "metadata")

    edge = edge_call(
        qe.EdgeConfig,
        vectors=edge_vectors or None,
        sparse_vectors=edge_sparse or None,
        on_disk_payload=on_disk_payload,
        hnsw_config=_edge_hnsw(hnsw),
        quantization_config=edge_quantization,
        optimizers=edge_optimizers,
    )
    collection_params: dict[str, Any] = {
        "vectors": vectors_out,
        "shard_number": 1,
        "replication_factor": 1,
        "write_consistency_factor": 1,
        "on_disk_payload": on_disk_payload,
    }
    if sparse_out:
        collection_params["sparse_vectors"] = sparse_out
    config: dict[str, Any] = {
        "params": collection_params,
        "hnsw_config": hnsw,
        "optimizer_config": optimizers,
        "quantization_config": quantization,
    }
    if metadata is not None:
        config["metadata"] = metadata
    return CollectionSettings(edge, config)


# ============================================================================ Edge -> JSON


def json_default(value: Any) -> Any:
    """orjson `default`: the Edge objects that can appear inside results."""
    if isinstance(value, qe.SparseVector):
        return {"indices": value.indices, "values": value.values}
    raise TypeError(f"cannot serialise {type(value).__name__}")


def scored_points(points: list[qe.ScoredPoint], with_vector: bool) -> list[dict[str, Any]]:
    out = []
    for p in points:
        item: dict[str, Any] = {"id": p.id, "version": p.version, "score": p.score}
        payload = p.payload
        if payload is not None:
            item["payload"] = payload
        if with_vector:
            vector = p.vector
            if vector is not None:
                item["vector"] = vector
        order_value = p.order_value
        if order_value is not None:
            item["order_value"] = order_value
        out.append(item)
    return out


def records(points: list[qe.Record]) -> list[dict[str, Any]]:
    out = []
    for p in points:
        item: dict[str, Any] = {"id": p.id}
        payload = p.payload
        if payload is not None:
            item["payload"] = payload
        vector = p.vector
        if vector is not None:
            item["vector"] = vector
        order_value = p.order_value
        if order_value is not None:
            item["order_value"] = order_value
        out.append(item)
    return out


def schema_type_name(value: qe.PayloadSchemaType) -> str:
    for name, member in SCHEMA_TYPES.items():
        if member == value:
            return name
    return str(value).rsplit(".", 1)[-1].lower()
