from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"

    def ready(self) -> None:
        # Billing's daily-limit statements read plan limits from this source;
        # they are built on first use, after every ready() has run.
        from billing.statements import plan_limit_source_register
        from subscriptions.statements import plan_limits_join

        plan_limit_source_register(plan_limits_join)

        # Billing's reconciliation cannot name subscriptions; the allowance check is added to it.
        from billing.reconciliation import reconcile_check_register
        from subscriptions.reconciliation import allowance_mismatches

        reconcile_check_register(allowance_mismatches)
