from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    """django.contrib.admin with the console's site (config.admin_site.ConsoleAdminSite) as `admin.site`."""

    default_site = "config.admin_site.ConsoleAdminSite"
