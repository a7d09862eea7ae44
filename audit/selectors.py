"""Reads of the staff audit trail: an object's entries, and each entry's changes as people read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from auditlog import get_logentry_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Model, QuerySet
from django.utils import timezone
from django.utils.text import capfirst

from audit.registry import audit_history_objects
from config.money import unit_price_display

VIEW_PERMISSION = "auditlog.view_logentry"


@dataclass(frozen=True)
class Change:
    field: str  # as the admin labels it
    before: str
    after: str


def audit_entries_for(obj: Model) -> QuerySet:
    """`obj`'s audit rows, newest first (for a price version: every version of the price)."""
    log_entry = get_logentry_model()
    related = audit_history_objects(obj)
    content_type = ContentType.objects.get_for_model(type(obj))
    entries = log_entry.objects.filter(content_type=content_type)
    if related is None:
        entries = entries.filter(object_id=obj.pk)
    else:
        entries = entries.filter(object_id__in=related.values("pk"))
    return entries.select_related("actor", "content_type").order_by("-timestamp", "-id")


def audit_object_filter_value(content_type_id: int, object_id: int | str) -> str:
    """The audit list's `object` filter value for one object (audit.admin.ObjectFilter)."""
    return f"{content_type_id}:{object_id}"


def entry_changes(entry, *, related: bool = False) -> list[Change]:
    """The entry's field-level before/after, labelled and formatted as the admin shows the fields.

    Choices read as their labels, amounts with every significant place and no
    nine-place tail (`unit_price_display`), many-to-many changes as
    "added"/"removed" and the objects. "None" (auditlog's word for no value)
    reads "-". `related`: a foreign key reads as the object it names (a query
    each: for one entry's page, not for a list), else as its id.
    """
    model = entry.content_type.model_class()
    found = []
    for name, change in sorted((entry.changes_dict or {}).items()):
        field = _field(model, name)
        label = capfirst(str(getattr(field, "verbose_name", name)))
        if isinstance(change, dict) and change.get("type") == "m2m":
            verb = "added" if change.get("operation") == "add" else "removed"
            found.append(Change(label, "", f"{verb}: {', '.join(change.get('objects', []))}"))
            continue
        before, after = (_value(field, value, related=related) for value in change)
        found.append(Change(label, before, after))
    return found


def _field(model, name: str):
    if model is None:
        return None
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


def _value(field, value, *, related: bool) -> str:
    if value is None or value == "None":
        return "-"
    text = str(value)
    if field is None:
        return text
    if field.many_to_one or field.one_to_one:
        target = field.related_model._default_manager.filter(pk=text).first() if related else None
        return str(target) if target is not None else f"#{text}"
    if getattr(field, "choices", None):
        return str(dict(field.flatchoices).get(text, text))
    if isinstance(field, models.DateTimeField):
        return _moment(text)
    if isinstance(field, models.DecimalField):
        try:
            return unit_price_display(Decimal(text))
        except InvalidOperation:
            return text
    return text


def _moment(text: str) -> str:
    """auditlog stores a time in UTC without its zone: shown in local time, to the second."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")
