from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Registers the outbox handler (webhook.fanout) and the hook that hears of each recorded event.
        from events.services import event_hook_prepare_register, event_hook_register
        from webhooks.selectors import subscribed_event_types, subscribed_event_types_prepare
        from webhooks.services import event_hook

        event_hook_register(event_hook, wants=lambda type: type in subscribed_event_types())
        # A stale list of subscribed types is reloaded before a posting locks its wallet, not under the lock.
        event_hook_prepare_register(subscribed_event_types_prepare)
