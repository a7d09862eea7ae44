"""The credit ledger.

Design
------
* A `Wallet` holds one account's balance in one `CreditType`. The balance is
  stored on the row (O(1) reads, one row to lock) and is *proven* by the
  append-only `LedgerEntry` table: for every wallet, balance == sum(amount).
  `manage.py reconcile` checks exactly that.
* Every balance change goes through the ledger core (`billing.core.posting`),
  which locks the wallet row (`SELECT ... FOR NO KEY UPDATE`), updates it and inserts the ledger
  entry in one transaction: both or neither.
* The database enforces what it can: balance >= 0, held within balance,
  non-zero entry amounts, unique idempotency keys per API key, and a trigger
  that refuses UPDATE and DELETE on the ledger (migration 0002).
* Money is `Decimal` in NUMERIC(28, 9) columns, quantised to the credit
  type's scale by the services; floats never touch it.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from accounts.ids import public_id
from accounts.models import Account, ApiKey
from config.money import MoneyField, money_display
from pricing.models import CreditType


def ledger_entry_id() -> str:
    return public_id("txn", 24)


class Wallet(models.Model):
    # No index of their own: the unique (account, credit_type) leads with the
    # account, and no query looks wallets up by credit type alone.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="wallets", db_index=False)
    credit_type = models.ForeignKey(CreditType, on_delete=models.PROTECT, related_name="wallets", db_index=False)
    balance = MoneyField(default=Decimal(0))
    held = MoneyField(default=Decimal(0), help_text="Reserved by pending holds; available = balance - held.")
    # The part of `balance` that sits in CreditLots (grants with a priority or
    # an expiry); the rest is the plain pool. Zero for most wallets, which lets
    # a charge skip the lot tables entirely (see billing.core.Posting._lots_debit).
    lot_balance = MoneyField(default=Decimal(0), help_text="Part of the balance in grant lots (priority or expiry).")
    # The hash of the wallet's newest ledger entry (billing/chain.py), set by the
    # same UPDATE as the balance; empty while the wallet has no entry.
    chain_head = models.CharField(max_length=64, blank=True, default="", editable=False)
    # Balance alerts (billing/alerts.py), read with the wallet lock at no extra cost: this wallet's
    # low-balance threshold (null: the credit type's default from settings), and whether
    # `balance.low` may fire (armed while available is above the threshold, disarmed when it fires).
    low_balance = MoneyField(null=True, blank=True, help_text="Low-balance alert threshold; empty: the default.")
    low_balance_armed = models.BooleanField(default=False)
    # The available balance below which a debit may start an auto-recharge (set by the payments
    # app from its settings; null: none). On the wallet so the lock reads it: a debit that stays
    # above it (nearly all) costs the recharge check no statement under the lock.
    recharge_below = MoneyField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Also the index of every debit's wallet lock (WHERE account_id = %s AND
            # credit_type_id = %s) and of an account's wallets.
            models.UniqueConstraint(fields=["account", "credit_type"], name="wallet_one_per_account_credit_type"),
            models.CheckConstraint(condition=Q(balance__gte=0), name="wallet_balance_non_negative"),
            models.CheckConstraint(condition=Q(held__gte=0), name="wallet_held_non_negative"),
            models.CheckConstraint(condition=Q(held__lte=F("balance")), name="wallet_held_within_balance"),
            models.CheckConstraint(condition=Q(lot_balance__gte=0), name="wallet_lot_balance_non_negative"),
            models.CheckConstraint(
                condition=Q(lot_balance__lte=F("balance")), name="wallet_lot_balance_within_balance"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.credit_type_id}"

    @property
    def available(self) -> Decimal:
        return self.balance - self.held


class LedgerEntry(models.Model):
    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        CHARGE = "charge", "Charge"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"
        EXPIRY = "expiry", "Expiry"

    # Every index here is written by every money operation, so each one must
    # serve a query (docs/performance.md, "Indexes"). Foreign keys get no index of their own
    # unless a query looks entries up by them; wallets, accounts, credit types,
    # API keys and price versions are never deleted, so no PROTECT check needs one.
    public_id = models.CharField(max_length=32, default=ledger_entry_id, editable=False)  # ledger_public_id_unique
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries", db_index=False)
    # Denormalised from the wallet so an account's history is one index range
    # scan, and so the table can be distributed by account.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="ledger_entries", db_index=False)
    credit_type = models.ForeignKey(CreditType, on_delete=models.PROTECT, related_name="+", db_index=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = MoneyField(help_text="Signed: positive adds credits, negative removes them.")
    balance_after = MoneyField()
    # The entry this one relates to: a refund points at its charge.
    related_entry = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="related_entries", db_index=False
    )
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    task_id = models.CharField(max_length=255, blank=True, default="")
    route = models.CharField(max_length=255, blank=True, default="")
    description = models.CharField(max_length=1000, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    actor_api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # The second staff user who approved actor_user's request (four-eyes approvals).
    approver_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # A charge priced from the catalogue records what it was priced by: the
    # key as asked, the key it resolved to, the exact price version (none for
    # environment and default prices), the unit prices applied and the usage.
    price_key = models.CharField(max_length=200, blank=True, default="")
    resolved_key = models.CharField(max_length=200, blank=True, default="")
    price_version = models.ForeignKey(
        "pricing.Price", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries", db_index=False
    )
    price_source = models.CharField(max_length=16, blank=True, default="")
    unit_prices = models.JSONField(null=True, blank=True)
    usage = models.JSONField(null=True, blank=True)
    # Set in Python before the INSERT (not auto_now_add, which would set it after):
    # the entry's hash covers it.
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=False)
    # The hash chain (billing/chain.py): HMAC-SHA256 under key `key_id` over the
    # canonical fields and the previous entry's hash in the same wallet.
    key_id = models.CharField(max_length=16, blank=True, default="", editable=False)
    entry_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    # The event this entry is (`charge.created`, `grant.created`, `lot.expired`), if any: a ledger entry's
    # event is a column of the entry, listed by the events feed (events.models), not a row of its own.
    event_type = models.CharField(max_length=64, null=True, blank=True, editable=False)

    class Meta:
        verbose_name_plural = "ledger entries"
        ordering = ["-id"]
        indexes = [
            # An account's history, newest first (GET /accounts/{id}/transactions and
            # its filters; admin search =account__...; reconcile --account).
            models.Index(fields=["account", "-id"], name="ledger_account_history"),
            # Admin search =task_id and the API's ?task_id= filter; most entries have none.
            models.Index(fields=["task_id"], name="ledger_task_id", condition=~Q(task_id="")),
            # The admin's date filter over the whole ledger.
            models.Index(fields=["created_at"], name="ledger_created_at"),
            # A charge's refunds: the refund trigger's and refund_issue's sum, and
            # reconciliation's over-refund join. Only refunds (and expiries) have one.
            models.Index(
                fields=["related_entry"], name="ledger_related_entry", condition=Q(related_entry__isnull=False)
            ),
            # Django's PROTECT check when a staff user is deleted; API entries have no user.
            models.Index(fields=["actor_user"], name="ledger_actor_user", condition=Q(actor_user__isnull=False)),
            models.Index(
                fields=["approver_user"], name="ledger_approver_user", condition=Q(approver_user__isnull=False)
            ),
        ]
        constraints = [
            # Also the look-up of an entry by its public id (refunds, API, admin search).
            models.UniqueConstraint(fields=["public_id"], name="ledger_public_id_unique"),
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_non_zero"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="ledger_balance_after_non_negative"),
            models.CheckConstraint(
                condition=(
                    Q(kind="grant", amount__gt=0)
                    | Q(kind="charge", amount__lt=0)
                    | Q(kind="refund", amount__gt=0)
                    | Q(kind="expiry", amount__lt=0)
                    | Q(kind="adjustment")
                ),
                name="ledger_amount_sign_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["grant", "charge", "refund", "adjustment", "expiry"]),
                name="ledger_kind_valid",
            ),
        ]
        permissions = [("refund_charge", "Can refund charges"), ("adjust_balance", "Can adjust balances")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.kind} {money_display(self.amount, self.credit_type)}"


class IdempotencyRecord(models.Model):
    """The first answer to a money-moving POST, replayed for retries with the same key.

    Written in the same transaction as the effect it records, so a crash can
    never leave an effect without its record or a record without its effect.
    """

    # The account the request acts on: keys are scoped to (account, API key),
    # so the table can be distributed by account with the ledger (docs/operations.md,
    # "Scaling out"). Null only on records made before this column existed.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, null=True, related_name="+", db_index=False)
    # No index of its own: API keys are revoked, never deleted, and the claim
    # goes through the unique key below.
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=255)
    endpoint = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    # Null only inside the claiming transaction; set before it commits.
    response_status = models.PositiveSmallIntegerField(null=True)
    # The answer's exact bytes (application/json), replayed verbatim: a retry
    # gets the first response byte for byte, key order and spacing included.
    response_raw = models.BinaryField(null=True)
    # Records made before response_raw existed (JSONB: replayed re-rendered,
    # keys reordered); no longer written.
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Also the claim: INSERT ... ON CONFLICT (account_id, api_key_id, key).
            models.UniqueConstraint(fields=["account", "api_key", "key"], name="idempotency_key_unique_per_account"),
        ]
        # The purge of expired records (created_at < cutoff).
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_at")]

    def __str__(self) -> str:
        return f"{self.key} -> {self.response_status}"


def hold_public_id() -> str:
    return public_id("hold", 24)


class Hold(models.Model):
    """Credits reserved for a job in progress: pending, then captured, released or expired.

    A pending hold adds its `amount` to `Wallet.held`, so `available` shrinks
    while the balance does not. Resolving it removes the amount from `held`
    and, on capture (or expiry with `on_expiry=capture`), writes one charge
    entry of `captured_amount` (none when that is zero). Every transition
    locks the wallet first and moves the row out of `pending` with a
    conditional update, so exactly one of capture, release and expiry wins.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CAPTURED = "captured", "Captured"
        RELEASED = "released", "Released"
        EXPIRED = "expired", "Expired"

    class OnExpiry(models.TextChoices):
        RELEASE = "release", "Release"
        CAPTURE = "capture", "Capture"

    # Foreign keys without an index of their own, as on LedgerEntry: no query
    # looks holds up by wallet, credit type or API key, and none of them is deleted.
    public_id = models.CharField(max_length=32, default=hold_public_id, editable=False)  # hold_public_id_unique
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="holds", db_index=False)
    # Denormalised like LedgerEntry.account: an account's holds are one index scan.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds", db_index=False)
    credit_type = models.ForeignKey(CreditType, on_delete=models.PROTECT, related_name="+", db_index=False)
    amount = MoneyField(help_text="Reserved while pending.")
    captured_amount = MoneyField(default=Decimal(0), help_text="Charged when resolved (0 unless captured).")
    # What the client asked to capture; more than `captured_amount` when the
    # wallet could not cover it all (the capture takes what it can).
    requested_amount = MoneyField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    on_expiry = models.CharField(max_length=16, choices=OnExpiry.choices, default=OnExpiry.RELEASE)
    expires_at = models.DateTimeField()
    price_key = models.CharField(max_length=255, blank=True, default="")
    estimated_usage = models.JSONField(null=True, blank=True)
    capture_usage = models.JSONField(null=True, blank=True)
    price_version = models.CharField(max_length=64, blank=True, default="")
    task_id = models.CharField(max_length=255, blank=True, default="")
    route = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    release_reason = models.CharField(max_length=1000, blank=True, default="")
    # Unique (one hold per capture entry); its index also finds the hold of a charge entry.
    capture_entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="captured_hold"
    )
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    actor_api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # An account's holds, newest first (GET /accounts/{id}/holds; admin
            # search =account__...; reconcile --account's held sum).
            models.Index(fields=["account", "-id"], name="hold_account_history"),
            # The expiry sweep reads only pending holds by expiry time; resolved
            # holds (almost all of them) stay out of this index. Also
            # reconciliation's stale holds and its held sum (status = 'pending').
            models.Index(fields=["status", "expires_at"], name="hold_pending_expiry", condition=Q(status="pending")),
            # Admin search =task_id and the API's ?task_id= filter.
            models.Index(fields=["task_id"], name="hold_task_id", condition=~Q(task_id="")),
            # Django's PROTECT check when a staff user is deleted; API holds have no user.
            models.Index(fields=["actor_user"], name="hold_actor_user", condition=Q(actor_user__isnull=False)),
        ]
        constraints = [
            # Also the look-up of a hold by its public id (capture, release, API, admin search).
            models.UniqueConstraint(fields=["public_id"], name="hold_public_id_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_amount_positive"),
            models.CheckConstraint(condition=Q(captured_amount__gte=0), name="hold_captured_non_negative"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "captured", "released", "expired"]), name="hold_status_valid"
            ),
            models.CheckConstraint(condition=Q(on_expiry__in=["release", "capture"]), name="hold_on_expiry_valid"),
            models.CheckConstraint(
                condition=(
                    Q(status="pending", resolved_at__isnull=True)
                    | (~Q(status="pending") & Q(resolved_at__isnull=False))
                ),
                name="hold_resolved_at_iff_resolved",
            ),
            models.CheckConstraint(
                condition=Q(captured_amount=0) | Q(status__in=["captured", "expired"]),
                name="hold_only_captures_charge",
            ),
            models.CheckConstraint(
                condition=Q(captured_amount=0, capture_entry__isnull=True)
                | Q(captured_amount__gt=0, capture_entry__isnull=False),
                name="hold_capture_entry_iff_charged",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.status} {money_display(self.amount, self.credit_type)}"


