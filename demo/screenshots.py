"""`make screenshots`: the console's key pages, as a new user sees them, into docs/screenshots/.

Runs the real thing: a scratch database (`creditledger_screenshots`, dropped
and recreated each time) on the embedded PostgreSQL of `.pgdata/` (or on the
server of `SCREENSHOTS_DATABASE_SERVER`, e.g. `postgres://postgres@127.0.0.1:5432`),
migrated and filled by `load_demo`, static files collected, `runserver` with
DEBUG=false, and Debian's Chromium driven by Playwright at 1366x900. It
fails if a page asks another host for anything.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
DATABASE = "creditledger_screenshots"
CHROMIUM = os.environ.get("CREDITLEDGER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
# (name, path, full page): the dashboard is taller than the window.
PAGES = [
    ("dashboard", "/admin/", True),
    ("ledger", "/admin/billing/ledgerentry/", False),
    ("accounts", "/admin/accounts/account/", False),
    ("account", None, False),  # the first account on the list: the customer view
    ("api-docs", "/api/docs/", False),
]


def database_url() -> str:
    server = os.environ.get("SCREENSHOTS_DATABASE_SERVER")
    if server:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        return f"{server}/{DATABASE}"
    sys.path.insert(0, str(ROOT))
    from config.embedded_postgres import database_url as embedded

    url = embedded(ROOT / ".pgdata", "postgres")
    socket_dir, port = _socket_of(url)
    with psycopg.connect(host=socket_dir, port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return url.rsplit("/", 1)[0] + f"/{DATABASE}"


def _socket_of(url: str) -> tuple[str, int]:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)  # postgres://postgres@:PORT/<socket dir>/<database>
    return unquote(parts.path[1:].rsplit("/", 1)[0]), parts.port or 5432


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(*args: str, env: dict) -> str:
    done = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def main() -> None:
    from playwright.sync_api import sync_playwright

    password = secrets.token_urlsafe(12)
    env = dict(
        os.environ,
        DATABASE_URL=database_url(),
        DEBUG="false",
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(40),
        CREDITLEDGER_LEDGER_KEY=os.environ.get("CREDITLEDGER_LEDGER_KEY") or f"shots:{secrets.token_urlsafe(32)}",
        DEMO_ADMIN_PASSWORD=password,
        LOG_LEVEL="WARNING",
    )
    manage("migrate", "--noinput", "-v", "0", env=env)
    manage("load_demo", env=env)
    manage("collectstatic", "--noinput", "-v", "0", env=env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/admin/login/", timeout=1)  # noqa: S310 - http://127.0.0.1 only
                break
            except OSError:
                time.sleep(0.2)
        OUT.mkdir(parents=True, exist_ok=True)
        elsewhere: list[str] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.on("request", lambda r: None if r.url.startswith((base, "data:")) else elsewhere.append(r.url))
            page.goto(f"{base}/admin/login/")
            page.fill("#id_username", "admin")
            page.fill("#id_password", password)
            page.click("input[type=submit]")
            page.wait_for_load_state("networkidle")
            for name, path, full_page in PAGES:
                if path is None:
                    page.goto(f"{base}/admin/accounts/account/")
                    page.locator("#result_list tbody tr a").first.click()
                else:
                    page.goto(base + path)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=full_page)
                print(f"wrote docs/screenshots/{name}.png")
            browser.close()
        if elsewhere:
            raise SystemExit(f"Pages asked other hosts for: {elsewhere}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
