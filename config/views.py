"""Project-level views: the landing redirect and JSON error pages for the API."""

from django.http import HttpResponseRedirect
from django.views import defaults

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
