"""The staff audit trail for writes that send no signals.

django-auditlog (the `audit` app registers the models) records a change from
Django's save and delete signals. A few services change a row with a
conditional UPDATE instead, so that of two concurrent calls only one acts
(revoking a key, renewing a subscription's period); an UPDATE sends no
signal. They call `audit_update` when their claim succeeds, so the change is
on the trail all the same: the same field diff, excluded fields and actor
(the staff user of the request, `audit.middleware`) as a save would give it.
A model that is not registered records nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from auditlog import get_logentry_model
from auditlog.context import auditlog_disabled
from auditlog.diff import model_instance_diff
from auditlog.registry import auditlog
from django.conf import settings
from django.db.models import Model


def audit_update(*, before: Model, after: Model, fields: Iterable[str]) -> None:
    """Record `after`'s change from `before` in `fields` (the UPDATE's columns) on the audit trail."""
    if auditlog_disabled.get() or not auditlog.contains(type(after)):
        return
    changes = model_instance_diff(
        before, after, fields_to_check=list(fields), use_json_for_changes=settings.AUDITLOG_STORE_JSON_CHANGES
    )
    if changes:
        log_entry = get_logentry_model()
        log_entry.objects.log_create(after, action=log_entry.Action.UPDATE, changes=changes)
