"""Refuse oversized request bodies before anything reads them; time every request."""

import time

from django.conf import settings
from django.http import JsonResponse

from config.errors import error_response
from config.metrics import REQUEST_LATENCY


class RequestSizeLimitMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                body = error_response(
                    "request_too_large",
                    f"Request bodies may be at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
                    413,
                )
                return JsonResponse(body, status=413)
        return self.get_response(request)


class NulCharacterMiddleware:
    """Refuse API requests with a NUL character in the path or query string (400).

    PostgreSQL text cannot hold NUL, so such a value reaching a query is a
    DataError (a 500) wherever a path parameter or filter is looked up.
    Refusing it once, here, covers every endpoint, present and future.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            query = request.META.get("QUERY_STRING", "")
            if "\x00" in request.path or "\x00" in query or "%00" in query:
                body = error_response("bad_request", "NUL characters are not allowed in URLs.", 400)
                return JsonResponse(body, status=400)
        return self.get_response(request)


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class WriteQueryParamsMiddleware:
    """Refuse a query string on an API write (400 unknown_field, naming the parameter).

    A write takes its input from its JSON body alone; no write reads the
    query string, so a parameter there is a client's mistake (an `amount`
    sent as `?amount=5` would otherwise be ignored and the body's, or the
    default, used). Lists validate their own query parameters
    (`config.lists.query_params_validate`).
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if request.method in _WRITES and request.path.startswith("/api/") and request.META.get("QUERY_STRING"):
            name = next(iter(request.GET), "") or request.META["QUERY_STRING"].split("=", 1)[0]
            body = error_response(
                "unknown_field",
                f"Unknown query parameter {name!r}: writes take their input from the body.",
                400,
                param=name,
            )
            return JsonResponse(body, status=400)
        return self.get_response(request)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetricsMiddleware:
    """Request latency for Prometheus, labelled by URL pattern (not path: bounded cardinality)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        if route in ("metrics", "healthz"):
            return response  # scrapes and probes would drown the API's numbers
        # The method is the client's to choose ("FOO" is a valid token): bound it too.
        method = request.method if request.method in _METHODS else "other"
        REQUEST_LATENCY.labels(method=method, route=route, status=str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response