class ReconciliationRun(models.Model):
    """One pass of `manage.py reconcile`: what was checked and what disagreed.

    Reconciliation reports and never repairs: a staff correction is an
    `adjustment` entry made through the admin with a reason.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        CLEAN = "clean", "Clean"
        DRIFT = "drift", "Drift found"
        FAILED = "failed", "Failed"

    # Indexed: the admin's run search by account (=account__public_id).
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="Empty: every wallet."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=32, blank=True, default="", help_text="command, task, admin…")
    wallets_checked = models.PositiveBigIntegerField(default=0)
    discrepancy_count = models.PositiveBigIntegerField(default=0)
    # Only the first CREDITLEDGER_RECONCILE_MAX_RECORDED discrepancies are
    # stored row by row, so a run over a badly broken ledger stays bounded.
    truncated = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["running", "clean", "drift", "failed"]), name="reconrun_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"reconciliation #{self.pk} {self.status}"


class ReconciliationDiscrepancy(models.Model):
    """One disagreement found by a reconciliation run. Amounts are exact: admin-only."""

    class Kind(models.TextChoices):
        BALANCE_MISMATCH = "balance_mismatch", "Balance differs from the ledger sum"
        HELD_MISMATCH = "held_mismatch", "Held differs from the pending holds"
        NEGATIVE_BALANCE = "negative_balance", "Negative balance or held"
        OVER_REFUNDED = "over_refunded", "Charge refunded beyond its amount"
        STALE_HOLD = "stale_hold", "Pending hold past its expiry"
        LOT_MISMATCH = "lot_mismatch", "Lot balance differs from the grant lots"
        STALE_LOT = "stale_lot", "Grant lot past its expiry with credits left"
        CHAIN_BROKEN = "chain_broken", "Entry hash or link does not verify"
        CHAIN_HEAD_MISMATCH = "chain_head_mismatch", "Wallet's chain head is not its newest entry's hash"
        BALANCE_AFTER_MISMATCH = "balance_after_mismatch", "Entry's balance_after is not the previous plus its amount"
        CHECKPOINT_REGRESSED = "checkpoint_regressed", "Chain moved backwards against a checkpoint"
        REFUND_LOG_MISMATCH = "refund_log_mismatch", "Refund log disagrees with its refund entry"
        ALLOWANCE_MISMATCH = "allowance_mismatch", "Allowance grant disagrees with its ledger entry"

    # No index of its own: recondisc_run_kind leads with the run.
    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="discrepancies", db_index=False)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # Plain references rather than constraints to the checked rows: a record
    # of drift must never stop anything else from being written or deleted.
    # Both indexed for the admin's search (=wallet__account__..., =ledger_entry__public_id).
    wallet = models.ForeignKey(Wallet, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False)
    ledger_entry = models.ForeignKey(
        LedgerEntry, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    hold_id = models.BigIntegerField(null=True, blank=True)
    lot_id = models.BigIntegerField(null=True, blank=True)
    expected = MoneyField(null=True, blank=True)
    actual = MoneyField(null=True, blank=True)
    detail = models.CharField(max_length=1000, blank=True, default="")

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "reconciliation discrepancies"
        # A run's discrepancies, by kind (the run's admin page, the kind filter).
        indexes = [models.Index(fields=["run", "kind"], name="recondisc_run_kind")]

    def __str__(self) -> str:
        return f"{self.kind} wallet={self.wallet_id}"


class LedgerCheckpoint(models.Model):
    """Every wallet's chain head and entry count at one moment, signed (billing/checkpoints.py).

    Recorded by each full reconciliation run; `manage.py ledger_checkpoint`
    prints one for keeping outside the database. A later chain that is
    shorter, or whose entry at a checkpointed position has another hash, was
    rolled back or rewritten.
    """

    run = models.OneToOneField(
        ReconciliationRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="checkpoint"
    )
    created_at = models.DateTimeField(default=timezone.now)
    key_id = models.CharField(max_length=16)
    wallets = models.PositiveBigIntegerField(default=0)
    entries = models.PositiveBigIntegerField(default=0)
    # SHA-256 over the heads' canonical lines, and the HMAC that signs it with the time and counts.
    digest = models.CharField(max_length=64)
    signature = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"checkpoint #{self.pk} ({self.wallets} wallets, {self.entries} entries)"


class LedgerCheckpointHead(models.Model):
    """One wallet's chain in a checkpoint: how many entries, and the newest one's hash."""

    checkpoint = models.ForeignKey(LedgerCheckpoint, on_delete=models.CASCADE, related_name="heads", db_index=False)
    # A plain number like the discrepancies' references: a record never blocks anything.
    wallet_id = models.BigIntegerField()
    entry_count = models.PositiveBigIntegerField()
    head = models.CharField(max_length=64)

    class Meta:
        constraints = [
            # Also a checkpoint's heads in wallet order (the digest).
            models.UniqueConstraint(fields=["checkpoint", "wallet_id"], name="checkpointhead_one_per_wallet"),
        ]

    def __str__(self) -> str:
        return f"wallet {self.wallet_id}: {self.entry_count} entries, head {self.head[:16]}…"


class OutboxMessage(models.Model):
    """A side effect that must not be lost, written in the transaction that causes it.

    A row is committed with the change; after commit a Celery task is asked
    to dispatch it, and a periodic sweep dispatches whatever is still pending
    (a crash between commit and enqueue, a broker outage). A dispatcher claims
    a row with a conditional update that pushes `available_at` forward (a
    lease), so two dispatchers never run it at once; handlers must still be
    idempotent (delivery is at least once), keyed by the message id.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DISPATCHED = "dispatched", "Dispatched"
        FAILED = "failed", "Failed (gave up)"

    topic = models.CharField(max_length=100)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    available_at = models.DateTimeField(help_text="Not dispatched before this time (backoff and claim lease).")
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The dispatch sweep: pending messages that are due, oldest first.
            models.Index(fields=["available_at"], name="outbox_pending_due", condition=Q(status="pending")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "dispatched", "failed"]), name="outbox_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk} {self.status}"


