"""System checks: an environment price outside the sanity bounds fails `manage.py check`
(and migrate/runserver) instead of surfacing as 422s on the first charge."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def environment_prices_within_bounds(app_configs, **kwargs) -> list[Error]:
    low, high = settings.PRICING_BOUNDS["per_request"]
    return [
        Error(
            f"CREDIT_COST_{suffix}={value} is outside the per-request sanity bounds [{low}, {high}].",
            hint="Fix the variable, or the CREDITLEDGER_PRICING_*_PER_REQUEST bounds.",
            id="pricing.E001",
        )
        for suffix, value in settings.CREDIT_COSTS.items()
        if value and not (low <= value <= high)
    ]
