"""A real Sentry client whose transport keeps events in memory instead of sending them."""

from __future__ import annotations

import pytest
import sentry_sdk
from sentry_sdk.transport import Transport

from config.sentry import init_sentry


class CapturingTransport(Transport):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict] = []

    def capture_envelope(self, envelope) -> None:
        for item in envelope.items:
            if item.type == "event":
                self.events.append(item.payload.json)


@pytest.fixture
def sentry_events():
    """Events sent to Sentry during the test (scrubbed as in production), newest last."""
    transport = CapturingTransport()
    # The production set-up (integrations, scrubbing), with only the transport swapped.
    init_sentry("https://public@sentry.invalid/1", environment="test", transport=transport)
    yield transport.events
    sentry_sdk.init()  # no DSN: back to a disabled client
