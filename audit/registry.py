"""What the staff audit trail records: the one list of audited models (`AUDITED`).

django-auditlog writes one `auditlog.LogEntry` row per change of a registered
model: who (the staff user of the request, `audit.middleware`), when, the
action and the field-level before/after. Everything staff configure that is
not the ledger is registered here; the ledger has its own proof (append-only
entries, reconciliation).

Adding a model: one `Audited(...)` line in `AUDITED`; its admin then shows
the trail on its History page (audit/admin.py re-registers each audited
model's admin). Name in `exclude` every field that is a secret or derived
from one: it is then never read into a diff, stored or shown.
`tests/audit/test_registry.py` changes every listed model and expects a row,
and refuses a tracked field whose name looks secret.

Price versions: a price change inserts a new version rather than updating a
row (pricing/models.py), so auditlog would record it as a creation from
nothing. Instead the new version's row records its difference from the
version it supersedes (`_price_version_logged`): the before/after of the
price, as staff see it.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditlog import get_logentry_model
from auditlog.context import auditlog_disabled
from auditlog.diff import model_instance_diff
from auditlog.registry import auditlog
from auditlog.signals import pre_log
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Model, QuerySet
from django.db.models.signals import post_save

from accounts.models import Account, ApiKey
from approvals.models import ApprovalRequest, ApprovalThreshold
from billing.models import DailyLimitOverride
from payments.models import CreditPack
from pricing.models import CreditType, ModelAlias, Price
from subscriptions.models import Plan, Subscription

# The row's id (the audit row names its object) and the timestamps it keeps for itself (the audit row has its own).
COMMON_EXCLUDE = ("id", "created_at", "updated_at")


@dataclass(frozen=True)
class Audited:
    model: type[Model]
    exclude: tuple[str, ...] = ()  # never diffed, stored or shown: secrets, hashes, usage stamps
    m2m: tuple[str, ...] = ()  # many-to-many fields whose additions and removals are recorded


AUDITED: list[Audited] = [
    Audited(Account),
    # The secret is never stored; its digest is never audited. last_used_at is usage, not a staff change.
    Audited(ApiKey, exclude=("secret_hash", "last_used_at")),
    Audited(CreditType),
    Audited(Price),
    Audited(ModelAlias),
    Audited(Plan),
    Audited(Subscription),
    Audited(DailyLimitOverride),
    # Who may do what in the console is itself configuration staff change.
    Audited(get_user_model(), exclude=("password", "last_login"), m2m=("groups", "user_permissions")),
    Audited(Group, m2m=("permissions",)),
    # Four-eyes approvals: who asked, who decided and why; the thresholds that decide what waits.
    Audited(ApprovalRequest),
    Audited(ApprovalThreshold),
    # What is on sale and at what price.
    Audited(CreditPack),
]


def audit_history_objects(obj: Model) -> QuerySet | None:
    """The objects whose trail an object's History page shows with its own; None: just the object.

    A price version's page shows the whole price: every version of its key in its credit type.
    """
    if isinstance(obj, Price):
        return Price.objects.filter(key=obj.key, credit_type_id=obj.credit_type_id)
    return None


def audit_register_all() -> None:
    for item in AUDITED:
        if auditlog.contains(item.model):
            continue
        excluded = [*COMMON_EXCLUDE, *item.exclude]
        # Only the row's own columns: a creation's diff would otherwise name reverse relations too.
        columns = [field.name for field in item.model._meta.concrete_fields if field.name not in excluded]
        auditlog.register(item.model, include_fields=columns, exclude_fields=excluded, m2m_fields=set(item.m2m))
    pre_log.connect(_skip_price_creation, sender=Price, dispatch_uid="audit_skip_price_creation")
    post_save.connect(_price_version_logged, sender=Price, dispatch_uid="audit_price_version_logged")


def _skip_price_creation(sender, instance, action, **kwargs) -> bool | None:
    """auditlog's own entry for a new version (a diff from nothing) is replaced by `_price_version_logged`."""
    if action == get_logentry_model().Action.CREATE:
        return False
    return None


def _price_version_logged(sender, instance: Price, created: bool, raw: bool = False, **kwargs) -> None:
    if not created or raw or auditlog_disabled.get():
        return
    previous = (
        Price.objects.filter(key=instance.key, credit_type_id=instance.credit_type_id, version__lt=instance.version)
        .order_by("-version")
        .first()
    )
    changes = model_instance_diff(previous, instance, use_json_for_changes=settings.AUDITLOG_STORE_JSON_CHANGES)
    log_entry = get_logentry_model()
    log_entry.objects.log_create(
        instance,
        action=log_entry.Action.CREATE,
        changes=changes or {},
        force_log=True,
        additional_data={"supersedes": previous.public_id} if previous else None,
    )
