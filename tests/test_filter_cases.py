"""The console's filter editor checks filters in the browser (frontend/src/lib/filterLanguage.ts);
the server's parser is the authority. Both run the same cases (frontend/src/lib/filterCases.json,
also run by Vitest), so a rule changed on one side and not the other fails here or there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vectorplane.contract import filters

CASES = json.loads(
    (Path(__file__).resolve().parents[1] / "frontend/src/lib/filterCases.json").read_text()
)["cases"]


@pytest.mark.parametrize("case", CASES, ids=[json.dumps(c["filter"])[:60] for c in CASES])
def test_the_server_says_what_the_console_says(case: dict[str, Any]) -> None:
    if case["ok"]:
        filters.parse(case["filter"])
        return
    with pytest.raises(filters.FilterError) as raised:
        filters.parse(case["filter"])
    assert str(raised.value) == case["error"]
