"""Serializer bases shared by every app's API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


def _type_error(
    field: serializers.Field[Any, Any, Any, Any], value: Any
) -> tuple[str, str] | None:
    """What is wrong with the JSON type of `value` for `field` (a message and DRF's code for
    it), or None. DRF coerces (`0` becomes `"0"`, `"5"` becomes 5, `"yes"` becomes True); the
    schema promises types, so an input body must send them."""
    if value is None:
        return None  # DRF's own allow_null / required checks answer for null
    if isinstance(field, serializers.BooleanField):
        ok = isinstance(value, bool)
        return None if ok else ("Must be a boolean (true or false).", "invalid")
    if isinstance(field, serializers.IntegerField):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else ("Must be an integer.", "invalid")
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else ("Must be a number.", "invalid")
    if isinstance(field, serializers.ChoiceField):
        if all(isinstance(c, str) for c in field.choices) and not isinstance(value, str):
            return ("Must be a string.", "invalid")
        return None
    if isinstance(
        field,
        serializers.CharField | serializers.UUIDField | serializers.DateTimeField
        | serializers.DateField | serializers.TimeField | serializers.DurationField,
    ):
        return None if isinstance(value, str) else ("Must be a string.", "invalid")
    if isinstance(field, serializers.ListField):
        if not isinstance(value, list):
            return ("Must be a list.", "not_a_list")
        for item in value:
            problem = _type_error(field.child, item)
            if problem is not None:
                return (f"Each item: {problem[0][0].lower()}{problem[0][1:]}", problem[1])
        return None
    if isinstance(field, serializers.DictField):
        if not isinstance(value, dict):
            return ("Must be an object.", "not_a_dict")
        for item in value.values():
            problem = _type_error(field.child, item)
            if problem is not None:
                return (f"Each value: {problem[0][0].lower()}{problem[0][1:]}", problem[1])
        return None
    return None


class StrictInputSerializer(serializers.Serializer[Any]):
    """Unknown fields are refused, and every value must have its field's JSON type."""

    # The docstring above is each input's description in the OpenAPI schema. An input
    # serializer of a JSON body: a typo must not pass silently, and nothing is coerced.
    # Nested serializers that are strict check their own fields.

    # Query-string serializers (every value a string) set this to False.
    strict_types = True

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        "non_field_errors": [
                            serializers.ErrorDetail(
                                f"Unknown field {name!r}.", code="unknown_field"
                            )
                            for name in unknown
                        ]
                    }
                )
            if self.strict_types:
                problems = {
                    name: [serializers.ErrorDetail(problem[0], code=problem[1])]
                    for name, value in data.items()
                    if (problem := _type_error(self.fields[name], value)) is not None
                }
                if problems:
                    raise serializers.ValidationError(problems)
        return super().to_internal_value(data)


class QueryInputSerializer(StrictInputSerializer):
    """Query parameters: unknown ones refused, values parsed from strings by the fields."""

    strict_types = False


class ErrorBodySerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="Stable machine-readable code (see docs/ERRORS.md).")
    message = serializers.CharField(help_text="Human-readable explanation.")
    details = serializers.DictField(help_text="Structured context, e.g. per-field errors.")


class ErrorSerializer(serializers.Serializer[Any]):
    error = ErrorBodySerializer()
