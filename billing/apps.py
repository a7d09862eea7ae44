from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing import statements

        statements.plan_limit_source_register(statements.subscription_plan_limits)
