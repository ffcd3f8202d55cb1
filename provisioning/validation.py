"""The input rules the index and cluster services (and the APIs' schemas) share: names, tags,
cloud and region labels. Each check raises the `ApplicationError` its docstring names."""

from __future__ import annotations

import re

from django.conf import settings

from controlplane.errors import ApplicationError
from vectorplane.contract import locations, names


def check_name(name: str, what: str) -> None:
    """Index and cluster names: 1-45 lowercase letters, digits and inner hyphens (DNS-safe,
    so they fit host names and Kubernetes labels). Raises `invalid_<what>_name`."""
    if not names.is_name(name):
        raise ApplicationError(
            f"invalid_{what}_name",
            f"A {what} name is 1-45 lowercase letters, digits and inner hyphens.",
            details={"name": name},
        )


MAX_TAGS = 20
MAX_TAG_KEY_LENGTH = 80
MAX_TAG_VALUE_LENGTH = 120
TAG_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"
_TAG_KEY = re.compile(r"[A-Za-z0-9_-]{1,80}")


def check_tags(tags: object, *, allow_empty_values: bool) -> dict[str, str]:
    """An index's tags (Pinecone's rules): at most 20, keys 1-80 letters, digits, `_` and
    `-`, values strings of at most 120 characters without NUL (`""` removes a tag when
    configuring). Raises `validation_error` naming the offending tag."""
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise ApplicationError(
            "validation_error", "tags map strings to strings.", details={"field": "tags"}
        )
    if len(tags) > MAX_TAGS:
        raise ApplicationError(
            "validation_error", f"An index has at most {MAX_TAGS} tags.",
            details={"field": "tags", "max": MAX_TAGS},
        )  # fmt: skip
    for key, value in tags.items():
        if not isinstance(key, str) or not _TAG_KEY.fullmatch(key):
            raise ApplicationError(
                "validation_error",
                f"A tag key is 1-{MAX_TAG_KEY_LENGTH} letters, digits, '_' and '-'.",
                details={"field": "tags", "key": key if isinstance(key, str) else None},
            )
        if "\x00" in value or len(value) > MAX_TAG_VALUE_LENGTH or not (
            value or allow_empty_values
        ):
            raise ApplicationError(
                "validation_error",
                f"A tag value is 1-{MAX_TAG_VALUE_LENGTH} characters without NUL.",
                details={"field": "tags", "key": key},
            )
    return dict(tags)


def check_location(cloud: object, region: object) -> tuple[str, str]:
    """The index's cloud and region labels, the operator's defaults for those not given
    (None). Raises `validation_error` naming the field."""
    cloud = settings.VECTORPLANE_DEFAULT_CLOUD if cloud is None else cloud
    region = settings.VECTORPLANE_DEFAULT_REGION if region is None else region
    error = locations.cloud_error(cloud)
    if error or not isinstance(cloud, str):
        raise ApplicationError("validation_error", str(error), details={"field": "cloud"})
    error = locations.region_error(region)
    if error or not isinstance(region, str):
        raise ApplicationError("validation_error", str(error), details={"field": "region"})
    return cloud, region
