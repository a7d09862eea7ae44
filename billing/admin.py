"""Admin for the ledger: staff's main tool.

The ledger and wallets are read-only here: balances change only through the
services, which the admin actions call with the staff user as actor.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property

from billing.models import CreditType, Hold, LedgerEntry, Wallet
from refunds.admin_refund import ChargeRefundAdminMixin


class EstimatedCountPaginator(Paginator):
    """Avoids COUNT(*) over the whole ledger: PostgreSQL's row estimate when unfiltered."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if connection.vendor == "postgresql" and query is not None and not query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                    [self.object_list.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] and row[0] > 10_000:
                return int(row[0])
        return super().count


class ReadOnlyAdminMixin:
    """Viewable by staff with the view permission; never added, changed or deleted here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CreditType)
class CreditTypeAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "scale", "created_at"]
    search_fields = ["code", "name"]

    def get_readonly_fields(self, request, obj=None):
        # The scale of a credit type in use never changes: stored amounts rely on it.
        return ["code", "scale", "created_at"] if obj else ["created_at"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["account", "credit_type", "balance", "held", "available_display", "updated_at"]
    list_select_related = ["account", "credit_type"]
    list_filter = ["credit_type"]
    search_fields = ["account__public_id", "account__external_id", "account__email"]
    autocomplete_fields = ["account"]

    @admin.display(description="available")
    def available_display(self, wallet: Wallet):
        return wallet.available


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ChargeRefundAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "public_id",
        "created_at",
        "account",
        "credit_type",
        "kind",
        "amount",
        "balance_after",
        "task_id",
        "route",
        "actor_display",
    ]
    list_select_related = ["account", "credit_type", "actor_api_key", "actor_user"]
    list_filter = ["kind", "credit_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = [
        "=public_id",
        "=task_id",
        "=idempotency_key",
        "route",
        "=account__public_id",
        "=account__external_id",
        "account__email",
    ]
    date_hierarchy = "created_at"
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    fields = [
        "public_id",
        "created_at",
        "account",
        "wallet",
        "credit_type",
        "kind",
        "amount",
        "balance_after",
        "related_entry",
        "task_id",
        "route",
        "description",
        "idempotency_key",
        "metadata",
        "actor_api_key",
        "actor_user",
    ]
    readonly_fields = fields

    @admin.display(description="actor")
    def actor_display(self, entry: LedgerEntry) -> str:
        if entry.actor_user_id:
            return f"staff: {entry.actor_user}"
        if entry.actor_api_key_id:
            return f"key: {entry.actor_api_key.prefix}"
        return "system"


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Holds are resolved by the API and the expiry sweep, never edited here."""

    list_display = [
        "public_id",
        "created_at",
        "account",
        "credit_type",
        "status",
        "amount",
        "captured_amount",
        "on_expiry",
        "expires_at",
        "task_id",
        "route",
    ]
    list_select_related = ["account", "credit_type"]
    list_filter = ["status", "on_expiry", "credit_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=public_id", "=task_id", "route", "=account__public_id", "=account__external_id"]
    date_hierarchy = "created_at"
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    fields = [
        "public_id",
        "status",
        "account",
        "wallet",
        "credit_type",
        "amount",
        "captured_amount",
        "requested_amount",
        "capture_entry",
        "on_expiry",
        "expires_at",
        "created_at",
        "resolved_at",
        "release_reason",
        "task_id",
        "route",
        "price_key",
        "estimated_usage",
        "capture_usage",
        "price_version",
        "metadata",
        "idempotency_key",
        "actor_api_key",
        "actor_user",
    ]
    readonly_fields = fields
