"""CREDITLEDGER_LEDGER_KEY: parsed and checked at start-up; production refuses to start without it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.ledger_keys import ledger_keys_parse


def start(**environment: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SECRET_KEY": "x" * 50, **environment}
    code = "import config.settings as s; print(s.CREDITLEDGER_LEDGER_KEY_ID, sorted(s.CREDITLEDGER_LEDGER_KEYS))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_the_first_key_signs_and_every_key_verifies():
    keys, current = ledger_keys_parse("k2:second-secret-0123456789, k1:first-secret-0123456789")
    assert current == "k2" and keys == {"k2": b"second-secret-0123456789", "k1": b"first-secret-0123456789"}


@pytest.mark.parametrize(
    "value",
    [
        "no-colon-here-0123456789",
        "bad id:secret-0123456789",
        "k1:short",
        "k1:a-long-enough-secret,k1:another-secret-xyz",
        "",
    ],
)
def test_a_malformed_key_list_is_refused(value):
    with pytest.raises(ImproperlyConfigured):
        ledger_keys_parse(value)


def test_production_refuses_to_start_without_a_ledger_key():
    result = start(DEBUG="false", CREDITLEDGER_LEDGER_KEY="")
    assert result.returncode != 0 and "CREDITLEDGER_LEDGER_KEY is not set" in result.stderr


def test_debug_starts_with_the_development_key():
    result = start(DEBUG="true", CREDITLEDGER_LEDGER_KEY="")
    assert result.stdout.split() == ["dev", "['dev']"], result.stderr


def test_production_starts_with_a_key():
    result = start(DEBUG="false", CREDITLEDGER_LEDGER_KEY="k9:a-production-secret-0123")
    assert result.stdout.split() == ["k9", "['k9']"], result.stderr
