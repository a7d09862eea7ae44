"""The console's admin site: Django's, plus the header search (`admin:search`, config.admin_search)
and the panels apps register for its index (`admin_index_register`: console adds the dashboard).

Installed as `admin.site` by `config.apps.ConsoleAdminConfig` (in place of
`django.contrib.admin` in INSTALLED_APPS), so every app registers with it as usual.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.http import HttpRequest
from django.urls import path
from django.utils.safestring import mark_safe

from config.admin_search import search_view

# Each renders HTML for the admin index, above the list of apps (config knows no app: they register).
INDEX_PANELS: list[Callable[[HttpRequest], str]] = []


def admin_index_register(panel: Callable[[HttpRequest], str]) -> None:
    """Show `panel(request)`'s HTML (a rendered template) at the top of the admin index."""
    if panel not in INDEX_PANELS:
        INDEX_PANELS.append(panel)


class ConsoleAdminSite(admin.AdminSite):
    index_template = "admin/console_index.html"

    def get_urls(self):
        return [
            path("search/", self.admin_view(lambda request: search_view(request, self)), name="search"),
            *super().get_urls(),
        ]

    def index(self, request, extra_context=None):
        panels = [mark_safe(panel(request)) for panel in INDEX_PANELS]  # noqa: S308 - rendered templates, escaped there
        return super().index(request, {**(extra_context or {}), "console_index_panels": panels})
