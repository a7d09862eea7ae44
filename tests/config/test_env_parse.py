"""Structured environment settings: CREDITLEDGER_APPROVAL_THRESHOLD and CREDITLEDGER_APPROVAL_TTL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.env_parse import amounts_by_credit_type_parse, duration_parse

NAME = "CREDITLEDGER_APPROVAL_THRESHOLD"


def test_a_threshold_per_credit_type():
    assert amounts_by_credit_type_parse(NAME, "credits=1000,usd=100.5") == {
        "credits": Decimal("1000"),
        "usd": Decimal("100.5"),
    }


def test_spaces_around_items_are_allowed():
    assert amounts_by_credit_type_parse(NAME, " credits = 1000 , usd=0 ") == {"credits": Decimal(1000), "usd": 0}


@pytest.mark.parametrize("raw", ["", "   "])
def test_unset_or_empty_means_no_threshold(raw):
    assert amounts_by_credit_type_parse(NAME, raw) == {}


@pytest.mark.parametrize(
    "raw, says",
    [
        ("credits:1000", "is not CODE=AMOUNT"),
        ("credits=1000,", "is not CODE=AMOUNT"),
        ("=1000", "is not CODE=AMOUNT"),
        ("credits=", "is not CODE=AMOUNT"),
        ("credits=-5", "not a plain non-negative decimal"),
        ("credits=1e3", "not a plain non-negative decimal"),
        ("credits=NaN", "not a plain non-negative decimal"),
        ("credits=1000,credits=5", "given twice"),
        ("cré dits=5", "not a credit type code"),
        ("credits=10000000000000000000", "too large"),
    ],
)
def test_bad_syntax_is_a_clear_error_naming_the_variable(raw, says):
    with pytest.raises(ImproperlyConfigured) as excinfo:
        amounts_by_credit_type_parse(NAME, raw)
    assert NAME in str(excinfo.value) and says in str(excinfo.value)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("72h", timedelta(hours=72)),
        ("3d", timedelta(days=3)),
        ("90m", timedelta(minutes=90)),
        ("30s", timedelta(seconds=30)),
        ("48", timedelta(hours=48)),
        (" 2D ", timedelta(days=2)),
    ],
)
def test_a_ttl_is_a_number_with_a_unit(raw, expected):
    assert duration_parse("CREDITLEDGER_APPROVAL_TTL", raw) == expected


@pytest.mark.parametrize("raw", ["", "0h", "-1h", "1.5h", "3 weeks", "h"])
def test_a_bad_ttl_is_a_clear_error(raw):
    with pytest.raises(ImproperlyConfigured, match="CREDITLEDGER_APPROVAL_TTL"):
        duration_parse("CREDITLEDGER_APPROVAL_TTL", raw)


def test_the_default_ttl_is_72_hours():
    assert settings.CREDITLEDGER_APPROVAL_TTL == timedelta(hours=72)


def _start(**env: str) -> subprocess.CompletedProcess:
    """Load the settings in a fresh process, as start-up does."""
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
         "print(settings.CREDITLEDGER_APPROVAL_THRESHOLD)"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true", **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.BASE_DIR,
    )  # fmt: skip


def test_start_up_fails_on_a_malformed_threshold():
    result = _start(CREDITLEDGER_APPROVAL_THRESHOLD="credits:1000")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "CREDITLEDGER_APPROVAL_THRESHOLD" in result.stderr


def test_start_up_reads_a_good_threshold():
    result = _start(CREDITLEDGER_APPROVAL_THRESHOLD="credits=1000,usd=100")
    assert result.returncode == 0, result.stderr
    assert "'credits': Decimal('1000')" in result.stdout and "'usd': Decimal('100')" in result.stdout
