"""Errors the HTTP server answers itself are JSON in the one error shape, through a live gunicorn.

Requests gunicorn refuses before Django sees them (a request line or headers
past its limits, a malformed request line or header) are answered by
`gunicorn.conf.py`'s JSON writer; a 406 is rendered by the API as JSON, never
in the format the client asked for. Each is sent raw over a socket.
"""

from __future__ import annotations

import json
import socket

import pytest

from tests.sdk.server import LiveServer


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    from django.conf import settings
    from django.db import connection

    from tests.processes import child_database_url

    with django_db_blocker.unblock():
        database_url = child_database_url()
        connection.close()
    live = LiveServer(database_url, settings.REDIS_URL, workers=1)
    try:
        yield live
    finally:
        live.stop()


def raw(server: LiveServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def assert_json_error(response, status: int, code: str) -> dict:
    got_status, headers, body = response
    assert got_status == status, body
    assert headers["content-type"].startswith("application/json")
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


def test_a_uri_past_the_request_line_limit_is_414_json(server):
    path = "/api/v1/accounts?external_id=" + "a" * 9000
    assert_json_error(raw(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()), 414, "uri_too_long")


def test_too_many_headers_is_431_json(server):
    headers = "".join(f"X-Filler-{i}: {i}\r\n" for i in range(150))
    request = f"GET /api/v1/accounts HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode()
    assert_json_error(raw(server, request), 431, "request_header_fields_too_large")


def test_a_header_past_the_field_size_limit_is_431_json(server):
    request = f"GET /api/v1/accounts HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 9000}\r\n\r\n".encode()
    assert_json_error(raw(server, request), 431, "request_header_fields_too_large")


def test_a_malformed_request_line_is_400_json(server):
    assert_json_error(raw(server, b"NONSENSE\r\n\r\n"), 400, "bad_request")


def test_a_malformed_header_is_400_json(server):
    request = b"GET /api/v1/accounts HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n"
    assert_json_error(raw(server, request), 400, "bad_request")


def test_an_unsupported_transfer_coding_is_json(server):
    request = b"POST /api/v1/charges HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
    status, headers, body = raw(server, request)
    assert status in (400, 501)
    assert headers["content-type"].startswith("application/json")
    assert "code" in json.loads(body)["error"]


@pytest.mark.parametrize("accept", ["application/yaml", "application/vnd.oai.openapi", "text/html", "image/png"])
def test_a_406_is_json_whatever_was_asked_for(server, accept):
    request = f"GET /api/v1/accounts HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n\r\n".encode()
    assert_json_error(raw(server, request), 406, "not_acceptable")


def test_the_schema_406_is_json(server):
    request = b"GET /api/schema/ HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: image/png\r\n\r\n"
    assert_json_error(raw(server, request), 406, "not_acceptable")
