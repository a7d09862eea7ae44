from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing.alerts import balance_alerts_observe
        from billing.core import balance_observer_register

        balance_observer_register(balance_alerts_observe)
