"""Chromium for the browser tests: Debian's package, driven by Playwright."""

from __future__ import annotations

import os

import pytest

CHROMIUM = os.environ.get("CREDITLEDGER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's Chromium; the test fails (never skips) without it, saying how to install it."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}. Install it with:\n"
            "    apt-get update && apt-get install -y chromium\n"
            "(`make test` does this), or set CREDITLEDGER_CHROMIUM to a Chromium binary."
        )
    return CHROMIUM
