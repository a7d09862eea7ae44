"""localstripe (PyPI: a stateful stand-in for Stripe's API), plus the one endpoint it lacks, for the tests.

Run as `python -m tests.payments.localstripe_server PORT` (tests/payments/conftest.py
starts it on 127.0.0.1 for the session). Two changes to localstripe, both test-side:

* its store is not pickled to /tmp/localstripe.pickle on every write (several
  test runs share this machine; each server keeps its own store in memory);
* **a minimal stand-in for Checkout Sessions**, which localstripe does not
  implement: `POST /v1/checkout/sessions` (honouring `Idempotency-Key`, as
  Stripe does: the first answer again for the same parameters, 400
  `idempotency_error` for others), `GET /v1/checkout/sessions/{id}`, and `GET /_config/checkout/{id}`, the
  page a customer is sent to (a plain "checkout" page for the browser test).
  Paying is simulated by the tests, which post the signed
  `checkout.session.completed` webhook themselves. Nothing else is stood in.
"""

from __future__ import annotations

import sys

from aiohttp import web
from localstripe import resources, server

resources.Store.dump_to_disk = lambda self: None

SESSIONS: dict[str, dict] = {}
BY_IDEMPOTENCY_KEY: dict[str, tuple[str, dict]] = {}  # key -> (session id, the parameters first sent with it)


def _amount_total(data: dict) -> int:
    total = 0
    for item in data.get("line_items") or []:
        price = item.get("price_data") or {}
        total += int(price.get("unit_amount") or 0) * int(item.get("quantity") or 1)
    return total


async def checkout_session_create(request: web.Request) -> web.Response:
    key = request.headers.get("Idempotency-Key", "")
    data = await server.get_post_data(request) or {}
    if key and key in BY_IDEMPOTENCY_KEY:
        # As Stripe: a repeated key answers the first response, but only for the same parameters.
        session_id, first = BY_IDEMPOTENCY_KEY[key]
        if data != first:
            message = (
                "Keys for idempotent requests can only be used with the same parameters they were first used with."
            )
            return web.json_response({"error": {"type": "idempotency_error", "message": message}}, status=400)
        return web.json_response(SESSIONS[session_id])
    if data.get("mode") not in ("payment", "subscription", "setup") or not data.get("success_url"):
        return web.json_response({"error": {"type": "invalid_request_error", "message": "Bad request"}}, status=400)
    session_id = "cs_test_" + resources.random_id(24)
    line_items = data.get("line_items") or [{}]
    session = {
        "id": session_id,
        "object": "checkout.session",
        "mode": data["mode"],
        "status": "open",
        "payment_status": "unpaid",
        "url": f"{request.scheme}://{request.host}/_config/checkout/{session_id}",
        "success_url": data["success_url"],
        "cancel_url": data.get("cancel_url"),
        "client_reference_id": data.get("client_reference_id"),
        "customer": data.get("customer"),
        "metadata": data.get("metadata") or {},
        "payment_intent": None,
        "amount_total": _amount_total(data),
        "currency": ((line_items[0] or {}).get("price_data") or {}).get("currency", "usd"),
        "livemode": False,
    }
    SESSIONS[session_id] = session
    if key:
        BY_IDEMPOTENCY_KEY[key] = (session_id, data)
    return web.json_response(session)


async def checkout_session_retrieve(request: web.Request) -> web.Response:
    session = SESSIONS.get(request.match_info["id"])
    if session is None:
        return web.json_response({"error": {"type": "invalid_request_error", "message": "No such session"}}, status=404)
    return web.json_response(session)


async def checkout_page(request: web.Request) -> web.Response:
    session = SESSIONS.get(request.match_info["id"])
    if session is None:
        return web.Response(status=404, text="No such session")
    body = (
        "<!doctype html><title>Checkout (test stand-in)</title>"
        f"<h1>Checkout</h1><p id='session'>{session['id']}</p><p id='amount'>{session['amount_total']}</p>"
    )
    return web.Response(text=body, content_type="text/html")


def main(port: int) -> None:
    app = server.app
    app.router.add_post("/v1/checkout/sessions", checkout_session_create)
    app.router.add_get("/v1/checkout/sessions/{id}", checkout_session_retrieve)
    app.router.add_get("/_config/checkout/{id}", checkout_page)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(int(sys.argv[1]))
