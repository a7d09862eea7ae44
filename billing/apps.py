from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing.alerts import balance_alerts_observe
        from billing.core import balance_observer_register
        from billing.events import entry_events_register
        from billing.models import LedgerEntry
        from config.rows import row_ids_shared
        from events.models import Event

        balance_observer_register(balance_alerts_observe)
        entry_events_register()
        # Migration 0019: stored events take their ids from the ledger's sequence (the events feed's order).
        row_ids_shared(LedgerEntry, Event)
