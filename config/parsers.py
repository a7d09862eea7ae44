"""A JSON parser that turns every malformed body into a 400, never a 500."""

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON nested too deeply.") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:  # pragma: no cover - DRF wraps most
            raise ParseError(f"Malformed JSON: {exc}") from exc
        try:
            # JSON may escape a lone surrogate ("\ud800"), which no UTF-8 text
            # (and so no database column) can hold: refuse it here, in keys too.
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            raise ParseError("JSON contains invalid Unicode (a lone surrogate).") from exc
        return data
