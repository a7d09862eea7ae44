"""The API's one JSON parser: strict, and every malformed body a 4xx with its own code, never a 500.

What it refuses, before any view sees the body:

* a charset other than UTF-8 (`415 unsupported_charset`) and bytes that are
  not UTF-8 (`400 invalid_encoding`);
* nesting deeper than `MAX_JSON_DEPTH` (`400 nesting_too_deep`), measured by
  an iterative scan of the text *before* `json.loads` recurses into it, so
  no depth check anywhere can hit Python's recursion limit;
* duplicate keys in an object (`400 duplicate_key`, `param` the key):
  last-wins would let a proxy and the API read two different requests;
* numbers that do not fit a float (`1e999`, `-1e999`: `400
  number_out_of_range`): PostgreSQL's JSONB refuses infinities, which was a
  500; the non-standard `NaN` / `Infinity` literals are not JSON (`400 parse_error`);
* lone surrogates (`"\\ud800"`), which no UTF-8 column can hold (`400 parse_error`);
* anything else that is not JSON (`400 parse_error`).

A non-JSON content type is DRF's `415 unsupported_media_type`.
"""

from __future__ import annotations

import codecs
import json
import math
import re

from rest_framework.parsers import JSONParser

from config.errors import RequestRejected

# Deeper than anything the API accepts (metadata: CREDITLEDGER_MAX_METADATA_DEPTH),
# far below Python's recursion limit.
MAX_JSON_DEPTH = 32

# A JSON string literal (escapes included; unrolled, and an unterminated one runs
# to the end, so the scan stays linear); brackets inside strings do not nest.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether any bracket in `text` opens deeper than `limit` levels; iterative, no recursion."""
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


class _NumberOutOfRange(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NumberOutOfRange(text)
    return value


def _refuse_constant(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


_UTF8 = codecs.lookup("utf-8").name


def _is_utf8(charset: str) -> bool:
    try:
        return codecs.lookup(charset).name == _UTF8
    except LookupError:
        return False


def json_strict_loads(text: str):
    """`json.loads` with the refusals above (for callers that already hold text)."""
    if json_depth_exceeds(text, MAX_JSON_DEPTH):
        raise RequestRejected("nesting_too_deep", f"JSON may be nested at most {MAX_JSON_DEPTH} levels deep.")
    try:
        data = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_float=_finite_float,
            parse_constant=_refuse_constant,
        )
    except _DuplicateKey as exc:
        raise RequestRejected(
            "duplicate_key", f"The key {exc.key!r} appears more than once in an object.", param=exc.key
        ) from exc
    except _NumberOutOfRange as exc:
        raise RequestRejected(
            "number_out_of_range", f"{exc} is not a finite number a JSON document may carry."
        ) from exc
    except RecursionError as exc:  # pragma: no cover - the depth scan comes first
        raise RequestRejected("nesting_too_deep", "JSON nested too deeply.") from exc
    except ValueError as exc:  # JSONDecodeError, and integers past Python's digit limit
        raise RequestRejected("parse_error", f"Malformed JSON: {exc}") from exc
    try:
        # JSON may escape a lone surrogate ("\ud800"), which no UTF-8 text
        # (and so no database column) can hold: refuse it here, in keys too.
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        raise RequestRejected("parse_error", "JSON contains invalid Unicode (a lone surrogate).") from exc
    return data


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        charset = _charset_of(media_type or "")
        if charset is not None and not _is_utf8(charset):
            raise RequestRejected(
                "unsupported_charset", f"Request bodies must be UTF-8 JSON, not charset={charset}.", status=415
            )
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestRejected("invalid_encoding", "The request body is not valid UTF-8.") from exc
        return json_strict_loads(text)


def _charset_of(media_type: str) -> str | None:
    for param in media_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"')
    return None
