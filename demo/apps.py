from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data for `make run` (`manage.py load_demo`): the top layer, so it may use every app."""

    name = "demo"
