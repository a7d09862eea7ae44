"""A Redis for the test run: the one at TEST_REDIS_URL if it answers, else a private redis-server.

The private server listens on a free port of 127.0.0.1, keeps nothing on
disk, and is stopped when the process that started it exits (atexit, and on
Linux also when that process is killed: the kernel sends it SIGTERM). The
settings export its URL, so the processes that tests start use it too.
`make test` installs Debian's redis-server when the command is missing.
"""

from __future__ import annotations

import atexit
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time

import redis
from django.core.exceptions import ImproperlyConfigured

START_TIMEOUT_S = 10
PR_SET_PDEATHSIG = 1


def redis_url(preferred: str) -> str:
    """`preferred` if a Redis answers there, else the URL of a private redis-server started for this process."""
    if preferred and _answers(preferred):
        return preferred
    if preferred:
        print(f"Redis at {preferred} does not answer: starting a private redis-server", file=sys.stderr)
    return _start()


def _answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _start() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ImproperlyConfigured(
            "No Redis at TEST_REDIS_URL and no redis-server to start one: `apt-get install redis-server` "
            "(`make test` does it), or set TEST_REDIS_URL to a Redis that answers."
        )
    for _attempt in range(3):  # another process may take the free port before redis-server binds it
        port = _free_port()
        process = subprocess.Popen(  # noqa: S603 (our arguments only)
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # settings are imported before any thread starts
        )
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + START_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            if _answers(url):
                atexit.register(_stop, process)
                return url
            time.sleep(0.05)
        _stop(process)
    raise ImproperlyConfigured(f"Could not start a private redis-server ({binary}).")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
