from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        # Billing may not import this app: auto-recharge watches balances and
        # reconciliation checks purchases through hooks billing offers.
        from billing.core import balance_observer_register
        from billing.reconciliation import reconcile_check_register
        from payments.reconciliation import purchases_drift
        from payments.services.auto_recharge import auto_recharge_observe

        balance_observer_register(auto_recharge_observe)
        reconcile_check_register(purchases_drift)
