"""Payments tests: localstripe on 127.0.0.1 for the session, and Stripe's signing scheme for webhooks.

`localstripe` (tests/payments/localstripe_server.py) is started once per test
session (per xdist worker) on a free port; `stripe_on` points the settings
at it (STRIPE_API_BASE, a test secret key, a webhook secret). Production
code only ever reads those settings.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.sdk.server import free_port

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "whsec_test_creditledger"
SECRET_KEY = "sk_test_creditledger"


@pytest.fixture(scope="session")
def localstripe_url():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.payments.localstripe_server", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            pytest.fail(f"localstripe exited: {process.stderr.read().decode()[-2000:]}")
        try:
            request = urllib.request.Request(f"{url}/v1/balance", headers={"Authorization": f"Bearer {SECRET_KEY}"})
            with urllib.request.urlopen(request, timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("localstripe did not answer within 30 s")
            time.sleep(0.2)
    yield url
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def stripe_on(settings, localstripe_url):
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    return localstripe_url


def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header, by Stripe's scheme: HMAC-SHA256 over "{timestamp}.{payload}"."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def event(type_: str, obj: dict, *, event_id: str | None = None, created: int | None = None) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": type_,
        "created": int(time.time()) if created is None else created,
        "livemode": False,
        "api_version": "2024-06-20",
        "data": {"object": obj},
    }


def post_event(client, payload: dict, **sign_kwargs):
    body = json.dumps(payload).encode()
    return client.post(
        "/webhooks/stripe", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(body, **sign_kwargs)
    )
