"""Test settings: the real PostgreSQL and Redis on this machine unless told otherwise."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/creditledger")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# Set in the environment so subprocesses started by tests (Celery worker,
# SQLite smoke run) inherit it.
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
