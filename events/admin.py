"""Events in the console: read-only, filterable by type, searchable by event or account id.

The list holds the stored events (holds, refunds, alerts, subscriptions...)
and the copies of ledger entries' events made for webhook deliveries. A
ledger entry's event is the entry itself (events.models): searching for its
id (`evt_txn_...`) opens the entry in the ledger's list.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse

from events.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["public_id", "type", "account", "created_at"]
    list_filter = ["type", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["account"]
    search_fields = ["=public_id", "=account__public_id"]
    search_help_text = "An event id (evt_...) or an account id. A ledger entry's event (evt_txn_...) opens its entry."
    fields = ["public_id", "type", "account", "created_at", "api_version", "data"]
    readonly_fields = fields
    show_full_result_count = False

    def changelist_view(self, request, extra_context=None):
        term = request.GET.get("q", "").strip()
        if term.startswith("evt_txn_") and not Event.objects.filter(public_id=term).exists():
            # The billing app's ledger list, by URL name: this app sits below billing and imports nothing of it.
            url = reverse("admin:billing_ledgerentry_changelist")
            return HttpResponseRedirect(f"{url}?{urlencode({'q': term.removeprefix('evt_')})}")
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
