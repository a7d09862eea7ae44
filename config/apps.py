from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    """django.contrib.admin with the console's site (config.admin_site.ConsoleAdminSite) as `admin.site`."""

    default_site = "config.admin_site.ConsoleAdminSite"

    def ready(self) -> None:
        super().ready()
        # config's one AppConfig: the request-level database hooks are connected here.
        from config import db_health

        db_health.connect()
