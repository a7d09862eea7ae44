"""gunicorn configuration: errors gunicorn answers itself are JSON in the API's one error shape.

gunicorn reads `./gunicorn.conf.py` by default, so `gunicorn config.wsgi`
started from the project root (operations, `make bench`, the SDK tests) uses
it. Some requests never reach Django: a request line past
`limit_request_line` (414), headers past `limit_request_fields` /
`limit_request_field_size` (431), a malformed request line or header (400),
an unsupported transfer coding (501). gunicorn answers those itself through
`gunicorn.util.write_error`, with an HTML page; every worker class calls that
one function, so replacing it here (in the arbiter, before the workers fork)
makes every such answer `{"error": {"code", "message"}}` with
`Content-Type: application/json`, like the API's own errors
(`config/errors.py`). Tested through a live gunicorn:
`tests/hardening/test_server_errors.py`.
"""

from __future__ import annotations

import json

from gunicorn import util

# Status → the error code clients switch on (the message says what gunicorn saw).
SERVER_ERROR_CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "request_header_fields_too_large",
    500: "internal_error",
    501: "not_implemented",
}


def json_error(status_int: int, mesg: str) -> bytes:
    code = SERVER_ERROR_CODES.get(status_int, "bad_request" if 400 <= status_int < 500 else "internal_error")
    message = mesg or ("Internal error." if status_int >= 500 else "Bad request.")
    return json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=True).encode("ascii")


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = json_error(status_int, mesg)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    util.write_nonblock(sock, head.encode("latin1") + body)


util.write_error = write_json_error
