"""Test settings: the servers the test run was given, else servers of its own.

PostgreSQL: TEST_DATABASE_URL when set, else the embedded server on
.pgdata-test/ (config/embedded_postgres.py), never the development data in
.pgdata/. DATABASE_URL is ignored: a test run never uses the server that
development or production is configured with.
Redis: TEST_REDIS_URL when it answers, else a private redis-server for this
run (config/private_redis.py).

Both URLs are written back to the environment, as TEST_* and as the plain
names, so that processes the tests start (a Celery worker, a second Django
process) and `makemigrations --check` reach the same servers.
"""

import os
from pathlib import Path

from config import embedded_postgres, private_redis

os.environ["TEST_DATABASE_URL"] = os.environ["DATABASE_URL"] = os.environ.get(
    "TEST_DATABASE_URL"
) or embedded_postgres.database_url(Path(__file__).resolve().parent.parent / ".pgdata-test", "creditledger")
os.environ["TEST_REDIS_URL"] = os.environ["REDIS_URL"] = private_redis.redis_url(os.environ.get("TEST_REDIS_URL", ""))
# Set in the environment so subprocesses started by tests inherit it.
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("CREDITLEDGER_LEDGER_KEY", "test:test-only-ledger-key-not-for-production")
# Webhook receivers in the tests listen on 127.0.0.1 (tests of the SSRF rule turn this off), and
# every event looks its endpoints up afresh (the per-process cache would outlive rolled-back tests).
os.environ.setdefault("CREDITLEDGER_WEBHOOK_ALLOW_PRIVATE", "true")
os.environ.setdefault("CREDITLEDGER_WEBHOOK_ENDPOINTS_CACHE_S", "0")

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# No manifest to look names up in: tests render pages without running
# collectstatic (tests/config/test_first_load.py runs it for the real thing).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
