"""Project-level views: the landing redirect, the browsable schema and JSON error pages for the API."""

from django.http import HttpResponseRedirect
from django.views import defaults
from drf_spectacular.renderers import OpenApiYamlRenderer
from drf_spectacular.views import SpectacularAPIView

from config.errors import json_bad_request, json_not_found, json_server_error


def home(request):
    return HttpResponseRedirect("/admin/")


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return json_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return json_server_error(request)
    return defaults.server_error(request)


def bad_request(request, exception=None):
    if request.path.startswith("/api/"):
        return json_bad_request(request, exception)
    return defaults.bad_request(request, exception)


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema; a browser is shown it as text instead of being handed a download.

    drf-spectacular answers `application/vnd.oai.openapi`, which browsers save
    as a file. A request that accepts `text/html` and names no format gets the
    same YAML as `text/plain`; API clients, `?format=json` and explicit
    `Accept` headers are answered as before.
    """

    def perform_content_negotiation(self, request, force=False):
        wants_page = "text/html" in request.META.get("HTTP_ACCEPT", "")
        if wants_page and not request.query_params.get("format"):
            renderer = SchemaTextRenderer()
            return renderer, renderer.media_type
        return super().perform_content_negotiation(request, force)


class SchemaTextRenderer(OpenApiYamlRenderer):
    media_type = "text/plain"
    charset = "utf-8"
    format = "yaml-text"
