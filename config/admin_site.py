"""The console's admin site: Django's, plus the header search (`admin:search`, config.admin_search).

Installed as `admin.site` by `config.apps.ConsoleAdminConfig` (in place of
`django.contrib.admin` in INSTALLED_APPS), so every app registers with it as usual.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from config.admin_search import search_view


class ConsoleAdminSite(admin.AdminSite):
    def get_urls(self):
        return [
            path("search/", self.admin_view(lambda request: search_view(request, self)), name="search"),
            *super().get_urls(),
        ]
