"""/metrics for Prometheus and /healthz for load balancers and uptime checks."""

from __future__ import annotations

import hmac
import logging
import os

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from config.metrics import DEPENDENCY_UP

logger = logging.getLogger(__name__)


def _registry():
    # Under gunicorn with several workers each process counts on its own;
    # PROMETHEUS_MULTIPROC_DIR makes them share files that one scrape sums.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


@require_GET
def metrics_view(request):
    """Prometheus metrics: with the bearer token, or open only when configured so.

    Closed by default: metrics are about the business (volumes, refusals,
    routes), not for the world. With `CREDITLEDGER_METRICS_TOKEN` the scrape
    must send it (401 otherwise); `CREDITLEDGER_METRICS_PUBLIC=true` opens it;
    with neither the endpoint answers 404 and says how to turn it on.
    """
    token = settings.CREDITLEDGER_METRICS_TOKEN
    if token:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied.encode(), token.encode()):
            response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = "Bearer"
            return response
    elif not settings.CREDITLEDGER_METRICS_PUBLIC:
        return HttpResponse(
            "/metrics is off: set CREDITLEDGER_METRICS_TOKEN (scrape with Authorization: Bearer <token>) "
            "or CREDITLEDGER_METRICS_PUBLIC=true.\n",
            status=404,
            content_type="text/plain",
        )
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


def _check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True
    except Exception:
        logger.warning("healthz: database check failed", exc_info=True)
        return False


def _check_redis() -> bool:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        logger.warning("healthz: redis check failed", exc_info=True)
        return False


@require_GET
def healthz_view(request):
    """200 when the database answers; Redis is reported but does not fail the probe.

    Charges and balance reads work without Redis (the display cache falls
    back to the database, the outbox sweep catches up later), so a Redis
    outage answers 200 with `"status": "degraded"` instead of taking every
    instance out of the load balancer. `?strict=1` answers 503 for that too
    (for an uptime check that should page). Alert on `creditledger_dependency_up`.
    """
    checks = {"database": _check_database(), "redis": _check_redis()}
    for name, ok in checks.items():
        DEPENDENCY_UP.labels(dependency=name).set(1 if ok else 0)
    if not checks["database"]:
        status, code = "unavailable", 503
    elif not all(checks.values()):
        status, code = "degraded", 503 if request.GET.get("strict") in ("1", "true") else 200
    else:
        status, code = "ok", 200
    body = {"status": status, "checks": {name: "ok" if ok else "unavailable" for name, ok in checks.items()}}
    return JsonResponse(body, status=code)
