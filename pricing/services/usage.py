"""Usage: what a priced call used, in the four counts the catalogue prices."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.conf import settings

from pricing.exceptions import InvalidUsage

USAGE_FIELDS = ("input_tokens", "output_tokens", "units", "requests")


@dataclass(frozen=True)
class Usage:
    """What was used: token counts, units (images, seconds, pages) and requests."""

    input_tokens: int = 0
    output_tokens: int = 0
    units: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        limits = usage_limits()
        for name in USAGE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidUsage(f"usage.{name} must be an integer.", param=f"usage.{name}")
            if value < 0:
                raise InvalidUsage(f"usage.{name} may not be negative.", param=f"usage.{name}")
            if value > limits[name]:
                raise InvalidUsage(f"usage.{name} may be at most {limits[name]}.", param=f"usage.{name}")

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
