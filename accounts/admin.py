"""Admin for accounts and API keys, with the staff grant and adjustment actions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from accounts.forms import AdjustBalanceForm, GrantCreditsForm
from accounts.models import Account, ApiKey
from accounts.services import account_set_status, api_key_create, api_key_revoke
from billing.models import Wallet
from billing.services import Actor, adjustment_create, grant_create
from config.errors import DomainError


class WalletInline(admin.TabularInline):
    model = Wallet
    fields = ["credit_type", "balance", "held", "available", "updated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    @admin.display(description="available")
    def available(self, wallet: Wallet):
        return wallet.available

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _money_action(modeladmin, request, queryset, *, form_class, permission, title, service):
    """An admin action with an intermediate form (Django's delete_selected pattern).

    `service` (grant_create, adjustment_create) is called once per selected
    account with the form's credit type, amount and reason, the staff user as actor.
    """
    if not request.user.has_perm(permission):
        raise PermissionDenied
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        done = 0
        for account in queryset:
            try:
                data = form.cleaned_data
                service(
                    account=account,
                    credit_type=data["credit_type"],
                    amount=data["amount"],
                    reason=data["reason"],
                    actor=Actor(user=request.user),
                )
                done += 1
            except DomainError as error:
                modeladmin.message_user(request, f"{account}: {error.message}", messages.ERROR)
        if done:
            modeladmin.message_user(request, f"{title}: done for {done} account(s).", messages.SUCCESS)
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
    return TemplateResponse(request, "admin/accounts/money_action.html", context)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["public_id", "external_id", "name", "email", "status", "created_at"]
    list_filter = ["status", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=public_id", "external_id", "email", "name"]
    readonly_fields = ["public_id", "created_at", "updated_at"]
    inlines = [WalletInline]
    actions = ["grant_credits", "adjust_balance", "suspend", "reactivate"]

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
        )

    @admin.action(description="Suspend selected accounts", permissions=["change"])
    def suspend(self, request, queryset):
        for account in queryset:
            account_set_status(account=account, status=Account.Status.SUSPENDED)
        self.message_user(request, "Suspended.", messages.SUCCESS)

    @admin.action(description="Reactivate selected accounts", permissions=["change"])
    def reactivate(self, request, queryset):
        for account in queryset:
            account_set_status(account=account, status=Account.Status.ACTIVE)
        self.message_user(request, "Reactivated.", messages.SUCCESS)

    def has_grant_credits_permission(self, request) -> bool:
        return request.user.has_perm("accounts.grant_credits")

    def has_adjust_balance_permission(self, request) -> bool:
        return request.user.has_perm("billing.adjust_balance")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # accounts with a ledger are never deleted; suspend instead


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "kind", "account", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["kind", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["account"]
    search_fields = ["name", "=prefix", "=public_id", "=account__public_id", "account__external_id"]
    autocomplete_fields = ["account"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "kind", "account"]
        return [
            "public_id",
            "name",
            "kind",
            "account",
            "prefix",
            "created_at",
            "created_by",
            "last_used_at",
            "revoked_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["public_id", "kind", "account", "prefix", "created_at", "created_by", "last_used_at", "revoked_at"]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        # The secret is generated by the service and shown once, on the next page.
        issued = api_key_create(kind=obj.kind, account=obj.account, name=obj.name, created_by=request.user)
        obj.pk = issued.api_key.pk
        obj.__dict__.update(
            {k: getattr(issued.api_key, k) for k in ["public_id", "prefix", "secret_hash", "created_at"]}
        )
        request._issued_api_key_secret = issued.secret

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_issued_api_key_secret", None)
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "api_key": obj,
            "secret": secret,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/accounts/apikey_created.html", context)

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
        self.message_user(request, "Revoked.", messages.SUCCESS)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # keys are revoked, not deleted: ledger entries refer to them
