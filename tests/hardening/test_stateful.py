"""Random sequences of ledger operations keep every invariant after every step.

A hypothesis state machine drives the services directly (no HTTP) against
the real database and keeps a model of what each wallet should hold. After
every step it checks, from the database:

* each wallet's stored balance equals the sum of its ledger entries;
* each wallet's held amount equals the sum of its pending holds;
* no balance, held or available amount is negative;
* no charge has been refunded beyond its amount;
* the stored balance equals the model's.

Operations: grant, charge, adjustment (both signs), hold (releasing or
capturing on expiry), capture (below, at and above the held amount),
release, expire, and partial refunds of charges and of captures.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from billing import services
from billing.exceptions import InsufficientCredits
from billing.models import Hold, LedgerEntry, Wallet
from config.errors import DomainError
from refunds import services as refund_services
from tests.factories import AccountFactory, default_credit_type

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50"), places=2)
ACCOUNTS = 2


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.credit_type = default_credit_type()
        self.accounts = [AccountFactory() for _ in range(ACCOUNTS)]
        self.expected = [Decimal(0)] * ACCOUNTS  # balance per account
        self.charges: list[tuple[int, LedgerEntry]] = []
        self.holds: list[tuple[int, object]] = []

    # --- operations -------------------------------------------------------

    @rule(who=st.integers(0, ACCOUNTS - 1), amount=amounts)
    def grant(self, who: int, amount: Decimal) -> None:
        services.grant_create(
            account=self.accounts[who], credit_type=self.credit_type, amount=amount, actor=services.Actor.system()
        )
        self.expected[who] += amount

    @rule(who=st.integers(0, ACCOUNTS - 1), amount=amounts)
    def charge(self, who: int, amount: Decimal) -> None:
        available = self._available(who)
        try:
            entry = services.charge_create(
                account=self.accounts[who], credit_type=self.credit_type, amount=amount, actor=services.Actor.system()
            )
        except InsufficientCredits:
            assert amount > available, "a charge within the available balance was declined"
            return
        assert amount <= available, "a charge beyond the available balance went through"
        self.expected[who] -= amount
        self.charges.append((who, entry))

    @rule(who=st.integers(0, ACCOUNTS - 1), amount=amounts, negative=st.booleans())
    def adjust(self, who: int, amount: Decimal, negative: bool) -> None:
        signed = -amount if negative else amount
        try:
            services.adjustment_create(
                account=self.accounts[who],
                credit_type=self.credit_type,
                amount=signed,
                actor=services.Actor.system(),
                reason="stateful test",
            )
        except InsufficientCredits:
            assert negative and amount > self._available(who)
            return
        self.expected[who] += signed

    @rule(who=st.integers(0, ACCOUNTS - 1), amount=amounts, capture_on_expiry=st.booleans())
    def hold(self, who: int, amount: Decimal, capture_on_expiry: bool) -> None:
        available = self._available(who)
        try:
            held = services.hold_create(
                account=self.accounts[who],
                credit_type=self.credit_type,
                amount=amount,
                on_expiry="capture" if capture_on_expiry else "release",
                actor=services.Actor.system(),
            )
        except InsufficientCredits:
            assert amount > available, "a hold within the available balance was declined"
            return
        assert amount <= available, "a hold beyond the available balance went through"
        self.holds.append((who, held))

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def capture(self, data) -> None:
        who, held = self.holds.pop(data.draw(st.integers(0, len(self.holds) - 1)))
        # Below, at and above the held amount (above takes from available, or what there is).
        factor = data.draw(st.sampled_from([Decimal(0), Decimal("0.01"), Decimal("0.5"), Decimal(1), Decimal(3)]))
        amount = (held.amount * factor).quantize(Decimal("0.01"))
        cover = held.amount + self._available(who)
        resolved = services.hold_capture(hold=held, amount=amount, actor=services.Actor.system())
        assert resolved.status == "captured"
        assert resolved.captured_amount == min(amount, cover)
        self.expected[who] -= resolved.captured_amount
        if resolved.capture_entry is not None:
            self.charges.append((who, resolved.capture_entry))

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def release(self, data) -> None:
        _, held = self.holds.pop(data.draw(st.integers(0, len(self.holds) - 1)))
        resolved = services.hold_release(hold=held, actor=services.Actor.system())
        assert resolved.status == "released" and resolved.captured_amount == 0

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def expire(self, data) -> None:
        who, held = self.holds.pop(data.draw(st.integers(0, len(self.holds) - 1)))
        resolved = services.hold_expire(hold=held, now=held.expires_at + timedelta(seconds=1))
        assert resolved is not None and resolved.status == "expired"
        assert resolved.captured_amount == (held.amount if held.on_expiry == "capture" else 0)
        self.expected[who] -= resolved.captured_amount
        if resolved.capture_entry is not None:
            self.charges.append((who, resolved.capture_entry))

    @precondition(lambda self: self.charges)
    @rule(data=st.data())
    def refund(self, data) -> None:
        who, charge = data.draw(st.sampled_from(self.charges))
        remaining = -charge.amount - self._refunded(charge)
        amount = data.draw(st.decimals(min_value=Decimal("0.01"), max_value=-charge.amount, places=2))
        try:
            refund_services.refund_issue(charge=charge, amount=amount, reason="other", actor=services.Actor.system())
        except DomainError:
            assert amount > remaining, "a refund within the charge was refused"
            return
        assert amount <= remaining, "a refund beyond the charge went through"
        self.expected[who] += amount

    # --- helpers ----------------------------------------------------------

    def _wallet(self, who: int) -> Wallet | None:
        return Wallet.objects.filter(account=self.accounts[who], credit_type=self.credit_type).first()

    def _available(self, who: int) -> Decimal:
        wallet = self._wallet(who)
        return wallet.available if wallet else Decimal(0)

    @staticmethod
    def _refunded(charge: LedgerEntry) -> Decimal:
        return LedgerEntry.objects.filter(related_entry=charge, kind="refund").aggregate(s=Sum("amount"))[
            "s"
        ] or Decimal(0)

    # --- invariants -------------------------------------------------------

    @invariant()
    def balances_are_proven_by_the_ledger(self) -> None:
        for who in range(ACCOUNTS):
            wallet = self._wallet(who)
            if wallet is None:
                assert self.expected[who] == 0
                continue
            ledger = LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"] or Decimal(0)
            assert wallet.balance == ledger == self.expected[who]

    @invariant()
    def nothing_is_negative(self) -> None:
        for who in range(ACCOUNTS):
            wallet = self._wallet(who)
            if wallet is not None:
                assert wallet.balance >= 0 and wallet.held >= 0 and wallet.available >= 0

    @invariant()
    def held_equals_pending_holds(self) -> None:
        for who in range(ACCOUNTS):
            wallet = self._wallet(who)
            if wallet is None:
                continue
            pending = Hold.objects.filter(wallet=wallet, status=Hold.Status.PENDING).aggregate(s=Sum("amount"))["s"]
            assert wallet.held == (pending or Decimal(0))

    @invariant()
    def no_refund_exceeds_its_charge(self) -> None:
        for _, charge in self.charges:
            assert self._refunded(charge) <= -charge.amount


LedgerMachine.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.django_db
@pytest.mark.timeout(120)
def test_random_operation_sequences_keep_the_ledger_consistent():
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(LedgerMachine, settings=LedgerMachine.TestCase.settings)
