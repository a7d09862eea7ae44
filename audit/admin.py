"""The staff audit trail in the admin: one read-only, filterable list, and each audited object's History.

* The list (Audit trail > Log entries) replaces auditlog's own admin: every
  change to an audited model (audit/registry.py), newest first, filtered by
  model, actor, object and date, searchable by object and actor. Nobody adds,
  edits or deletes a row here (the database refuses it too: audit 0001).
  Staff see it with the `auditlog.view_logentry` permission (superusers have it).
* Each audited model's admin is re-registered with `AuditHistoryMixin`, so
  the object's History page (Django's button on every change page) shows its
  trail (who, when, field before/after) above Django's own action log, and
  links to the list filtered to the object.

The audit app is registered after every app whose admin it extends
(INSTALLED_APPS order), so the admins it wraps are the final ones (billing's
account admin, refunds' ledger admin...).
"""

from __future__ import annotations

from auditlog import get_logentry_model
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from audit.registry import AUDITED
from audit.selectors import VIEW_PERMISSION, audit_entries_for, audit_object_filter_value, entry_changes
from billing.admin import EstimatedCountPaginator

LogEntry = get_logentry_model()


class ModelFilter(admin.SimpleListFilter):
    title = "model"
    parameter_name = "model"

    def lookups(self, request, model_admin):
        types = ContentType.objects.get_for_models(*(item.model for item in AUDITED))
        return sorted(((str(ct.pk), str(model._meta.verbose_name)) for model, ct in types.items()), key=lambda c: c[1])

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(content_type_id=self.value())


class ActorFilter(admin.SimpleListFilter):
    """Staff users (anyone who could have acted through the console), and "system" for no user."""

    title = "actor"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        staff = get_user_model().objects.filter(is_staff=True).order_by(get_user_model().USERNAME_FIELD)
        return [("system", "system (API, tasks, commands)"), *((str(u.pk), str(u)) for u in staff)]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if self.value() == "system":
            return queryset.filter(actor__isnull=True)
        return queryset.filter(actor_id=self.value())


class ObjectFilter(admin.SimpleListFilter):
    """One object's rows: `?object=<content type id>:<object id>` (each row and History page link to it)."""

    title = "object"
    parameter_name = "object"

    def lookups(self, request, model_admin):
        if self.value() is None:
            return []
        return [(self.value(), self._describe(self.value()))]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        content_type_id, _, object_id = self.value().partition(":")
        if not (content_type_id.isdigit() and object_id.isdigit()):
            return queryset.none()
        return queryset.filter(content_type_id=content_type_id, object_id=object_id)

    @staticmethod
    def _describe(value: str) -> str:
        content_type_id, _, object_id = value.partition(":")
        entry = LogEntry.objects.filter(content_type_id=content_type_id, object_pk=object_id).first()
        return entry.object_repr if entry is not None else value


if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)  # auditlog's own, which lets superusers delete rows


@admin.register(LogEntry)
class AuditLogEntryAdmin(admin.ModelAdmin):
    list_display = ["when", "actor_display", "action_display", "object_link", "changes_short"]
    list_select_related = ["content_type", "actor"]
    list_filter = [ModelFilter, ActorFilter, ObjectFilter, "action", ("timestamp", admin.DateFieldListFilter)]
    date_hierarchy = "timestamp"
    search_fields = ["object_repr", "=object_pk", "actor__username", "actor__email"]
    ordering = ["-timestamp", "-id"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = None  # nothing to do to audit rows but read them
    fields = ["when", "actor_display", "action_display", "object_link", "changes_table", "remote_addr", "cid"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="when", ordering="timestamp")
    def when(self, entry) -> str:
        return timezone.localtime(entry.timestamp).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description="who", ordering="actor")
    def actor_display(self, entry) -> str:
        return str(entry.actor) if entry.actor is not None else (entry.actor_email or "system")

    @admin.display(description="action", ordering="action")
    def action_display(self, entry) -> str:
        return entry.get_action_display()

    @admin.display(description="object")
    def object_link(self, entry):
        model = entry.content_type.model_class()
        label = f"{model._meta.verbose_name if model else entry.content_type.model}: {entry.object_repr}"
        every = (
            reverse("admin:auditlog_logentry_changelist")
            + "?object="
            + (audit_object_filter_value(entry.content_type_id, entry.object_pk))
        )
        try:
            page = reverse(
                f"admin:{entry.content_type.app_label}_{entry.content_type.model}_change", args=[entry.object_pk]
            )
        except NoReverseMatch:
            return format_html('{} <a href="{}" title="Every change to this object">(all)</a>', label, every)
        return format_html(
            '<a href="{}">{}</a> <a href="{}" title="Every change to this object">(all)</a>', page, label, every
        )

    @admin.display(description="changes (before → after)")
    def changes_short(self, entry):
        changes = entry_changes(entry)
        if not changes:
            return "-"
        more = ""
        if _from_nothing(entry) and len(changes) > CREATION_FIELDS_LISTED:
            # A creation names every field: the list shows the first few, the row's page all.
            more = format_html('<div class="audit-change">… and {} more</div>', len(changes) - CREATION_FIELDS_LISTED)
            changes = changes[:CREATION_FIELDS_LISTED]
        listed = format_html_join(
            "",
            '<div class="audit-change"><b>{}</b>: {} → {}</div>',
            ((c.field, _cut(c.before), _cut(c.after)) for c in changes),
        )
        return format_html("{}{}", listed, more)

    @admin.display(description="changes")
    def changes_table(self, entry):
        changes = entry_changes(entry, related=True)
        if not changes:
            return "-"
        return format_html(
            '<table class="audit-changes"><tr><th>field</th><th>before</th><th>after</th></tr>{}</table>',
            format_html_join(
                "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", ((c.field, c.before, c.after) for c in changes)
            ),
        )


CREATION_FIELDS_LISTED = 4


def _from_nothing(entry) -> bool:
    """A creation (not a new price version, whose row holds its difference from the one it supersedes)."""
    return entry.action == LogEntry.Action.CREATE and not (entry.additional_data or {}).get("supersedes")


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class AuditHistoryMixin:
    """An audited model's History page shows its audit trail (to staff allowed to read the trail)."""

    object_history_template = "admin/audit/object_history.html"

    def history_view(self, request, object_id, extra_context=None):
        context = dict(extra_context or {})
        if request.user.has_perm(VIEW_PERMISSION):
            obj = self.get_object(request, unquote(object_id))
            if obj is not None:
                entries = list(audit_entries_for(obj)[:200])
                context["audit_entries"] = [(entry, entry_changes(entry, related=True)) for entry in entries]
                context["audit_list_url"] = (
                    reverse("admin:auditlog_logentry_changelist")
                    + "?object="
                    + (audit_object_filter_value(ContentType.objects.get_for_model(type(obj)).pk, obj.pk))
                )
        return super().history_view(request, object_id, context)


def _with_audit_history(model) -> None:
    if not admin.site.is_registered(model):
        return
    current = admin.site.get_model_admin(model)
    if isinstance(current, AuditHistoryMixin):
        return
    audited = type(f"Audited{type(current).__name__}", (AuditHistoryMixin, type(current)), {})
    admin.site.unregister(model)
    admin.site.register(model, audited)


for _item in AUDITED:
    _with_audit_history(_item.model)
