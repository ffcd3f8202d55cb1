"""Where an index says it lives: the `cloud` and `region` labels of Pinecone's API.

Vectorplane runs where its operator runs it, so these are labels, not placement: an index keeps
the `cloud` and `region` it was created with (`ServerlessSpec(cloud=..., region=...)`, the
2026-07 `deployment`, or our API's `cloud`/`region`) and answers them back. They exist because
Pinecone's clients 5.x-7.x check `spec.serverless.cloud` against `aws | gcp | azure` when they
read an index, so any other value breaks every control-plane call of those clients
(docs/pinecone-compat.md, "Cloud and region").

The rules live here, without Django, so that the settings (which check the operator's
defaults at start), the model's check constraints, the services and both APIs agree.
"""

from __future__ import annotations

import re

# What every supported client accepts (pinecone 5.x-7.x: an enum on ServerlessSpec.cloud).
CLOUDS = ("aws", "gcp", "azure")
# A region is a DNS-label-like name, as Pinecone's are (`us-east-1`, `eastus2`,
# `europe-west4`): 1-63 lowercase letters, digits and inner hyphens. The clients take any
# string; the rule keeps NUL, spaces and control characters out and the label short.
REGION_MAX_LENGTH = 63
REGION_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
REGION_RE = re.compile(REGION_PATTERN)
# Pinecone's own default for a serverless index (and the 2026-07 API's for a body without a
# `deployment`); operators may set theirs (VECTORPLANE_DEFAULT_CLOUD / _REGION).
DEFAULT_CLOUD = "aws"
DEFAULT_REGION = "us-east-1"


def cloud_error(cloud: object) -> str | None:
    """Why `cloud` is not a valid cloud label, or None."""
    if not isinstance(cloud, str) or cloud not in CLOUDS:
        return f"cloud is one of {', '.join(CLOUDS)}."
    return None


def region_error(region: object) -> str | None:
    """Why `region` is not a valid region label, or None."""
    # fullmatch: `$` alone would accept a trailing newline.
    if not isinstance(region, str) or not REGION_RE.fullmatch(region):
        return (
            f"region is 1-{REGION_MAX_LENGTH} lowercase letters, digits and inner hyphens "
            "(e.g. us-east-1)."
        )
    return None
