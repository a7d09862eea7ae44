"""The plan limit source: this app's part of billing's daily-limit statement.

Billing's debit lock reads the wallet and the daily limit in force in one
statement (billing/statements.py), and may not name this app's tables. So
this app gives it, from `SubscriptionsConfig.ready()`, the fragment that
finds an account's plan limits: the same lateral join billing used to hold,
with the trial decided here (by the subscription's status alone) instead of
by billing. Like every hand-written statement it is compared with its ORM
query (tests/billing/test_statements.py); tests/subscriptions/test_plan_limits.py
proves the debit lock reads it.

Only our own table names and constants are formatted into it; it takes no
parameters.
"""

from __future__ import annotations

from django.db import connection

from subscriptions.models import Plan, Subscription

# For (w.account_id, w.credit_type_id): the account's live subscription in that
# credit type (an account has at most one live subscription: the constraint
# subscription_one_live_per_account), as the columns billing expects:
# s.is_trial (NULL when there is none), s.daily_limit, s.trial_daily_limit.
_PLAN_LIMITS = """LEFT JOIN LATERAL (
    SELECT sub.status = '{trialing}' AS is_trial, p.daily_limit, p.trial_daily_limit
    FROM {subscription} sub JOIN {plan} p ON p.id = sub.plan_id
    WHERE sub.account_id = w.account_id AND sub.status IN ({live}) AND p.credit_type_id = w.credit_type_id
    LIMIT 1
) s ON true"""


def plan_limits_join() -> str:
    """The `LEFT JOIN LATERAL (...) s ON true` fragment registered with `billing.statements`."""
    quote = connection.ops.quote_name
    return _PLAN_LIMITS.format(
        trialing=Subscription.Status.TRIALING.value,
        subscription=quote(Subscription._meta.db_table),
        plan=quote(Plan._meta.db_table),
        live=", ".join(f"'{status}'" for status in Subscription.LIVE_STATUSES),
    )
