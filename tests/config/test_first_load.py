"""First load as `make run` serves it: DEBUG off, static files from WhiteNoise, nothing from another host.

The server is a separate `manage.py runserver` process with `DEBUG=false`
after `collectstatic`, exactly what `make run` does (pytest-django's
live_server would serve static files itself and prove nothing about
WhiteNoise). Chromium aborts and records every request to any other host.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.processes import child_database_url

ROOT = Path(__file__).resolve().parent.parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def production_like_server(tmp_path, transactional_db):
    """`collectstatic` then `runserver` with DEBUG=false, as `make run` does; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",  # settings_test would use TEST_DATABASE_URL instead
        "DATABASE_URL": child_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "false",
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    # Made by the server's own settings: the test settings' password hasher is not among the server's.
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "createsuperuser",
            "--noinput",
            "--username",
            "first-load",
            "--email",
            "first-load@example.com",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SUPERUSER_PASSWORD": "password"},
        check=True,
    )
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("runserver did not start")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_first_load_serves_css_js_and_docs_locally_with_debug_off(production_like_server):
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    base = production_like_server
    origin = urlsplit(base).netloc

    foreign: list[str] = []
    static: dict[str, tuple[int, str]] = {}

    def guard(route):
        if urlsplit(route.request.url).netloc != origin and not route.request.url.startswith("data:"):
            foreign.append(route.request.url)
            return route.abort()
        return route.continue_()

    def record(response):
        if "/static/" in response.url:
            static[response.url] = (response.status, response.headers.get("content-type", ""))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.set_default_timeout(20_000)
            page.route("**/*", guard)
            page.on("response", record)

            page.goto(f"{base}/admin/login/")
            page.fill("#id_username", "first-load")
            page.fill("#id_password", "password")
            page.click("input[type=submit]")
            page.wait_for_url(f"{base}/admin/")
            # The stylesheet applied: Django's header bar has its colour, not the browser's default.
            header = page.locator("#header")
            assert header.evaluate("el => getComputedStyle(el).backgroundColor") not in ("", "rgba(0, 0, 0, 0)")
            page.goto(f"{base}/admin/billing/ledgerentry/")
            expect(page.locator("#changelist")).to_be_visible()

            page.goto(f"{base}/api/docs/")
            # The schema is generated on first request: seconds on a busy machine, past expect's 5 s default.
            expect(page.locator(".opblock").first).to_be_visible(timeout=60_000)
            assert page.locator(".opblock").count() > 10
            page.goto(f"{base}/api/redoc/")
            expect(page.locator('[data-section-id^="operation/"]').first).to_be_attached(timeout=60_000)

            schema = page.goto(f"{base}/api/schema/")
            assert schema.status == 200
            assert schema.headers["content-type"].startswith("text/plain")
            assert page.locator("body").inner_text().startswith("openapi:")
        finally:
            browser.close()

    assert foreign == []
    css = {url: kind for url, (status, kind) in static.items() if url.endswith(".css")}
    js = {url: kind for url, (status, kind) in static.items() if url.endswith(".js")}
    assert css and js
    assert all(status == 200 for status, _ in static.values()), static
    assert all(kind.startswith("text/css") for kind in css.values()), css
    assert all(kind.split(";")[0] in ("text/javascript", "application/javascript") for kind in js.values()), js
    # Swagger UI and Redoc came from our own static files (drf-spectacular-sidecar).
    assert any("swagger-ui-dist" in url for url in js) and any("redoc" in url for url in js)
