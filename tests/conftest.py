"""Shared test set-up.

The suite runs against the real PostgreSQL and Redis on this machine. If
either is unreachable the run stops at once and says how to start it, rather
than skipping the tests that need it.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def pytest_sessionstart(session):
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.exit("The test suite needs PostgreSQL: set DATABASE_URL=postgres://…", returncode=3)
    db_url = f"postgres://{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
    if not _reachable(db_url, 5432):
        pytest.exit(f"PostgreSQL is not reachable at {db_url}. Start it with:\n    {START_POSTGRES}", returncode=3)
    if not _reachable(settings.REDIS_URL, 6379):
        pytest.exit(f"Redis is not reachable at {settings.REDIS_URL}. Start it with:\n    {START_REDIS}", returncode=3)


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
    from rest_framework.test import APIClient

    return APIClient()


os.environ.setdefault("CREDITLEDGER_TESTING", "1")
