from __future__ import annotations

import pytest
import sentry_sdk
from sentry_sdk.transport import Transport


@pytest.fixture(autouse=True)
def _fresh_price_cache():
    from pricing.selectors import catalogue_cache_clear

    catalogue_cache_clear()
    yield
    catalogue_cache_clear()


class _CapturingTransport(Transport):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict] = []

    def capture_envelope(self, envelope) -> None:
        self.events.extend(item.payload.json for item in envelope.items if item.type == "event")


@pytest.fixture
def sentry_events():
    """Events sent to Sentry during the test, kept in memory."""
    transport = _CapturingTransport()
    sentry_sdk.init(dsn="https://public@sentry.invalid/1", transport=transport, default_integrations=False)
    yield transport.events
    sentry_sdk.init()


@pytest.fixture
def no_env_prices(settings):
    settings.CREDIT_COSTS = {}
    settings.PRICING_DEFAULT_PRICE = None
