"""What a process started by a test needs to reach this run's servers."""

from __future__ import annotations

import os
from urllib.parse import quote, urlsplit, urlunsplit

from django.db import connection


def child_database_url() -> str:
    """DATABASE_URL for pytest-django's test database: this run's server URL (settings_test), the test name."""
    url = urlsplit(os.environ["DATABASE_URL"])
    server = url.path.rsplit("/", 1)[0]  # "" for a host:port URL, "//socket/dir" for the embedded server
    return urlunsplit(url._replace(path=f"{server}/{quote(connection.settings_dict['NAME'])}"))
