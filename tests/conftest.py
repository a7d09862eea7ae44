"""Shared test set-up.

The suite runs against real PostgreSQL and Redis: the servers at
TEST_DATABASE_URL and TEST_REDIS_URL, or servers of the run's own
(config/settings_test.py). If PostgreSQL does not answer, the run stops at
once and says so, rather than failing test by test.
"""

from __future__ import annotations

import os

import pytest


def pytest_sessionstart(session):
    import psycopg
    from django.db import connection

    db = connection.settings_dict
    try:
        psycopg.connect(
            host=db["HOST"] or None,
            port=db["PORT"] or None,
            user=db["USER"] or None,
            password=db["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        pytest.exit(
            f"PostgreSQL at TEST_DATABASE_URL does not answer ({exc}).\n"
            "Start it, or unset TEST_DATABASE_URL to run on the embedded server.",
            returncode=3,
        )


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    from pricing.selectors import credit_type_cache_clear

    credit_type_cache_clear()
    yield
    credit_type_cache_clear()


@pytest.fixture(autouse=True)
def _default_credit_type(request):
    """The migration-made default credit type, restored after transactional tests flush it."""
    if request.node.get_closest_marker("django_db") is None and not {"db", "transactional_db"} & set(
        request.fixturenames
    ):
        yield
        return
    request.getfixturevalue("transactional_db" if _is_transactional(request) else "db")
    from pricing.models import CreditType

    CreditType.objects.get_or_create(code="credits", defaults={"name": "Credits", "scale": 2})
    yield


def _is_transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return "transactional_db" in request.fixturenames or bool(marker and marker.kwargs.get("transaction"))


@pytest.fixture
def api_client():
    from tests.client import KeyedAPIClient

    return KeyedAPIClient()


os.environ.setdefault("CREDITLEDGER_TESTING", "1")