# --- grant lots and daily limits -----------------------------------------------


class CreditLot(models.Model):
    """Credits from one grant that carries a priority or an expiry, and what is left of them.

    Grants without either go to the wallet's plain pool, which has no row:
    pool = balance - lot_balance. Debits consume, in order: lots by priority
    (higher first), then soonest expiry (never-expiring last), then oldest;
    the pool sits where a priority-0, never-expiring lot would. Every change
    to a lot happens under its wallet's lock, and the database keeps
    sum(remaining) == Wallet.lot_balance <= Wallet.balance (reconcile checks
    the sum).
    """

    class Source(models.TextChoices):
        GRANTED = "granted", "Granted"
        PURCHASED = "purchased", "Purchased"

    # The wallet's account, denormalised so that lots can be distributed by
    # account with their wallet (docs/operations.md, "Scaling out").
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    # Indexed: reconcile --account sums an account's lots by wallet_id, spent
    # lots included (lot_consumption_order holds only lots with credits left).
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="lots")
    # Indexed: the admin's lot search by grant entry (=entry__public_id).
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="+")
    amount = MoneyField()
    remaining = MoneyField()
    priority = models.SmallIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Where the credits came from: bought credits (payments) always form a lot,
    # so the account page, statements and a refund's clawback can tell them
    # from granted ones.
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.GRANTED)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-priority", "expires_at", "id"]
        indexes = [
            # A debit's lots in consumption order; lots_expiring_for_account.
            models.Index(
                fields=["wallet", "-priority", "expires_at", "id"],
                name="lot_consumption_order",
                condition=Q(remaining__gt=0),
            ),
            # The grant expiry sweep and reconciliation's stale lots.
            models.Index(
                fields=["expires_at"],
                name="lot_expiry_due",
                condition=Q(remaining__gt=0, expires_at__isnull=False),
            ),
        ]
        constraints = [
            # One lot per grant entry (the entry's account is the lot's: the key includes it for sharding).
            models.UniqueConstraint(fields=["account", "entry"], name="lot_one_per_grant_entry"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="lot_amount_positive"),
            models.CheckConstraint(condition=Q(remaining__gte=0), name="lot_remaining_non_negative"),
            models.CheckConstraint(condition=Q(remaining__lte=F("amount")), name="lot_remaining_within_amount"),
            models.CheckConstraint(condition=Q(source__in=["granted", "purchased"]), name="lot_source_valid"),
        ]

    def __str__(self) -> str:
        scale = self.wallet.credit_type
        return f"lot {self.pk}: {money_display(self.remaining, scale)}/{money_display(self.amount, scale)}"


