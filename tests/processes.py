"""What a process started by a test needs to reach this run's servers."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

from django.db import connection


def child_database_url() -> str:
    """DATABASE_URL for pytest-django's test database: this run's server URL (settings_test), the test name."""
    url = urlsplit(os.environ["DATABASE_URL"])
    server = url.path.rsplit("/", 1)[0]  # "" for a host:port URL, "//socket/dir" for the embedded server
    return urlunsplit(url._replace(path=f"{server}/{quote(connection.settings_dict['NAME'])}"))


@contextmanager
def celery_worker(
    name: str, *, database_url: str, pool: tuple[str, ...] = ("--pool=solo",), env: dict[str, str] | None = None
) -> Iterator[str]:
    """A real Celery worker on this run's broker and test database, for the block; yields its log file's path."""
    from django.conf import settings

    from config.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(app.conf.task_default_queue)  # nothing left over from other tests
    log = tempfile.NamedTemporaryFile(prefix=f"celery-{name}-", suffix=".log", delete=False)
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SENTRY_DSN": "",
        **(env or {}),
    }
    process = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "config", "worker", *pool, "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}-{uuid.uuid4().hex[:8]}@%h",
        ],
        cwd=settings.BASE_DIR,
        env=child_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield log.name
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()
        os.unlink(log.name)
