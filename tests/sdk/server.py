"""A live gunicorn serving this run's test database, and a TCP proxy that drops connections.

The SDK's tests talk HTTP to a real server, as a client app does. The server
is `gunicorn config.wsgi` on a free port, with DATABASE_URL pointing at
pytest-django's test database (`tests.processes.child_database_url`), so data
the tests commit is what the server sees.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    def __init__(self, database_url: str, redis_url: str, workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",  # settings_test would pick TEST_DATABASE_URL itself
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "CONN_MAX_AGE": "0",  # no idle connection outlives a request (the fixture truncates at the end)
        }
        env.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
        env.setdefault("CREDITLEDGER_LEDGER_KEY", "test:test-only-ledger-key-not-for-production")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "config.wsgi",
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "--timeout",
                "60",
            ],
            cwd=ROOT,
            env=env,
        )
        self._wait_ready()

    def _wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not answer /healthz in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class DroppingProxy:
    """Forwards TCP to `upstream`; the first `drop` connections lose their answer.

    A dropped connection forwards the client's request, waits until the
    server has answered (so the request was handled and committed), then
    hangs up on the client without passing a byte of the answer back: the
    client sees the connection close after sending, the case where it cannot
    know whether the charge happened.
    """

    def __init__(self, upstream_port: int, drop: int = 1) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.drop = drop
        self.connections = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                drop = self.connections <= self.drop
            threading.Thread(target=self._serve, args=(client, drop), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _serve(self, client: socket.socket, drop: bool) -> None:
        upstream = socket.create_connection(self.upstream, timeout=30)
        threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
        if not drop:
            self._pump(upstream, client)
            return
        try:
            answer = upstream.recv(65536)  # the server has handled the request
            while answer and b"\r\n\r\n" not in answer:
                answer += upstream.recv(65536)
        except OSError:
            pass
        with self._lock:
            self.dropped += 1
        # Hang up on the client without a byte of the answer (shutdown, not only close: the
        # other thread's recv holds the socket open until it returns).
        for sock in (client, upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
