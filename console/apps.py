from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The console's dashboard at the admin index (console.selectors, console.admin)."""

    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        # config's admin site knows no app: the dashboard registers itself into its index.
        from config.admin_site import admin_index_register
        from console.admin import dashboard_panel

        admin_index_register(dashboard_panel)
