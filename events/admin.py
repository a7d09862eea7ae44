"""Events in the console: read-only, filterable by type, searchable by event or account id."""

from __future__ import annotations

from django.contrib import admin

from events.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["public_id", "type", "account", "created_at"]
    list_filter = ["type", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["account"]
    search_fields = ["=public_id", "=account__public_id"]
    fields = ["public_id", "type", "account", "created_at", "api_version", "data"]
    readonly_fields = fields
    show_full_result_count = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
