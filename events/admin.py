"""Events in the console: read-only, filterable by type, searchable by event or account id.

The list is the events feed (`FeedEvent`): stored events and ledger entries'
events together, as the API lists them.
"""

from __future__ import annotations

from django.contrib import admin

from events.models import FeedEvent
from events.selectors import event_get


@admin.register(FeedEvent)
class EventAdmin(admin.ModelAdmin):
    list_display = ["public_id", "type", "account", "created_at"]
    list_filter = ["type", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["account"]
    search_fields = ["=account__public_id"]
    search_help_text = "An event id (evt_...) or an account id (acct_...)."
    fields = ["public_id", "type", "account", "created_at", "api_version", "data"]
    readonly_fields = fields
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        # An event id is found where an index finds it (events.selectors.event_get), never by scanning the
        # feed's computed ids.
        term = search_term.strip()
        if term.startswith("evt_"):
            event = event_get(term)
            return queryset.filter(pk=event.pk if event else None), False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
