"""Request parsers."""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """JSON bodies, parsed by orjson — the gateway's parser, so both APIs read the same JSON:
    NaN, Infinity and lone surrogates (`"\\ud800"`, which no UTF-8 text can hold and PostgreSQL
    refuses) are `400 malformed_json`, as is any body nested too deeply; integers beyond 64 bits
    are read as doubles."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        if not raw:
            raise exceptions.ParseError("JSON parse error - the body is empty.")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from exc
