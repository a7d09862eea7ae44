"""The price catalogue: what every model call and action costs.

Design
------
* A `CreditType` is what amounts are counted in (`credits`, made by a
  migration, and any others), with the decimal places its amounts may carry.
  Pricing defines credit types and their prices; billing keeps the wallets
  and the ledger in them.
* A `Price` row is one *version* of the price of one key in one credit type.
  Changing a price inserts a new version (`pricing.services.price_create`);
  old versions are never updated or deleted (a trigger in migration 0002
  refuses it), and every priced ledger entry points at the exact version it
  was charged with. At any instant the version with the latest
  `effective_from` that is not in the future applies (ties: higher version).
* `ModelAlias` maps an alias to a canonical key before pricing. An alias
  cycle, or an alias that leads to no price, cannot be saved.
* A key is free only if its catalogue entry says `is_free`: a free version
  has every unit price at zero and a paid one has at least one above zero
  (CHECK constraints), so "free" can never be inferred from a zero.
* `CatalogueRevision` is one row whose counter goes up in the same
  transaction as every catalogue change; each process checks it before
  using its in-process cache (`pricing.selectors`), so a change reaches
  every worker by its next charge.
* `PricingAnomaly` records what must not pass silently but cannot be a
  ledger entry: a charge of a paid key that settled at zero.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.ids import public_id
from accounts.models import Account
from config.money import MoneyField

KEY_MAX_LENGTH = 200
# Lower-case model ids and action names: `openai/gpt-4o`, `image.generate`,
# `meta-llama/llama-3-8b-instruct:free`, `anthropic/claude-3.5-sonnet@20240620`.
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._:/@+-]{0,199}$")
UNIT_PRICE_FIELDS = ("per_request", "per_1k_input_tokens", "per_1k_output_tokens", "per_unit")


class CreditType(models.Model):
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    scale = models.PositiveSmallIntegerField(
        default=2, help_text="Decimal places amounts of this type may carry (0-9)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(scale__gte=0, scale__lte=9), name="credittype_scale_0_9"),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.scale)


def validate_key(value: str) -> None:
    if not isinstance(value, str) or not KEY_PATTERN.match(value):
        raise ValidationError(
            "A key is 1-200 lower-case letters, digits and . _ : / @ + - (starting with a letter or digit).",
            code="invalid_key",
        )


def price_public_id() -> str:
    return public_id("prv", 20)


def anomaly_public_id() -> str:
    return public_id("pan", 20)


class CatalogueRevision(models.Model):
    """A single row (id=1): its stamp changes in the transaction of every catalogue change.

    A random stamp rather than a counter: a rolled-back change or a restored
    backup can never bring back a stamp some process has cached other
    contents under.
    """

    stamp = models.CharField(max_length=32, default="initial")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="pricing_revision_single_row")]

    def __str__(self) -> str:
        return f"catalogue revision {self.stamp}"


class Price(models.Model):
    """One version of the price of `key` in `credit_type`. Insert-only."""

    public_id = models.CharField(max_length=32, default=price_public_id, editable=False)  # price_public_id_unique
    key = models.CharField(max_length=KEY_MAX_LENGTH, validators=[validate_key])
    # No index of its own: both indexes below carry it after the key, and no
    # query looks prices up by credit type alone (credit types are never deleted).
    credit_type = models.ForeignKey(CreditType, on_delete=models.PROTECT, related_name="+", db_index=False)
    version = models.PositiveIntegerField(editable=False)
    effective_from = models.DateTimeField(default=timezone.now)
    is_free = models.BooleanField(default=False, help_text="Only a free catalogue entry makes a key free.")
    per_request = MoneyField(default=Decimal(0))
    per_1k_input_tokens = MoneyField(default=Decimal(0))
    per_1k_output_tokens = MoneyField(default=Decimal(0))
    per_unit = MoneyField(default=Decimal(0))
    unit_name = models.CharField(max_length=32, blank=True, default="", help_text="image, second, page…")
    note = models.CharField(max_length=500, blank=True, default="", help_text="Why this version exists.")
    created_at = models.DateTimeField(auto_now_add=True)
    # No index of its own: deleting a user checks it with a scan of a small table.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )

    class Meta:
        ordering = ["key", "credit_type_id", "-version"]
        indexes = [
            # The version in force for a key: the catalogue cache's load and look-ups.
            models.Index(fields=["key", "credit_type", "-effective_from"], name="price_current_lookup"),
        ]
        constraints = [
            # Also the next version number (latest by -version) and a key's history (admin).
            models.UniqueConstraint(fields=["key", "credit_type", "version"], name="price_version_unique"),
            # A public id names one version (ledger entries show it). Nothing looks
            # one up by prefix, hence a constraint rather than unique=True and its LIKE index.
            models.UniqueConstraint(fields=["public_id"], name="price_public_id_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="price_version_positive"),
            models.CheckConstraint(
                condition=Q(
                    per_request__gte=0, per_1k_input_tokens__gte=0, per_1k_output_tokens__gte=0, per_unit__gte=0
                ),
                name="price_unit_prices_non_negative",
            ),
            # Free means every unit price is zero; paid means at least one is not.
            models.CheckConstraint(
                condition=(
                    Q(is_free=True, per_request=0, per_1k_input_tokens=0, per_1k_output_tokens=0, per_unit=0)
                    | Q(is_free=False)
                    & (
                        Q(per_request__gt=0)
                        | Q(per_1k_input_tokens__gt=0)
                        | Q(per_1k_output_tokens__gt=0)
                        | Q(per_unit__gt=0)
                    )
                ),
                name="price_free_iff_all_zero",
            ),
            models.CheckConstraint(condition=Q(per_unit=0) | ~Q(unit_name=""), name="price_unit_named"),
        ]

    def __str__(self) -> str:
        return f"{self.key} v{self.version} ({self.credit_type_id})"

    def unit_prices(self) -> dict[str, Decimal]:
        return {name: getattr(self, name) for name in UNIT_PRICE_FIELDS}

    def clean(self) -> None:
        # Imported here: the rules live in services so the model, the admin
        # form and the importer all apply exactly the same ones.
        from pricing.services import price_validate

        price_validate(self)


class ModelAlias(models.Model):
    """`alias` is priced as `target` (itself a key, or another alias)."""

    alias = models.CharField(max_length=KEY_MAX_LENGTH, validators=[validate_key])  # model_alias_unique
    target = models.CharField(max_length=KEY_MAX_LENGTH, validators=[validate_key])
    note = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["alias"]
        verbose_name_plural = "model aliases"
        constraints = [
            # Also alias_set's and price_validate's look-up by alias.
            models.UniqueConstraint(fields=["alias"], name="model_alias_unique"),
            models.CheckConstraint(condition=~Q(alias=models.F("target")), name="alias_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.alias} -> {self.target}"

    def clean(self) -> None:
        from pricing.services import alias_validate

        alias_validate(self)


class PricingAnomaly(models.Model):
    """A priced charge that must not pass silently (e.g. a paid key settled at zero)."""

    class Kind(models.TextChoices):
        ZERO_COST = "zero_cost", "Paid key settled at zero"

    # No foreign key is indexed: nothing looks anomalies up by account, credit
    # type or price version, and none of those is ever deleted.
    public_id = models.CharField(max_length=32, default=anomaly_public_id, editable=False)  # anomaly_public_id_unique
    kind = models.CharField(max_length=32, choices=Kind.choices)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    credit_type = models.ForeignKey(CreditType, on_delete=models.PROTECT, related_name="+", db_index=False)
    price_key = models.CharField(max_length=KEY_MAX_LENGTH)
    resolved_key = models.CharField(max_length=KEY_MAX_LENGTH)
    price_version = models.ForeignKey(
        Price, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    price_source = models.CharField(max_length=16)
    usage = models.JSONField(default=dict)
    task_id = models.CharField(max_length=255, blank=True, default="")
    route = models.CharField(max_length=255, blank=True, default="")
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # Staff mark an anomaly resolved once dealt with (`anomaly_resolve`); the dashboard counts the rest.
    resolved_at = models.DateTimeField(null=True, blank=True, help_text="When staff marked it resolved.")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "pricing anomalies"
        permissions = [("resolve_pricinganomaly", "Can mark pricing anomalies resolved")]
        indexes = [
            # The admin's list by kind, newest first.
            models.Index(fields=["kind", "-id"], name="pricing_anomaly_kind"),
            # The dashboard's count and latest of the open ones, however many were resolved.
            models.Index(fields=["-id"], condition=Q(resolved_at__isnull=True), name="pricing_anomaly_open"),
        ]
        constraints = [
            # As price_public_id_unique: the id is shown to people; no LIKE index.
            models.UniqueConstraint(fields=["public_id"], name="anomaly_public_id_unique"),
            # Resolved means by whom and when: both or neither.
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True, resolved_by__isnull=True)
                | Q(resolved_at__isnull=False, resolved_by__isnull=False),
                name="anomaly_resolved_attributed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.price_key}"
