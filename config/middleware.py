"""Refuse oversized request bodies before anything reads them; time every request."""

import time

from django.conf import settings
from django.http import JsonResponse

from billing.metrics import REQUEST_LATENCY
from config.errors import error_response


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
        REQUEST_LATENCY.labels(method=request.method, route=route, status=str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response