class DailyUsage(models.Model):
    """What a wallet has spent on one calendar day (CREDITLEDGER_DAILY_LIMIT_TIMEZONE).

    Incremented under the wallet lock in the charge's own transaction and
    keyed by the date, so nothing ever resets it: a new day is a new row.
    """

    # The wallet's account, denormalised so that usage rows can be distributed by account.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    # Indexed: daily_usage_get and daily_usage_settle find the row by (wallet_id,
    # day) without the account, which the unique key leads with.
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="daily_usage")
    day = models.DateField()
    used = MoneyField(default=Decimal(0))

    class Meta:
        ordering = ["-day"]
        verbose_name_plural = "daily usage"
        constraints = [
            # Also every limited debit's upsert: ON CONFLICT (account_id, wallet_id, day).
            models.UniqueConstraint(fields=["account", "wallet", "day"], name="daily_usage_one_per_wallet_day_v2"),
            models.CheckConstraint(condition=Q(used__gte=0), name="daily_usage_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.wallet_id} {self.day}: {money_display(self.used, self.wallet.credit_type)}"


class DailyLimitOverride(models.Model):
    """A per-account daily limit for one credit type, in place of the plan's.

    An empty `daily_limit` means no limit at all for this account.
    """

    # No indexes of their own: the unique (account, credit_type) leads with the
    # account, and no query looks overrides up by credit type alone.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="daily_limit_overrides", db_index=False)
    credit_type = models.ForeignKey(CreditType, on_delete=models.PROTECT, related_name="+", db_index=False)
    daily_limit = MoneyField(null=True, blank=True, help_text="Empty: no daily limit for this account.")
    reason = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Also every debit's daily-limit look-up (account_id, credit_type_id).
            models.UniqueConstraint(fields=["account", "credit_type"], name="daily_limit_override_unique"),
            models.CheckConstraint(
                condition=Q(daily_limit__isnull=True) | Q(daily_limit__gte=0),
                name="daily_limit_override_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.credit_type_id}: {money_display(self.daily_limit, self.credit_type)}"
