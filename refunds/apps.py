from django.apps import AppConfig


class RefundsConfig(AppConfig):
    name = "refunds"

    def ready(self) -> None:
        # Billing's reconciliation cannot name refunds; refunds adds its check to it.
        from billing.reconciliation import reconcile_check_register
        from refunds.reconciliation import refund_log_mismatches

        reconcile_check_register(refund_log_mismatches)
