"""Admin for credit types and the price catalogue.

Prices are insert-only: saving the change form of a price creates a new
version through `pricing.services.price_create` (the old one stays, and
ledger entries keep pointing at it). The change list shows where every price
comes from, including the CREDIT_COST_<ACTION> environment prices that take
precedence over the database.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.admin_money import MoneyFormMixin, unit_price_column
from config.admin_search import admin_search_register
from config.money import unit_price_display
from pricing import services
from pricing.exceptions import PriceNotConfigured
from pricing.models import UNIT_PRICE_FIELDS, CreditType, ModelAlias, Price, PricingAnomaly
from pricing.selectors import catalogue_snapshot, env_price_get, prices_current
from pricing.services.anomalies import RESOLVE_PERMISSION


@admin.register(CreditType)
class CreditTypeAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "scale", "created_at"]
    search_fields = ["code", "name"]

    def get_readonly_fields(self, request, obj=None):
        # The scale of a credit type in use never changes: stored amounts rely on it.
        return ["code", "scale", "created_at"] if obj else ["created_at"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class PriceStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("current", "In force now"), ("scheduled", "Scheduled"), ("superseded", "Superseded")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        now = timezone.now()
        if self.value() == "scheduled":
            return queryset.filter(effective_from__gt=now)
        current_ids = [row.version.pk for row in prices_current() if row.version is not None]
        if self.value() == "current":
            return queryset.filter(pk__in=current_ids)
        return queryset.filter(effective_from__lte=now).exclude(pk__in=current_ids)


@admin.register(Price)
class PriceAdmin(MoneyFormMixin, admin.ModelAdmin):
    change_list_template = "admin/pricing/price/change_list.html"
    list_display = [
        "key",
        "credit_type_code",
        "version",
        "state_display",
        "effective_short",
        "per_request_price",
        "per_1k_input_tokens_price",
        "per_1k_output_tokens_price",
        "per_unit_price",
        "unit_name",
    ]
    list_select_related = ["credit_type", "created_by"]
    list_filter = [PriceStateFilter, "credit_type", "is_free"]
    search_fields = ["key", "public_id"]
    ordering = ["key", "credit_type", "-version"]
    fields = [
        "key",
        "credit_type",
        "effective_from",
        "is_free",
        "per_request",
        "per_1k_input_tokens",
        "per_1k_output_tokens",
        "per_unit",
        "unit_name",
        "note",
        "version",
        "public_id",
        "source_display",
        "created_by",
        "created_at",
        "history_display",
    ]

    @admin.display(description="type", ordering="credit_type__code")
    def credit_type_code(self, price: Price) -> str:
        return price.credit_type.code

    @admin.display(description="effective from", ordering="effective_from")
    def effective_short(self, price: Price) -> str:
        return timezone.localtime(price.effective_from).strftime("%Y-%m-%d %H:%M")

    per_request_price = unit_price_column("per_request")
    per_1k_input_tokens_price = unit_price_column("per_1k_input_tokens", description="per 1K input")
    per_1k_output_tokens_price = unit_price_column("per_1k_output_tokens", description="per 1K output")
    per_unit_price = unit_price_column("per_unit")

    def get_readonly_fields(self, request, obj=None):
        base = ["version", "public_id", "source_display", "created_by", "created_at", "history_display"]
        # The key and credit type identify the price: a new version keeps them.
        return [*base, "key", "credit_type"] if obj else base

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # versions are kept forever; ledger entries point at them

    @admin.display(description="state")
    def state_display(self, price: Price) -> str:
        """Also says "free" and when the environment overrides the price (the list has no room for those columns)."""
        if price.effective_from > timezone.now():
            state = "scheduled"
        else:
            current = catalogue_snapshot().version_at(price.key, price.credit_type_id, timezone.now())
            state = "in force" if current is not None and current.pk == price.pk else "superseded"
        if price.is_free:
            state += ", free"
        if self.source_display(price) != "database":
            state += ", overridden by the environment"
        return state

    @admin.display(description="source")
    def source_display(self, price: Price) -> str:
        if price.pk is None:
            return "database"
        env = env_price_get(price.key) if price.credit_type.code == _default_code() else None
        if env is not None:
            return f"database (overridden by environment {env.variable})"
        return "database"

    @admin.display(description="version history")
    def history_display(self, price: Price):
        if price.pk is None:
            return "-"
        versions = Price.objects.filter(key=price.key, credit_type=price.credit_type).order_by("-version")
        rows = format_html_join(
            "",
            "<tr><td>v{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    v.version,
                    v.effective_from.isoformat(timespec="seconds"),
                    "free" if v.is_free else "",
                    *(unit_price_display(getattr(v, n)) for n in UNIT_PRICE_FIELDS),
                    v.note,
                )
                for v in versions
            ),
        )
        return format_html(
            "<table><tr><th>version</th><th>effective from</th><th></th><th>per request</th>"
            "<th>per 1K input</th><th>per 1K output</th><th>per unit</th><th>note</th></tr>{}</table>",
            rows,
        )

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("effective_from", timezone.now())
        return initial

    def save_model(self, request, obj: Price, form, change: bool) -> None:
        data = form.cleaned_data
        effective_from = data.get("effective_from")
        if change and "effective_from" not in form.changed_data:
            effective_from = None  # an edit takes effect now unless a new date was chosen
        request._pricing_new_version = services.price_create(
            key=obj.key,
            credit_type=obj.credit_type,
            per_request=data["per_request"],
            per_1k_input_tokens=data["per_1k_input_tokens"],
            per_1k_output_tokens=data["per_1k_output_tokens"],
            per_unit=data["per_unit"],
            unit_name=data["unit_name"],
            is_free=data["is_free"],
            effective_from=effective_from,
            note=data["note"],
            user=request.user,
        )
        # The admin's own bookkeeping (log entry, redirect) uses the new version.
        obj.pk = request._pricing_new_version.pk
        obj.version = request._pricing_new_version.version

    def response_change(self, request, obj):
        new = getattr(request, "_pricing_new_version", None)
        if new is None:
            return super().response_change(request, obj)
        self.message_user(
            request, f"Saved {new.key} as version {new.version}; earlier versions are kept.", messages.SUCCESS
        )
        return HttpResponseRedirect(reverse("admin:pricing_price_change", args=[new.pk]))

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        extra_context["environment_prices"] = [row for row in prices_current() if row.source == "environment"]
        return super().changelist_view(request, extra_context=extra_context)


def _default_code() -> str:
    return settings.DEFAULT_CREDIT_TYPE


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    list_display = ["alias", "target", "resolves_to", "note", "updated_at"]
    search_fields = ["alias", "target"]
    fields = ["alias", "target", "note", "resolves_to"]

    def get_readonly_fields(self, request, obj=None):
        # Renaming would leave the old alias behind: repoint or delete instead.
        return ["alias", "resolves_to"] if obj else ["resolves_to"]

    @admin.display(description="resolves to")
    def resolves_to(self, alias: ModelAlias) -> str:
        if alias.pk is None:
            return "-"
        try:
            return services.alias_resolve(alias.alias, catalogue_snapshot().aliases)
        except PriceNotConfigured:
            return "(does not resolve)"

    def save_model(self, request, obj: ModelAlias, form, change: bool) -> None:
        saved = services.alias_set(alias=obj.alias, target=obj.target, note=obj.note)
        obj.pk = saved.pk

    def delete_model(self, request, obj: ModelAlias) -> None:
        services.alias_delete(alias=obj)

    def delete_queryset(self, request, queryset) -> None:
        for alias in queryset:
            services.alias_delete(alias=alias)


@admin.register(PricingAnomaly)
class PricingAnomalyAdmin(admin.ModelAdmin):
    # Compact columns, so the list fits 1366 px (tests/config/test_change_lists_fit.py).
    list_display = [
        "public_id",
        "created_short",
        "kind",
        "account_short",
        "price_key",
        "resolved_key",
        "price_source",
        "usage",
        "resolved_short",
    ]
    list_select_related = ["account", "price_version", "resolved_by"]
    # "Resolved: empty" (`resolved_at__isempty=1`) is the open ones, the dashboard's link.
    list_filter = [("resolved_at", admin.EmptyFieldListFilter), "kind", "price_source"]
    search_fields = ["public_id", "price_key", "resolved_key", "account__public_id", "task_id"]
    readonly_fields = [f.name for f in PricingAnomaly._meta.fields]
    actions = ["mark_resolved"]

    @admin.action(description="Mark resolved", permissions=["resolve"])
    def mark_resolved(self, request, queryset) -> None:
        marked = services.anomalies_resolve(anomalies=queryset, user=request.user)
        skipped = queryset.count() - marked
        message = f"Marked {marked} pricing anomal{'y' if marked == 1 else 'ies'} resolved."
        if skipped:
            message += f" {skipped} already resolved, left as they were."
        self.message_user(request, message, messages.SUCCESS if marked else messages.WARNING)

    def has_resolve_permission(self, request) -> bool:
        return request.user.has_perm(RESOLVE_PERMISSION)

    @admin.display(description="resolved", ordering="resolved_at")
    def resolved_short(self, anomaly: PricingAnomaly) -> str:
        if anomaly.resolved_at is None:
            return "open"
        return f"{timezone.localtime(anomaly.resolved_at):%Y-%m-%d} {anomaly.resolved_by}"

    @admin.display(description="created", ordering="created_at")
    def created_short(self, anomaly: PricingAnomaly) -> str:
        return timezone.localtime(anomaly.created_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="account", ordering="account")
    def account_short(self, anomaly: PricingAnomaly):
        account = anomaly.account
        if account is None:
            return "-"
        url = reverse("admin:accounts_account_change", args=[account.pk], current_app=self.admin_site.name)
        return format_html('<a href="{}" title="{}">{}</a>', url, account, account.external_id or account.public_id)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# The header search (config.admin_search): a price version or an anomaly by id, a price by its key.
admin_search_register(Price, ["public_id"], prefix="prv_")
admin_search_register(PricingAnomaly, ["public_id"], prefix="pan_")
admin_search_register(Price, ["key"])
