"""Sentry set-up with scrubbing: API keys and exact balances never leave the process."""

import re
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

# Our secrets look like `clk_<prefix>_<secret>`; scrub them wherever they appear.
API_KEY_PATTERN = re.compile(r"clk_[A-Za-z0-9]+_[A-Za-z0-9_-]+")
# A key containing any of these is redacted whole, wherever it appears: request
# data, headers, extra and context data, and stack-frame locals (`new_balance`,
# `available`, `wallet_held` ...). Amounts that are not balances stay.
SENSITIVE_KEY_PARTS = (
    "authorization",
    "balance",
    "available",
    "held",
    "secret",
    "api_key",
    "apikey",
    "password",
    "cookie",
)
REDACTED = "[redacted]"


def _sensitive(key: Any) -> bool:
    lowered = str(key).lower()
    return any(part in lowered for part in SENSITIVE_KEY_PARTS)


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 12:
        return value
    if isinstance(value, dict):
        return {k: (REDACTED if _sensitive(k) else _scrub(v, depth + 1)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    if isinstance(value, str):
        return API_KEY_PATTERN.sub(REDACTED, value)
    return value


def scrub_event(event: dict, hint: dict | None = None) -> dict:
    return _scrub(event)


def init_sentry(dsn: str, *, environment: str, **overrides: Any) -> None:
    """Start Sentry; `overrides` (e.g. a test transport) are passed to sentry_sdk.init."""
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        # monitor_beat_tasks: every beat-scheduled task reports a cron check-in,
        # so a scheduled task that fails, or never runs, is a Sentry event.
        integrations=[DjangoIntegration(), CeleryIntegration(monitor_beat_tasks=True)],
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        traces_sample_rate=0.0,
        **overrides,
    )
