"""Serializer bases shared by every app's API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StrictInputSerializer(serializers.Serializer[Any]):
    """An input serializer that refuses unknown fields (a typo must not pass silently)."""

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
        return super().to_internal_value(data)


class ErrorBodySerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="Stable machine-readable code (see docs/ERRORS.md).")
    message = serializers.CharField(help_text="Human-readable explanation.")
    details = serializers.DictField(help_text="Structured context, e.g. per-field errors.")


class ErrorSerializer(serializers.Serializer[Any]):
    error = ErrorBodySerializer()
