"""Admin for the ledger: staff's main tool.

The ledger and wallets are read-only here: balances change only through the
services, which the admin actions call with the staff user as actor. The
account admin gains its wallets and the grant and adjustment actions here,
by re-registering `Account` (accounts sits below billing and knows nothing
of it); refunds adds its refund button, view and action to `LedgerEntry`
the same way (refunds/admin.py).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import Http404, StreamingHttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from accounts import admin as accounts_admin
from accounts.models import Account, ApiKey
from billing import statements
from billing.account_statement import AccountStatement, statement_csv_lines
from billing.admin_gates import StaffMoneyAction, staff_money_gate
from billing.admin_ops import OutboxMessageAdmin, ReconciliationRunAdmin  # noqa: F401 - registers them
from billing.alerts import wallet_alerts_set
from billing.forms import AdjustBalanceForm, GrantCreditsForm, LowBalanceForm, StatementForm
from billing.models import (
    CreditLot,
    DailyLimitOverride,
    DailyUsage,
    Hold,
    LedgerEntry,
    Wallet,
)
from billing.services import Actor, adjustment_create, daily_limit_get, daily_usage_get, grant_create
from config.admin_export import CsvExportMixin, money_cell, time_cell
from config.admin_money import MoneyFormMixin, money_column
from config.admin_search import admin_search_register
from config.errors import DomainError
from config.money import money_display, unit_price_display


class EstimatedCountPaginator(Paginator):
    """Avoids COUNT(*) over the whole ledger: PostgreSQL's row estimate when unfiltered."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if query is not None and not query.where:
            estimate = statements.table_row_estimate(self.object_list.model)
            if estimate > 10_000:
                return estimate
        return super().count


