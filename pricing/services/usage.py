"""Usage: what a priced call used, in the four counts the catalogue prices.

`usage_parse` is the only place that turns input into a `Usage`: the API's
`UsageField` (quotes, priced charges, holds) and the hold services call it.
It reports every problem at once, each with the count it concerns and a
stable code, so the API can answer with one error per field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings

from pricing.exceptions import InvalidUsage, UsageProblem

USAGE_FIELDS = ("input_tokens", "output_tokens", "units", "requests")

_ONLY_THESE = f"usage may only have the fields {', '.join(USAGE_FIELDS)}."


@dataclass(frozen=True)
class Usage:
    """What was used: token counts, units (images, seconds, pages) and requests."""

    input_tokens: int = 0
    output_tokens: int = 0
    units: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        problems = _count_problems(self.as_dict())
        if problems:
            raise _invalid(problems)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def is_zero(self) -> bool:
        return not any(self.as_dict().values())


def usage_limits() -> dict[str, int]:
    return {
        "input_tokens": settings.PRICING_MAX_TOKENS,
        "output_tokens": settings.PRICING_MAX_TOKENS,
        "units": settings.PRICING_MAX_UNITS,
        "requests": settings.PRICING_MAX_REQUESTS,
    }


def usage_parse(data: Any) -> Usage:
    """`data`, a JSON object of counts (a missing count is 0), as a Usage; or raise InvalidUsage.

    Each count is a non-negative integer (never a bool or a float) within
    `usage_limits()`; other names are refused. A `Usage` is returned as is.
    """
    if isinstance(data, Usage):
        return data
    if not isinstance(data, dict):
        message = "Usage must be a JSON object of counts: input_tokens, output_tokens, units, requests."
        raise InvalidUsage(_ONLY_THESE, param="usage", problems=[UsageProblem(None, "not_an_object", message)])
    expected = f"Unknown usage field; expected one of {', '.join(USAGE_FIELDS)}."
    problems = [UsageProblem(str(name)[:64], "unknown_field", expected) for name in data if name not in USAGE_FIELDS]
    counts = {name: data.get(name, 0) for name in USAGE_FIELDS}
    problems += _count_problems(counts)
    if problems:
        raise _invalid(problems)
    return Usage(**counts)


def _count_problems(counts: dict[str, Any]) -> list[UsageProblem]:
    limits = usage_limits()
    problems = []
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(UsageProblem(name, "not_an_integer", "Must be a JSON integer."))
        elif value < 0:
            problems.append(UsageProblem(name, "negative", "May not be negative."))
        elif value > limits[name]:
            problems.append(UsageProblem(name, "too_large", f"May be at most {limits[name]}."))
    return problems


# The error as a whole names its first problem, in words that stand alone.
_SUMMARIES = {
    "unknown_field": _ONLY_THESE,
    "not_an_integer": "usage.{name} must be an integer.",
    "negative": "usage.{name} may not be negative.",
    "too_large": "usage.{name} may be at most {limit}.",
}


def _invalid(problems: list[UsageProblem]) -> InvalidUsage:
    first = problems[0]
    param = "usage" if first.code == "unknown_field" else f"usage.{first.field}"
    message = _SUMMARIES[first.code].format(name=first.field, limit=usage_limits().get(first.field))
    return InvalidUsage(message, param=param, problems=problems)
