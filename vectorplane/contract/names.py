"""Name rules every part agrees on (control plane, gateway, infra): one home, imported.

Index and cluster names are 1-45 lowercase letters, digits and inner hyphens: DNS-safe, so
they fit host names (`{index}-{tenant}.{domain}`) and Kubernetes labels.
"""

from __future__ import annotations

import re
from typing import Final

MAX_NAME_LENGTH: Final = 45
NAME_PATTERN: Final = r"^[a-z0-9](?:[a-z0-9-]{0,43}[a-z0-9])?$"
"""The rule as a regular expression (for DRF's RegexField and the OpenAPI schema)."""
_NAME: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,43}[a-z0-9])?")


def is_name(value: object) -> bool:
    """Whether `value` is a valid index or cluster name (a whole-string match: no trailing
    newline, no NUL, nothing longer than MAX_NAME_LENGTH)."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


MAX_SLUG_LENGTH: Final = 40
SLUG_PATTERN: Final = r"^[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])$"
"""A tenant slug: 3-40 lowercase letters, digits and inner hyphens (it is part of host names)."""
_SLUG: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])")


def is_slug(value: object) -> bool:
    return isinstance(value, str) and _SLUG.fullmatch(value) is not None