class ReadOnlyAdminMixin:
    """Viewable by staff with the view permission; never added, changed or deleted here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class CompactColumnsMixin:
    """Narrow list columns, so that a list page fits 1366 px.

    The account's external id (its name and public id on hover), the credit
    type's code, a timestamp to the minute.
    """

    @admin.display(description="account", ordering="account")
    def account_short(self, row):
        account = row.account
        url = reverse("admin:accounts_account_change", args=[quote(account.pk)], current_app=self.admin_site.name)
        return format_html('<a href="{}" title="{}">{}</a>', url, account, account.external_id or account.public_id)

    @admin.display(description="type", ordering="credit_type__code")
    def credit_type_code(self, row) -> str:
        return row.credit_type.code

    @admin.display(description="created", ordering="created_at")
    def created_short(self, row) -> str:
        return timezone.localtime(row.created_at).strftime("%Y-%m-%d %H:%M")


# --- accounts: wallets and the staff grant and adjustment ---------------------
# Billing extends the account admin (accounts imports nothing above it): the
# Account admin registered by accounts.admin is replaced with a subclass that
# adds the wallets inline and the two money actions.


class WalletInline(admin.TabularInline):
    model = Wallet
    fields = ["credit_type", "balance_money", "held_money", "available_money", "updated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    balance_money = money_column("balance")
    held_money = money_column("held")
    available_money = money_column("available", value=lambda wallet: wallet.available)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _money_action(modeladmin, request, queryset, *, form_class, permission, title, service, kind):
    """An admin action with an intermediate form (Django's delete_selected pattern).

    `service` (grant_create, adjustment_create) is called once per selected
    account with the form's credit type, amount and reason, the staff user as
    actor, unless a gate (billing.admin_gates, e.g. four-eyes approvals) holds it back.
    """
    if not request.user.has_perm(permission):
        raise PermissionDenied
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        data = form.cleaned_data
        credit_type = data["credit_type"]
        for account in queryset:
            try:
                action = StaffMoneyAction(
                    kind=kind, account=account, credit_type=credit_type, amount=data["amount"], reason=data["reason"]
                )
                if (held := staff_money_gate(request, action)) is not None:
                    modeladmin.message_user(request, held, messages.INFO)
                    continue
                entry = service(
                    account=account,
                    credit_type=credit_type,
                    amount=data["amount"],
                    reason=data["reason"],
                    actor=Actor(user=request.user),
                )
            except DomainError as error:
                modeladmin.message_user(request, f"{account}: {error.message}", messages.ERROR)
                continue
            modeladmin.message_user(request, _money_done(modeladmin, title, entry, account), messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "accounts": queryset,
        "action": request.POST.get("action"),
        "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/billing/money_action.html", context)


def _money_done(modeladmin, title: str, entry: LedgerEntry, account: Account):
    """ "Granted 25.00 credits to acc_… (name): balance 525.00 (txn_…)", with links to the account and the entry."""
    site = modeladmin.admin_site.name
    credit_type = entry.credit_type
    account_link = format_html(
        '<a href="{}">{}</a> ({})',
        reverse("admin:accounts_account_change", args=[quote(account.pk)], current_app=site),
        account.public_id,
        account.name or account.external_id,
    )
    amount = f"{money_display(entry.amount, credit_type)} {credit_type.code}"
    done = format_html("Granted {} to {}", amount, account_link)
    if not title.startswith("Grant"):
        done = format_html("Adjusted {} by {}", account_link, amount)
    return format_html(
        '{}: balance {} (<a href="{}">{}</a>).',
        done,
        money_display(entry.balance_after, credit_type),
        reverse("admin:billing_ledgerentry_change", args=[quote(entry.pk)], current_app=site),
        entry.public_id,
    )


# --- the account page: panels above the form ---------------------------------
# Each panel is a function (request, account) -> HTML or None. Billing's own
# come first; apps above billing (subscriptions, refunds) register theirs from
# their admin modules, since billing may not import them.

ACCOUNT_PANELS: list[tuple[int, Callable]] = []
LEDGER_TIMELINE = 25
# Buttons on the timeline's rows: action(request, entries) -> {entry pk: HTML}
# for all rows at once (refunds adds Refund to each refundable charge).
LEDGER_ROW_ACTIONS: list[Callable] = []


def account_panel_register(panel: Callable, *, order: int) -> None:
    """Show `panel(request, account)` (HTML, or None for nothing) on the account page, by `order`."""
    ACCOUNT_PANELS.append((order, panel))
    ACCOUNT_PANELS.sort(key=lambda item: item[0])


def ledger_row_action_register(action: Callable) -> None:
    """Add `action(request, entries)` -> {entry pk: HTML} to the buttons of the account page's ledger rows."""
    LEDGER_ROW_ACTIONS.append(action)


def _panel(template: str, **context) -> str:
    return render_to_string(f"admin/accounts/account/panels/{template}", context)


def _summary_panel(request, account: Account) -> str:
    """Per credit type: balance, held, available; granted lots, purchased lots, the plain pool; daily limit, usage."""
    wallets = list(Wallet.objects.filter(account=account).select_related("credit_type").order_by("credit_type__code"))
    # What is left of bought credits, per wallet: lots tell purchased from granted (CreditLot.source).
    purchased = dict(
        CreditLot.objects.filter(wallet__in=wallets, source=CreditLot.Source.PURCHASED)
        .values("wallet_id")
        .annotate(left=Sum("remaining"))
        .values_list("wallet_id", "left")
    )
    rows = []
    for wallet in wallets:
        limit = daily_limit_get(account=account, credit_type=wallet.credit_type)
        bought = purchased.get(wallet.pk) or Decimal(0)
        rows.append(
            {
                "wallet": wallet,
                "credit_type": wallet.credit_type,
                "granted_lots": wallet.lot_balance - bought,
                "purchased": bought,
                "pool": wallet.balance - wallet.lot_balance,
                "daily_limit": limit,
                "used_today": daily_usage_get(wallet=wallet) if limit is not None else None,
            }
        )
    statement_url = reverse("admin:accounts_account_statement", args=[quote(account.pk)])
    return _panel("summary.html", account=account, rows=rows, statement_url=statement_url)


def _ledger_panel(request, account: Account) -> str:
    entries = list(
        LedgerEntry.objects.filter(account=account)
        .select_related("credit_type", "actor_user", "actor_api_key")
        .order_by("-id")[:LEDGER_TIMELINE]
    )
    actions = [action(request, entries) for action in LEDGER_ROW_ACTIONS]
    for entry in entries:
        entry.row_actions = [html for buttons in actions if (html := buttons.get(entry.pk))]
    full = reverse("admin:billing_ledgerentry_changelist") + f"?q={account.public_id}"
    return _panel("ledger.html", entries=entries, full_url=full, limit=LEDGER_TIMELINE)


def _holds_panel(request, account: Account) -> str | None:
    holds = list(
        Hold.objects.filter(account=account, status=Hold.Status.PENDING).select_related("credit_type").order_by("-id")
    )
    return _panel("holds.html", holds=holds)


def _keys_panel(request, account: Account) -> str:
    keys = list(ApiKey.objects.filter(account=account).order_by("-created_at"))
    return _panel("keys.html", keys=keys)


account_panel_register(_summary_panel, order=0)
account_panel_register(_ledger_panel, order=20)
account_panel_register(_holds_panel, order=30)
account_panel_register(_keys_panel, order=50)


class AccountWalletAdmin(accounts_admin.AccountAdmin):
    inlines = [*accounts_admin.AccountAdmin.inlines, WalletInline]
    actions = ["grant_credits", "adjust_balance", *accounts_admin.AccountAdmin.actions]
    change_form_template = "admin/accounts/account/change_form.html"
    list_display = [*accounts_admin.AccountAdmin.list_display[:-1], "balances", "created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("wallets__credit_type")

    @admin.display(description="balances")
    def balances(self, account: Account):
        """Available per credit type (the balance on hover, with what is held)."""
        wallets = sorted(account.wallets.all(), key=lambda wallet: wallet.credit_type.code)
        if not wallets:
            return "-"
        return format_html_join(
            mark_safe("<br>"),
            '<span class="money" title="balance {} - held {}">{}</span> {}',
            (
                (
                    money_display(w.balance, w.credit_type),
                    money_display(w.held, w.credit_type),
                    money_display(w.available, w.credit_type),
                    w.credit_type.code,
                )
                for w in wallets
            ),
        )

    def get_urls(self):
        statement = self.admin_site.admin_view(self.statement_view)
        return [
            path("<path:object_id>/statement.csv", statement, name="accounts_account_statement"),
            *super().get_urls(),
        ]

    def statement_view(self, request, object_id):
        """The account's statement as CSV (the API's GET .../statement?format=csv), for staff who may view it.

        `credit_type` (code), `from` and `to` (dates, both inclusive, UTC) come from the summary panel's form.
        """
        account = self.get_object(request, object_id)
        if account is None:
            raise Http404("No such account.")
        if not self.has_view_permission(request, account):
            raise PermissionDenied
        form = StatementForm(request.GET)
        if not form.is_valid():
            raise Http404("Bad statement query.")
        credit_type = form.cleaned_data["credit_type"]
        start, end = form.period()
        response = StreamingHttpResponse(
            statement_csv_lines(AccountStatement(account=account, credit_type=credit_type, start=start, end=end)),
            content_type="text/csv; charset=utf-8",
        )
        name = f"statement-{account.public_id}-{credit_type.code}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        account = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if account is not None:
            # Each opens its action's form (Django's intermediate page), for this account only.
            extra_context["account_buttons"] = [
                {"action": action, "label": label}
                for action, label, permission in [
                    ("grant_credits", "Grant credits", "accounts.grant_credits"),
                    ("adjust_balance", "Adjust balance", "billing.adjust_balance"),
                ]
                if request.user.has_perm(permission)
            ]
            extra_context["account_panels"] = [
                html for _, panel in ACCOUNT_PANELS if (html := panel(request, account)) is not None
            ]
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Grant credits to selected accounts", permissions=["grant_credits"])
    def grant_credits(self, request, queryset):
        return _money_action(
            self,
            request,
            queryset,
            form_class=GrantCreditsForm,
            permission="accounts.grant_credits",
            title="Grant credits",
            service=grant_create,
            kind=LedgerEntry.Kind.GRANT,
        )

    @admin.action(description="Adjust balance (staff correction)", permissions=["adjust_balance"])
    def adjust_balance(self, request, queryset):
        return _money_action(
            self,
            request,
            queryset,
            form_class=AdjustBalanceForm,
            permission="billing.adjust_balance",
            title="Adjust balance",
            service=adjustment_create,
            kind=LedgerEntry.Kind.ADJUSTMENT,
        )

    def has_grant_credits_permission(self, request) -> bool:
        return request.user.has_perm("accounts.grant_credits")

    def has_adjust_balance_permission(self, request) -> bool:
        return request.user.has_perm("billing.adjust_balance")


admin.site.unregister(Account)
admin.site.register(Account, AccountWalletAdmin)


@admin.register(Wallet)
class WalletAdmin(CompactColumnsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["account", "credit_type", "balance_money", "held_money", "available_money", "updated_at"]
    list_display_links = ["account"]
    list_select_related = ["account", "credit_type"]
    list_filter = ["credit_type"]
    search_fields = ["account__public_id", "account__external_id", "account__email"]
    autocomplete_fields = ["account"]
    fields = [
        "account",
        "credit_type",
        "balance_money",
        "held_money",
        "available_money",
        "lot_balance_money",
        "low_balance_money",
        "low_balance_armed",
        "updated_at",
    ]
    readonly_fields = fields

    balance_money = money_column("balance")
    held_money = money_column("held")
    available_money = money_column("available", value=lambda wallet: wallet.available)
    lot_balance_money = money_column("lot_balance", description="in grant lots")
    low_balance_money = money_column("low_balance", description="low-balance alert (empty: default)")
    actions = ["set_low_balance"]

    def has_alerts_permission(self, request) -> bool:
        return request.user.has_perm("billing.change_wallet")

    @admin.action(description="Set low-balance alert…", permissions=["alerts"])
    def set_low_balance(self, request, queryset):
        """An intermediate form (Django's delete_selected pattern); the threshold is set under each wallet's lock."""
        form = LowBalanceForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for wallet in queryset.select_related("account", "credit_type"):
                try:
                    wallet_alerts_set(
                        account=wallet.account,
                        credit_type=wallet.credit_type,
                        low_balance=form.cleaned_data["low_balance"],
                    )
                except DomainError as error:
                    self.message_user(request, f"{wallet.account}: {error.message}", messages.ERROR)
                    continue
                threshold = form.cleaned_data["low_balance"]
                said = (
                    f"at {money_display(threshold, wallet.credit_type)}"
                    if threshold is not None
                    else "back to the credit type's default"
                )
                self.message_user(
                    request, f"Low-balance alert for {wallet.account} ({wallet.credit_type.code}) {said}."
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Set low-balance alert",
            "form": form,
            "accounts": queryset,
            "action": request.POST.get("action"),
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/money_action.html", context)


# --- the entry page: panels above the fields ------------------------------------
# Like the account page's: billing's own (links, pricing), then those of the
# apps above (refunds adds a charge's refunds and what remains refundable).

ENTRY_PANELS: list[tuple[int, Callable]] = []


def entry_panel_register(panel: Callable, *, order: int) -> None:
    """Show `panel(request, entry)` (HTML, or None for nothing) on a ledger entry's page, by `order`."""
    ENTRY_PANELS.append((order, panel))
    ENTRY_PANELS.sort(key=lambda item: item[0])


def _entry_links_panel(request, entry: LedgerEntry) -> str:
    """Where the entry points: account, wallet, the entry it relates to, the hold it captured, its task's entries."""
    hold = Hold.objects.filter(capture_entry=entry).only("pk", "public_id", "status").first()
    task_url = reverse("admin:billing_ledgerentry_changelist") + "?" + urlencode({"q": entry.task_id})
    return render_to_string(
        "admin/billing/ledgerentry/panels/links.html",
        {"entry": entry, "hold": hold, "task_url": task_url if entry.task_id else None},
    )


def _entry_pricing_panel(request, entry: LedgerEntry) -> str | None:
    """What a priced charge was priced by: key → resolved key, the price version, the usage and the unit prices."""
    if not (entry.price_key or entry.price_version_id or entry.unit_prices or entry.usage):
        return None
    # Only what applied: the prices that are not zero, the usage that is not.
    unit_prices = [
        (name, unit_price_display(value)) for name, value in (entry.unit_prices or {}).items() if _nonzero_number(value)
    ]
    usage = entry.usage if isinstance(entry.usage, dict) else {}
    usage = [(name, value) for name, value in usage.items() if value not in (0, None, "", "0")]
    return render_to_string(
        "admin/billing/ledgerentry/panels/pricing.html",
        {"entry": entry, "unit_prices": unit_prices, "usage": usage},
    )


def _nonzero_number(value) -> bool:
    try:
        return Decimal(str(value)) != 0
    except (InvalidOperation, ValueError):
        return False


entry_panel_register(_entry_links_panel, order=0)
entry_panel_register(_entry_pricing_panel, order=10)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(CsvExportMixin, CompactColumnsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    # Kind, amount and balance come first after the id, so they are on screen at 1366 px.
    list_display = [
        "public_id",
        "kind",
        "amount_money",
        "balance_after_money",
        "credit_type_code",
        "account_short",
        "created_short",
        "route",
        "actor_display",
    ]
    list_select_related = ["account", "credit_type", "actor_api_key", "actor_user", "approver_user"]
    list_filter = ["kind", "credit_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = [
        "=public_id",
        "=task_id",
        "=idempotency_key",
        "=route",
        "=account__public_id",
        "=account__external_id",
        "=account__email",
    ]
    # Exact matches only, and no date_hierarchy: both would scan the whole
    # ledger (substring search, and a date drill-down that aggregates all
    # rows). The date filter in the sidebar uses the created_at index.
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
        "amount_money",
        "balance_after_money",
        "related_entry",
        "task_id",
        "route",
        "description",
        "idempotency_key",
        "metadata",
        "actor_api_key",
        "actor_user",
        "approver_user",
    ]
    readonly_fields = fields

    amount_money = money_column("amount")
    balance_after_money = money_column("balance_after", description="balance after")
    change_form_template = "admin/billing/ledgerentry/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        entry = (
            LedgerEntry.objects.filter(pk=object_id)
            .select_related("account", "wallet", "credit_type", "related_entry", "price_version")
            .first()
        )
        if entry is not None and self.has_view_permission(request, entry):
            extra_context["entry_panels"] = [
                html for _, panel in ENTRY_PANELS if (html := panel(request, entry)) is not None
            ]
        return super().change_view(request, object_id, form_url, extra_context)

    export_select_related = ["related_entry"]
    export_columns = [
        ("id", "public_id"),
        ("created_at", time_cell("created_at")),
        ("account", "account__public_id"),
        ("external_id", "account__external_id"),
        ("credit_type", "credit_type__code"),
        ("kind", "kind"),
        ("amount", money_cell("amount")),
        ("balance_after", money_cell("balance_after")),
        ("related_entry", "related_entry__public_id"),
        ("task_id", "task_id"),
        ("route", "route"),
        ("price_key", "price_key"),
        ("description", "description"),
        ("actor", lambda entry: LedgerEntryAdmin.actor_display(None, entry)),
    ]

    @admin.display(description="actor")
    def actor_display(self, entry: LedgerEntry) -> str:
        if entry.actor_user_id and entry.approver_user_id:
            return f"staff: {entry.actor_user}, approved by {entry.approver_user}"
        if entry.actor_user_id:
            return f"staff: {entry.actor_user}"
        if entry.actor_api_key_id:
            return f"key: {entry.actor_api_key.prefix}"
        return "system"


@admin.register(Hold)
class HoldAdmin(CsvExportMixin, CompactColumnsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Holds are resolved by the API and the expiry sweep, never edited here."""

    list_display = [
        "public_id",
        "status",
        "amount_money",
        "captured_amount_money",
        "credit_type_code",
        "account_short",
        "created_short",
        "on_expiry",
        "expires_short",
        "route",
    ]
    list_select_related = ["account", "credit_type"]
    list_filter = ["status", "on_expiry", "credit_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=public_id", "=task_id", "=route", "=account__public_id", "=account__external_id"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    fields = [
        "public_id",
        "status",
        "account",
        "wallet",
        "credit_type",
        "amount_money",
        "captured_amount_money",
        "requested_amount_money",
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

    amount_money = money_column("amount")
    captured_amount_money = money_column("captured_amount", description="captured")

    @admin.display(description="expires", ordering="expires_at")
    def expires_short(self, hold: Hold) -> str:
        return timezone.localtime(hold.expires_at).strftime("%Y-%m-%d %H:%M")

    requested_amount_money = money_column("requested_amount", description="requested amount")

    export_select_related = ["capture_entry"]
    export_columns = [
        ("id", "public_id"),
        ("created_at", time_cell("created_at")),
        ("account", "account__public_id"),
        ("external_id", "account__external_id"),
        ("credit_type", "credit_type__code"),
        ("status", "status"),
        ("amount", money_cell("amount")),
        ("captured_amount", money_cell("captured_amount")),
        ("requested_amount", money_cell("requested_amount")),
        ("on_expiry", "on_expiry"),
        ("expires_at", time_cell("expires_at")),
        ("resolved_at", time_cell("resolved_at")),
        ("capture_entry", "capture_entry__public_id"),
        ("task_id", "task_id"),
        ("route", "route"),
        ("price_key", "price_key"),
    ]


admin_search_register(LedgerEntry, ["public_id"], prefix="txn_")
admin_search_register(Hold, ["public_id"], prefix="hold_")
admin_search_register(LedgerEntry, ["task_id"])  # a task's entries: its list when several


# --- lots and daily limits -------------------------------------------------------


@admin.register(CreditLot)
class CreditLotAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Grants with a priority or an expiry, and what is left of them."""

    list_display = ["id", "wallet", "source", "amount_money", "remaining_money", "priority", "expires_at", "created_at"]
    list_select_related = ["wallet__account", "wallet__credit_type"]
    amount_money = money_column("amount", credit_type="wallet__credit_type")
    remaining_money = money_column("remaining", credit_type="wallet__credit_type")
    list_filter = [("expires_at", admin.DateFieldListFilter), "source", "wallet__credit_type"]
    search_fields = ["=wallet__account__public_id", "=wallet__account__external_id", "=entry__public_id"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(DailyLimitOverride)
class DailyLimitOverrideAdmin(MoneyFormMixin, admin.ModelAdmin):
    """Per-account daily limits in place of the plan's; an empty limit means none."""

    list_display = ["account", "credit_type", "daily_limit_money", "reason", "updated_at"]
    daily_limit_money = money_column("daily_limit", description="daily limit")
    list_select_related = ["account", "credit_type"]
    list_filter = ["credit_type"]
    search_fields = ["=account__public_id", "account__external_id", "account__email"]
    autocomplete_fields = ["account"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(DailyUsage)
class DailyUsageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["wallet", "day", "used_money"]
    used_money = money_column("used", credit_type="wallet__credit_type")
    list_select_related = ["wallet__account", "wallet__credit_type"]
    list_filter = [("day", admin.DateFieldListFilter)]
    search_fields = ["=wallet__account__public_id", "=wallet__account__external_id"]
    date_hierarchy = "day"
    paginator = EstimatedCountPaginator
    show_full_result_count = False
